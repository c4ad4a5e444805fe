"""The FastAPI application: ``create_app(settings)`` wires the store, the routes, the web page's
files, the background exports, the error handlers and the body limit. ``uvicorn`` serves it
(``nasprune serve``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from nasprune import __version__
from nasprune.service import schemas
from nasprune.service.auth import READ_ONLY
from nasprune.service.errors import install_handlers
from nasprune.service.limits import BodyLimit
from nasprune.service.settings import ServiceSettings
from storage.engine import safe_url

log = logging.getLogger("nasprune.service")

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.Message, "description": what}
    for code, what in (
        (400, "A config, space, strategy or device the request got wrong"),
        (404, "No such search or trial"),
        (503, "The store cannot be reached"),
    )
}


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The service's application on ``settings`` (default: from the environment)."""
    from fastapi.staticfiles import StaticFiles

    from nasprune.service.exports import Exports
    from nasprune.service.routes import export, progress, searches, system, trials, web
    from nasprune.store_access import open_store

    settings = settings or ServiceSettings.from_env()
    app = FastAPI(
        title="nasprune",
        version=__version__,
        summary="Launch and query neural-architecture searches; workers do the work.",
        responses=ERRORS,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.store = open_store(settings.storage)
    settings.export_dir.mkdir(parents=True, exist_ok=True)
    install_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.state.exports = Exports(app.state.store)
    for module in (system, searches, trials, export, progress, web):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=web.WEB / "static"), name="static")
    where = safe_url(app.state.store.url)
    if settings.read_only:
        log.warning("nasprune service on %s: %s", where, READ_ONLY)
    else:
        log.info("nasprune service on %s: mutations need the bearer token", where)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.exports.close()  # an export under way finishes; no new one starts
