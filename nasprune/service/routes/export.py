"""A trial's subnet as a download: made in the background (:mod:`nasprune.service.exports`),
waited for a bounded time, served from the export directory."""

from __future__ import annotations

import asyncio
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse

from nasprune.service import schemas
from nasprune.service.deps import settings_of, store_of
from nasprune.service.exports import EXTENSIONS, Exports, ExportsBusy, Format
from nasprune.service.settings import ServiceSettings
from storage import Store, TrialState

router = APIRouter(tags=["trials"])
RETRY_AFTER_S = 2  # an export under way: ask again this soon
BUSY_RETRY_S = 10  # the export queue is full


def export_path(
    store: Store, settings: ServiceSettings, name: str, trial: int, format: str
) -> FilePath:
    """Where trial ``trial``'s export lives: a name the service makes from the search's id, the
    trial's number and its fine-tuning run (a trial fine-tuned later gets a new file)."""
    record = store.get_search(name)
    found = store.get_trial(record.search_id, trial)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"trial: search {name!r} has no trial {trial}"
        )
    if found.state != TrialState.COMPLETE:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"trial: trial {trial} is {found.state.value}, not complete"
        )
    run = store.get_finetune(found.trial_id)
    tuned = "" if run is None else f"-finetune{run.finetune_id}"
    folder = settings.export_dir.resolve()
    path = (folder / f"search{record.search_id}-trial{trial}{tuned}.{EXTENSIONS[format]}").resolve()
    if path.parent != folder:  # cannot happen with the names above; refuse if it ever does
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "export path outside the directory")
    return path


@router.get(
    "/searches/{name}/export",
    response_class=FileResponse,
    response_model=None,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        202: {"model": schemas.Message, "description": "Still being made: ask again"},
        409: {"model": schemas.Message, "description": "The trial is not complete"},
        503: {"model": schemas.Message, "description": "Too many exports waiting: ask later"},
    },
)
async def export(
    name: str,
    trial: Annotated[int, Query(ge=0, le=2**31, description="The trial to export.")],
    request: Request,
    format: Format = "state",
    wait: Annotated[
        float, Query(ge=0, le=600, description="Seconds to wait for an export being made.")
    ] = 30,
) -> FileResponse | JSONResponse:
    """Trial ``trial`` as a file to download: ``state`` (``nasprune.load_subnet``) or
    ``onnx``. The first ask starts the export in the background (it loads and evaluates the
    subnet: seconds); the request waits for it up to ``wait`` seconds, then answers 202 with
    ``Retry-After``, and the export goes on. Once made, the file is kept in the export
    directory and served at once."""
    store, settings = store_of(request), settings_of(request)
    path = await run_in_threadpool(export_path, store, settings, name, trial, format)
    if not path.exists():
        exports: Exports = request.app.state.exports
        try:
            job = asyncio.wrap_future(exports.request(name, trial, format, path))
        except ExportsBusy as busy:
            return _again(str(busy), status.HTTP_503_SERVICE_UNAVAILABLE, BUSY_RETRY_S)
        try:
            await asyncio.wait_for(asyncio.shield(job), timeout=wait)
        except TimeoutError:
            detail = f"trial {trial} of {name!r} is being exported as {format}; ask again"
            return _again(detail, status.HTTP_202_ACCEPTED, RETRY_AFTER_S)
    download = f"{_safe(name)}-trial{trial}.{EXTENSIONS[format]}"
    return FileResponse(path, media_type="application/octet-stream", filename=download)


def _again(detail: str, code: int, after_s: int) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=code, headers={"Retry-After": str(after_s)})


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
