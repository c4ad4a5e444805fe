"""Opening a store that cannot be opened fails with one clear StoreError line."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from storage import Store, StoreError, TrialState
from storage.engine import create_store_engine


def _assert_one_line(error: pytest.ExceptionInfo[StoreError]) -> str:
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_corrupt_sqlite_file_raises_store_error_and_leaves_its_bytes_unchanged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.db"
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    with pytest.raises(StoreError) as caught:
        Store(f"sqlite:///{path}")
    message = _assert_one_line(caught)
    assert str(path) in message and "not a database" in message
    assert path.read_bytes() == garbage


def test_unknown_dialect_raises_store_error_naming_it() -> None:
    with pytest.raises(StoreError) as caught:
        Store("nosuchdb://host/name")
    assert "unknown database dialect 'nosuchdb'" in _assert_one_line(caught)


def test_unparsable_url_raises_store_error() -> None:
    with pytest.raises(StoreError) as caught:
        Store("not a url")
    assert "cannot parse storage URL" in _assert_one_line(caught)


def test_missing_directory_for_sqlite_file_raises_store_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent" / "x.db"
    with pytest.raises(StoreError) as caught:
        Store(f"sqlite:///{missing}")
    assert "does not exist" in _assert_one_line(caught)
    assert not missing.parent.exists()


def test_unreachable_postgresql_server_raises_store_error_hiding_the_password() -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StoreError) as caught:
        Store(f"postgresql+psycopg2://user:secret@127.0.0.1:{port}/db")
    message = _assert_one_line(caught)
    assert f"127.0.0.1:{port}" in message and "secret" not in message


def test_a_plain_postgresql_url_uses_psycopg_3() -> None:
    for url, driver in [
        ("postgresql://user@host/db", "psycopg"),
        ("postgresql+psycopg://user@host/db", "psycopg"),
    ]:
        engine = create_store_engine(url)
        try:
            assert engine.dialect.driver == driver
        finally:
            engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["postgresql", "postgresql+psycopg", "postgresql+psycopg2"])
def test_a_store_works_through_each_postgresql_driver(postgresql_url: str, driver: str) -> None:
    if driver.endswith("psycopg2"):
        pytest.importorskip("psycopg2")
    url = make_url(postgresql_url).set(drivername=driver).render_as_string(hide_password=False)
    with Store(url) as store:
        search = store.create_search("s", {}, "h", "space", "random", 1, {})
        trial = store.create_trial(search.search_id, {}, "h", "w", lease_s=60)
        assert store.heartbeat(trial.trial_id, "w", lease_s=60) is True
        store.finish_trial(trial.trial_id, TrialState.COMPLETE, {"accuracy": 0.5}, worker="w")
        assert [t.accuracy for t in store.finished_trials(search.search_id)] == [0.5]


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        with store._engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == 30000


def test_in_memory_sqlite_store_is_shared_across_threads() -> None:
    with Store("sqlite://") as store:
        search = store.create_search("m", {}, "h", "s", "r", 1, {})
        seen: list[int] = []
        thread = threading.Thread(target=lambda: seen.append(store.get_search("m").search_id))
        thread.start()
        thread.join()
        assert seen == [search.search_id]
