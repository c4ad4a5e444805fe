"""A lost PostgreSQL connection is retried: a transaction whose connection dies runs again, a
store call made while the server restarts succeeds once it is back, and a server that stays
down longer than ``reconnect_s`` gives one ConnectionLostError line. Errors that are not
disconnects are never retried."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest
from pg_server import create_database, running_postgres
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from storage import ConnectionLostError, Reader, Store, StoreError, TrialState, get_reader

pytestmark = pytest.mark.postgres


def _dies_once(calls: list[str]) -> Callable[[Session], int]:
    """Work that kills its own connection the first time it runs."""

    def work(session: Session) -> int:
        calls.append("run")
        if len(calls) == 1:
            session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return int(session.scalar(text("SELECT 42")) or 0)

    return work


def test_a_transaction_whose_connection_dies_runs_again_and_warns(
    postgresql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    with Store(postgresql_url) as store, caplog.at_level(logging.WARNING, "storage"):
        assert store._transaction(_dies_once(calls)) == 42
    assert calls == ["run", "run"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "lost the connection" in warnings[0]
    assert "retrying in" in warnings[0]


def test_a_read_whose_connection_dies_runs_again(postgresql_url: str) -> None:
    with Store(postgresql_url):
        pass  # migrated: get_reader opens a Reader
    calls: list[str] = []

    def work(connection: Connection) -> int:
        calls.append("run")
        if len(calls) == 1:
            connection.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return int(connection.scalar(text("SELECT 42")) or 0)

    with get_reader(postgresql_url) as reader:
        assert type(reader) is Reader and reader._read(work) == 42
    assert calls == ["run", "run"]


@pytest.mark.parametrize(
    "statement",
    ["SELEC 1", "SET LOCAL statement_timeout = 1; SELECT pg_sleep(1)"],
    ids=["syntax-error", "query-cancelled"],
)
def test_an_error_that_is_not_a_disconnect_is_not_retried(
    postgresql_url: str, statement: str
) -> None:
    calls: list[str] = []

    def work(session: Session) -> None:
        calls.append("run")
        session.execute(text(statement))

    with Store(postgresql_url) as store:
        with pytest.raises(StoreError) as caught:
            store._transaction(work)
    assert calls == ["run"] and not isinstance(caught.value, ConnectionLostError)


@pytest.mark.slow
def test_store_calls_made_while_the_server_restarts_succeed_once_it_is_back() -> None:
    with running_postgres() as server:
        url = create_database(server.url)
        with Store(url, reconnect_s=60) as store, get_reader(url) as reader:
            search_id = store.create_search("s", {}, "h", "space", "random", 1, {}).search_id
            trial = store.create_trial(search_id, {}, "h", "w", lease_s=60)
            assert [t.trial_id for t in reader.trials(search_id)] == [trial.trial_id]
            server.stop("fast")
            restart = threading.Timer(2.0, server.start)
            restart.start()
            try:
                began = time.monotonic()
                done = store.finish_trial(trial.trial_id, TrialState.COMPLETE, worker="w")
                waited = time.monotonic() - began
            finally:
                restart.join()
            assert done.state is TrialState.COMPLETE and waited >= 1.5
            assert reader.trials(search_id) == [done]
            server.stop("fast")  # and a reader, while the server is down
            restart = threading.Timer(2.0, server.start)
            restart.start()
            try:
                assert reader.trials(search_id) == [done]
            finally:
                restart.join()


@pytest.mark.slow
def test_a_server_down_longer_than_reconnect_s_raises_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running_postgres() as server:
        url = create_database(server.url.replace("postgres@", "postgres:secret@"))
        with Store(url, reconnect_s=1.5) as store:
            store.create_search("s", {}, "h", "space", "random", 1, {})
            server.stop("fast")
            began = time.monotonic()
            with caplog.at_level(logging.WARNING, logger="storage.reconnect"):
                with pytest.raises(ConnectionLostError) as caught:
                    store.get_search("s")
            waited = time.monotonic() - began
    message = str(caught.value)
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) >= 2, "it retried with backoff before giving up"
    assert waited >= 1.5, "it gave up only once reconnect_s was spent"
    assert "\n" not in message and "secret" not in message
    assert "lost the connection" in message and "not back within 1.5 s" in message
