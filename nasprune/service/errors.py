"""nasprune's own errors as HTTP answers: one line in ``{"detail": ...}``, never a 500 for a
user's mistake."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from nasprune import errors as ours
from nasprune.errors import first_line
from storage import errors as store_errors


def status_of(exc: Exception) -> int:
    """The HTTP status of a nasprune (or a room's) error, by its type alone."""
    if isinstance(exc, ours.NotFoundError | store_errors.SearchNotFoundError):
        return 404
    if isinstance(exc, ours.NameTakenError | ours.StateError | store_errors.DuplicateSearchError):
        return 409
    if isinstance(exc, ours.StoreError | store_errors.StoreError):
        return 503  # the store cannot be reached or queried
    return 400  # a config, space, strategy or search the request got wrong


def install_handlers(app: FastAPI) -> None:
    async def nasprune_error(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": first_line(exc)}, status_code=status_of(exc))

    for kind in (ours.NasPruneError, store_errors.StoreError):
        app.add_exception_handler(kind, nasprune_error)
