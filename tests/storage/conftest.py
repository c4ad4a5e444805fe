"""Fixtures for the store conformance suite: every test runs on SQLite and PostgreSQL.

PostgreSQL is a real server started with ``pg_ctl`` for the session (tests/support/pg_server.py)
with a fresh database per test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import Store


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgresql_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open store on an empty database, closed after the test."""
    opened = Store(store_url)
    yield opened
    opened.close()
