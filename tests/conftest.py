"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent / "support"))


def _write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="session")
def write_config() -> Callable[[Path, dict[str, Any]], Path]:
    """Write a config mapping as a YAML file and return its path."""
    return _write_config


@pytest.fixture(scope="session")
def postgres_base_url() -> Iterator[str]:
    """One throwaway PostgreSQL server for the whole session (see tests/pg_server.py)."""
    from pg_server import pg_bindir, postgres_server

    if pg_bindir() is None and not os.environ.get("CI"):
        pytest.skip("PostgreSQL is not installed (pg_ctl not found); .ci/run installs it")
    with postgres_server() as url:
        yield url


@pytest.fixture
def postgresql_url(postgres_base_url: str) -> str:
    """The URL of a fresh, empty PostgreSQL database."""
    from pg_server import create_database

    return create_database(postgres_base_url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgresql_url")
    return url
