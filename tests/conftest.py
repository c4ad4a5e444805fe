"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

# Tests run small models, where a second intra-op thread mostly contends with the first on a
# 2-core machine; subprocesses that tests start inherit the variable. A backend that times with
# more threads sets them itself (latency.threads) and restores these after.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

torch.set_num_threads(1)

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
