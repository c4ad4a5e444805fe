"""Fixtures of the HTTP service's tests: a service on an empty store of each backend (SQLite
and a real PostgreSQL), with a token, and a client of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from service_helpers import TOKEN

from nasprune.service.app import create_app
from nasprune.service.settings import ServiceSettings


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """Build a client of a service with these settings (export_dir under tmp_path)."""
    made: list[Any] = []

    def make(storage: str, **settings: Any) -> TestClient:
        settings.setdefault("export_dir", tmp_path / "exports")
        app = create_app(ServiceSettings(storage=storage, **settings))
        made.append(app)
        return TestClient(app, raise_server_exceptions=False)

    yield make
    for app in made:
        app.state.store.close()


@pytest.fixture
def client(make_client: Callable[..., TestClient], store_url: str) -> TestClient:
    """A client of a service with a token, on an empty store."""
    return make_client(store_url, token=TOKEN, poll_s=0.05)
