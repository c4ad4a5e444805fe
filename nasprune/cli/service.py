"""`nasprune serve`: the HTTP service (FastAPI, the ``service`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nasprune.cli.common import StorageOpt, app

Allowed = Annotated[list[str] | None, typer.Option(help="Also allow this (repeatable).")]


@app.command()
def serve(
    storage: StorageOpt = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    export_dir: Annotated[
        Path, typer.Option(help="Exported files are written here, and only here.")
    ] = Path(".nasprune/exports"),
    allow_space: Allowed = None,
    allow_data: Allowed = None,
    allow_model: Allowed = None,
) -> None:
    """Serve the HTTP API and the web page (http://HOST:PORT/): launch and query searches;
    `nasprune worker NAME` does the work. Mutations need `Authorization: Bearer
    $NASPRUNE_API_TOKEN`; without it, read-only."""
    from nasprune.service import require_fastapi

    require_fastapi()
    import uvicorn

    from nasprune.service.app import create_app
    from nasprune.service.settings import BUILTIN_SPACES, ServiceSettings

    settings = ServiceSettings.from_env(
        storage=storage,
        export_dir=export_dir,
        spaces=(*BUILTIN_SPACES, *(allow_space or [])),
        data_entry_points=tuple(allow_data or []),
        models=tuple(allow_model or []),
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
