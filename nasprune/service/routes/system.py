"""The service itself and what the server knows: health, version, spaces, strategies,
devices."""

from __future__ import annotations

from fastapi import APIRouter

from nasprune import queries
from nasprune.service import schemas
from nasprune.service.deps import SettingsDep, StoreDep
from storage.engine import safe_url

router = APIRouter(tags=["service"])


@router.get("/health", response_model=schemas.Health)
def health(store: StoreDep, settings: SettingsDep) -> schemas.Health:
    """Whether the store answers (503 when it does not)."""
    store.count_trials(-1)  # one query: raises StoreError (503) when the store is down
    return schemas.Health(status="ok", store=safe_url(store.url), read_only=settings.read_only)


@router.get("/version", response_model=schemas.Version)
def version() -> schemas.Version:
    from nasprune.lifecycle import versions

    return schemas.Version(versions=versions())


@router.get("/spaces", response_model=dict[str, str])
def spaces(settings: SettingsDep) -> dict[str, str]:
    """The search spaces a posted config may name here, with their descriptions."""
    from search_spaces import list_spaces

    return {n: d for n, d in list_spaces().items() if n in settings.spaces}


@router.get("/strategies", response_model=dict[str, str])
def strategies() -> dict[str, str]:
    """The registered search strategies, with their descriptions."""
    from strategies import list_strategies

    return dict(list_strategies())


@router.get("/devices", response_model=list[schemas.Device])
def devices(store: StoreDep) -> list[schemas.Device]:
    """The devices the store has latency measurements for (``nasprune devices --json``)."""
    return [
        schemas.Device(id=d.device_id, device=d.fingerprint, networks=d.networks, units=d.units)
        for d in queries.devices(storage=store)
    ]
