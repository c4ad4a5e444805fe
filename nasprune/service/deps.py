"""What the routes take from a request, declared once: the store, the settings, paging, the
token check, and the error answers a mutation documents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request, status

from nasprune.service import schemas
from nasprune.service.auth import require_token
from nasprune.service.settings import ServiceSettings
from storage import Store


def store_of(request: Request) -> Store:
    """FastAPI dependency: the service's store."""
    store: Store = request.app.state.store
    return store


def settings_of(request: Request) -> ServiceSettings:
    """FastAPI dependency: the service's settings."""
    settings: ServiceSettings = request.app.state.settings
    return settings


StoreDep = Annotated[Store, Depends(store_of)]
SettingsDep = Annotated[ServiceSettings, Depends(settings_of)]
Offset = Annotated[int, Query(ge=0, le=2**31, description="Items to skip.")]
AUTH = [Depends(require_token)]
MUTATION_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.Message, "description": "No or a wrong bearer token"},
    403: {"model": schemas.Message, "description": "The service is read-only"},
    409: {"model": schemas.Message, "description": "The search's state does not allow it"},
}


def page_limit(request: Request, limit: Annotated[int, Query(ge=1, le=10_000)] = 50) -> int:
    """The page size asked for; more than the service's ``max_page_size`` is refused."""
    most = settings_of(request).max_page_size
    if limit > most:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"limit: at most {most} items per page, not {limit}"
        )
    return limit


Limit = Annotated[int, Depends(page_limit)]
