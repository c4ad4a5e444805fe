"""Fixtures for the store conformance suite: every test runs on SQLite and PostgreSQL
(``store_url``, in tests/conftest.py).

PostgreSQL is a real server started with ``pg_ctl`` for the session (tests/support/pg_server.py)
with a fresh database per test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storage import Store


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open store on an empty database, closed after the test."""
    opened = Store(store_url)
    yield opened
    opened.close()
