"""The store: every search, trial, latency measurement, checkpoint and event of nasprune."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar, overload

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from storage.attachments import Attachments
from storage.engine import create_store_engine, one_line, safe_url, upgrade_to_head
from storage.errors import ArchTakenError, DuplicateSearchError, LostLeaseError, StoreError
from storage.latency import LatencyTables
from storage.leases import Leases, lease_end
from storage.models import SearchModel, TrialModel
from storage.queries import split_metrics
from storage.reader import Reader
from storage.reconnect import RECONNECT_S, is_disconnect, lost_connection, retry_disconnects
from storage.records import SearchRecord, SearchStatus, TrialRecord, TrialState
from storage.tables import utcnow

_T = TypeVar("_T")
_CONFLICT_RETRIES = 50  # concurrent writers that race for the same unique key retry this often


class _ConflictError(StoreError):
    """A unique constraint was violated: another writer got there first."""


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


class Store(Reader, Attachments, LatencyTables, Leases):
    """Durable storage for searches and their trials, behind one SQLAlchemy URL.

    Contract:

    * Opening a store connects and migrates the database to the head revision
      (``SCHEMA_VERSION``); a database already at head is not modified. Anything that goes
      wrong (bad URL, unknown dialect, missing directory, unreachable server, a file that is
      not a database) raises :class:`StoreError` with a one-line message naming the URL.
    * Every method runs in its own transaction and returns frozen records detached from the
      database; no session or lazy attribute escapes. The read methods are the
      :class:`storage.reader.Reader`'s, in SQLAlchemy Core; the writes use the ORM.
    * Thread safety: use one Store per process; it may be shared by threads, each call
      opening its own session from the engine's pool. Many processes (workers on many
      machines, for PostgreSQL) may open the same URL at once: trial numbers stay unique
      and consecutive within a search, and cache writes are idempotent.
    * Trials go ``running`` -> ``complete | failed | infeasible`` once; finishing a trial
      twice raises StoreError, except that ``finish_trial(..., worker=)`` by the worker that
      finished it, in the same state, returns it. Datetimes are UTC.
    * A lost connection (a PostgreSQL server that restarts) is retried with backoff for
      ``reconnect_s`` seconds (default 120; 0 turns retrying off), running the whole
      transaction again, then raises :class:`ConnectionLostError` (opening a store is not
      retried). A call whose commit was lost with its reply therefore runs
      twice: ``finish_trial(worker=...)``, ``heartbeat``, ``acquire_lock`` and
      ``release_lock`` give the same answer; a ``create_trial`` may leave a second running
      trial, which is reclaimed when its lease expires; a ``reclaim_expired`` may leave its
      trial to be reclaimed again after the lease (one attempt more); a ``create_search``
      may raise DuplicateSearchError for the search it created.

    Many workers share one search (the methods are in :mod:`storage.leases`):

    * ``create_trial(..., lease_s=, budget=)`` refuses (None) once the complete and running
      trials reach the budget, atomically across processes: on PostgreSQL it locks the
      search row first; on SQLite every transaction takes the write lock when it begins.
    * A running trial created or reclaimed with ``lease_s`` belongs to its worker until
      ``lease_expires_at``; ``heartbeat(trial_id, worker, lease_s)`` renews it and answers
      False once the worker lost it; ``reclaim_expired`` hands an expired trial to another
      worker (``attempts`` + 1) or fails it after ``max_attempts``; ``finish_trial(...,
      worker=)`` raises :class:`LostLeaseError` if the trial is no longer the worker's.
      Trials created without a lease are never reclaimed. Lease times are the PostgreSQL
      server's clock (this machine's for SQLite), so workers' clocks need not agree.
    * ``clock``, when given, replaces that clock on either dialect for the leases, locks and
      trial times (``started_at``, ``heartbeat_at``, ``finished_at``) of this store: a
      callable returning now as a naive UTC ``datetime``, for tests that move time instead
      of sleeping. Every store that shares a search must then share the clock.
    * ``acquire_lock``/``release_lock``: a named, expiring lock per search for work that one
      worker does for all (training the supernet).

    Example::

        store = Store("sqlite:///nasprune.db")
        search = store.create_search("s1", config, config_hash, "builtin.resnet",
                                     "random", 100, {"nasprune": "0.1.0"})
        trial = store.create_trial(search.search_id, arch, arch_hash, "host:1", lease_s=60)
        store.heartbeat(trial.trial_id, "host:1", lease_s=60)  # every ~20 s, from a thread
        store.finish_trial(trial.trial_id, TrialState.COMPLETE, {"accuracy": 0.9},
                           worker="host:1")
        best = store.best_trial(search.search_id, max_latency_ms=3.0)
    """

    def __init__(
        self,
        url: str,
        *,
        reconnect_s: float = RECONNECT_S,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        engine = create_store_engine(url)
        try:
            upgrade_to_head(engine, url)
        except BaseException:
            engine.dispose()
            raise
        super().__init__(url, engine, reconnect_s=reconnect_s)
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._clock = clock

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """A session that commits on success, rolls back on error, and raises StoreError
        (ConnectionLostError when the connection was lost: see :meth:`_transaction`)."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            raise _ConflictError(f"{safe_url(self.url)}: {one_line(exc)}") from exc
        except SQLAlchemyError as exc:
            session.rollback()
            if is_disconnect(exc, self._engine):
                raise lost_connection(self.url, exc) from exc
            raise StoreError(f"store {safe_url(self.url)}: {one_line(exc)}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _transaction(self, work: Callable[[Session], _T]) -> _T:
        """``work`` in one session, run again in a new one after a lost connection."""

        def once() -> _T:
            with self._session() as session:
                return work(session)

        return retry_disconnects(once, self._engine, self.url, self._reconnect_s)

    def _write_retrying(self, work: Callable[[Session], _T], what: str) -> _T:
        """``work`` in one transaction; retried when a concurrent writer took the unique key,
        or when the connection was lost."""
        for attempt in range(_CONFLICT_RETRIES):
            try:
                return self._transaction(work)
            except _ConflictError:
                time.sleep(random.uniform(0.0, 0.005 * (attempt + 1)))
        raise StoreError(
            f"could not {what} in {safe_url(self.url)}: "
            f"{_CONFLICT_RETRIES} write conflicts in a row with other writers"
        )

    # searches

    def create_search(
        self,
        name: str,
        config: dict[str, Any],
        config_hash: str,
        space: str,
        strategy: str,
        budget_trials: int,
        versions: dict[str, Any],
    ) -> SearchRecord:
        """A new search in status ``created``; DuplicateSearchError if the name is taken."""
        duplicate = DuplicateSearchError(
            f"a search named {name!r} already exists in {safe_url(self.url)}"
        )

        def insert(session: Session) -> SearchRecord:
            if session.scalar(select(SearchModel.search_id).filter_by(name=name)):
                raise duplicate
            now = utcnow()
            row = SearchModel(
                name=name,
                status=SearchStatus.CREATED.value,
                config_json=_dumps(config),
                config_hash=config_hash,
                space=space,
                strategy=strategy,
                budget_trials=budget_trials,
                versions_json=_dumps(versions),
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            return row.to_record()

        try:
            return self._transaction(insert)
        except _ConflictError as exc:
            raise duplicate from exc

    def set_search_status(self, search_id: int, status: SearchStatus) -> None:
        """Move a search to ``status``; completed and failed also set ``finished_at``."""
        status = SearchStatus(status)

        def update_status(session: Session) -> None:
            row = self._search_row(session, search_id)
            row.status = status.value
            row.updated_at = utcnow()
            row.finished_at = row.updated_at if status.is_finished() else None

        self._transaction(update_status)

    def set_budget(self, search_id: int, trials: int) -> SearchRecord:
        """Set the search's budget: the number of complete trials it runs to, in total. The
        stored config is left as it was created (its hash still recognises the search)."""
        if trials < 1:
            raise StoreError(f"a search's budget must be at least one trial, not {trials}")

        def update_budget(session: Session) -> SearchRecord:
            row = self._search_row(session, search_id)
            row.budget_trials = trials
            row.updated_at = utcnow()
            session.flush()
            return row.to_record()

        return self._transaction(update_budget)

    def _search_row(self, session: Session, search_id: int, lock: bool = False) -> SearchModel:
        """The search's row; with ``lock``, locked until the transaction ends (PostgreSQL's
        FOR NO KEY UPDATE, which other writers of the row wait for but inserts that refer
        to it do not; SQLite transactions hold the whole database already)."""
        locking = {"key_share": True} if lock else None
        row = session.get(SearchModel, search_id, with_for_update=locking)
        if row is None:
            raise StoreError(f"no search with id {search_id} in {safe_url(self.url)}")
        return row

    # trials

    @overload
    def create_trial(
        self,
        search_id: int,
        arch: dict[str, Any],
        arch_hash: str,
        worker: str,
        *,
        memo: dict[str, Any] | None = None,
        lease_s: float | None = None,
        budget: None = None,
        unique: bool = False,
    ) -> TrialRecord: ...

    @overload
    def create_trial(
        self,
        search_id: int,
        arch: dict[str, Any],
        arch_hash: str,
        worker: str,
        *,
        memo: dict[str, Any] | None = None,
        lease_s: float | None = None,
        budget: int,
        unique: bool = False,
    ) -> TrialRecord | None: ...

    def create_trial(
        self,
        search_id: int,
        arch: dict[str, Any],
        arch_hash: str,
        worker: str,
        *,
        memo: dict[str, Any] | None = None,
        lease_s: float | None = None,
        budget: int | None = None,
        unique: bool = False,
    ) -> TrialRecord | None:
        """A running trial numbered next in its search (0, 1, 2 ...), safe across writers.

        ``memo`` is a JSON dict the strategy attaches to its proposal. With ``lease_s``, the
        trial is ``worker``'s for that many seconds (renewed by :meth:`heartbeat`). With
        ``budget``, None when the search's complete and running trials (expired or not: they
        will be retried) already number ``budget``, checked and created in one transaction.
        With ``unique``, :class:`ArchTakenError` when a trial of the search with ``arch_hash``
        is running or complete (two workers that proposed one network at once).
        """
        memo_json = None if memo is None else _dumps(memo)

        def insert(session: Session) -> TrialRecord | None:
            self._search_row(session, search_id, lock=True)  # one creator at a time
            if budget is not None and _taken(session, search_id) >= budget:
                return None
            if unique and _arch_taken(session, search_id, arch_hash):
                raise ArchTakenError(f"trial of {arch_hash} exists in search {search_id}")
            number = session.scalar(
                select(func.coalesce(func.max(TrialModel.number), -1) + 1).where(
                    TrialModel.search_id == search_id
                )
            )
            now = self._now(session)
            row = TrialModel(
                search_id=search_id,
                number=number,
                arch_json=_dumps(arch),
                arch_hash=arch_hash,
                state=TrialState.RUNNING.value,
                metrics_json="{}",
                worker=worker,
                started_at=now,
                heartbeat_at=now,
                attempts=1,
                lease_expires_at=None if lease_s is None else lease_end(now, lease_s),
                memo_json=memo_json,
            )
            session.add(row)
            session.flush()
            return row.to_record()

        return self._write_retrying(insert, f"number a new trial of search {search_id}")

    def finish_trial(
        self,
        trial_id: int,
        state: TrialState,
        metrics: dict[str, float] | None = None,
        error: str | None = None,
        latency_key: str | None = None,
        worker: str | None = None,
    ) -> TrialRecord:
        """Finish a running trial; column metrics go to their columns, the rest to JSON;
        ``latency_key`` names its latency measurements (one per device).

        With ``worker``, only while the trial is still running under that worker, else
        LostLeaseError; a trial this worker already finished in the same state is returned
        as it is (a retried call whose first reply was lost).
        """
        state = TrialState(state)
        if not state.is_finished():
            raise StoreError(f"finish_trial needs a finished state, not {state.value!r}")
        columns, extra = split_metrics(metrics or {})

        def finish(session: Session) -> TrialRecord:
            row = self._trial_row(session, trial_id)
            now = self._now(session)
            values: dict[str, Any] = {
                **columns,
                "metrics_json": _dumps(extra),
                "state": state.value,
                "error": error,
                "finished_at": now,
                "duration_s": (now - row.started_at).total_seconds(),
                "latency_key": latency_key,
                "lease_expires_at": None,
            }
            query = update(TrialModel).where(
                TrialModel.trial_id == trial_id, TrialModel.state == TrialState.RUNNING.value
            )
            if worker is not None:
                query = query.where(TrialModel.worker == worker)
            changed = session.execute(
                query.values(**values).execution_options(synchronize_session=False)
            )
            session.refresh(row)
            if changed.rowcount == 0:  # type: ignore[attr-defined]
                if worker is None:
                    raise StoreError(
                        f"trial {row.number} of search {row.search_id} is already {row.state}"
                    )
                if row.worker != worker or row.state != state.value:
                    raise LostLeaseError(_lost_lease(row, worker))
            return row.to_record()

        return self._transaction(finish)

    def fail_running_trials(self, search_id: int, reason: str) -> int:
        """Mark every running trial of the search failed (on resume); returns how many."""

        def fail(session: Session) -> int:
            running = session.scalars(
                select(TrialModel).where(
                    TrialModel.search_id == search_id,
                    TrialModel.state == TrialState.RUNNING.value,
                )
            ).all()
            now = self._now(session)
            for row in running:
                row.state = TrialState.FAILED.value
                row.error = reason
                row.finished_at = now
                row.duration_s = (now - row.started_at).total_seconds()
                row.lease_expires_at = None
            return len(running)

        return self._transaction(fail)

    def _trial_row(self, session: Session, trial_id: int) -> TrialModel:
        row = session.get(TrialModel, trial_id)
        if row is None:
            raise StoreError(f"no trial with id {trial_id} in {safe_url(self.url)}")
        return row


def _taken(session: Session, search_id: int) -> int:
    """How much of the search's budget is taken: its complete and running trials."""
    taking = (TrialState.COMPLETE.value, TrialState.RUNNING.value)
    query = select(func.count()).where(
        TrialModel.search_id == search_id, TrialModel.state.in_(taking)
    )
    return int(session.scalar(query) or 0)


def _lost_lease(row: TrialModel, worker: str) -> str:
    """Why ``worker`` may no longer finish the trial of ``row``."""
    trial = f"trial {row.number} of search {row.search_id}"
    if row.state == TrialState.RUNNING.value:
        return (
            f"{trial} is no longer {worker}'s: its lease expired and {row.worker} runs it "
            f"now (attempt {row.attempts})"
        )
    how = f": {row.error}" if row.error else f" by {row.worker}"
    return f"{trial} is no longer {worker}'s: it is already {row.state}{how}"


def _arch_taken(session: Session, search_id: int, arch_hash: str) -> bool:
    states = [TrialState.RUNNING.value, TrialState.COMPLETE.value]
    query = select(TrialModel.trial_id).where(
        TrialModel.search_id == search_id,
        TrialModel.arch_hash == arch_hash,
        TrialModel.state.in_(states),
    )
    return session.scalar(query.limit(1)) is not None


def get_store(storage: str | Store) -> Store:
    """The one resolver: a Store is returned as is, a URL opens a new Store."""
    if isinstance(storage, Store):
        return storage
    if isinstance(storage, str):
        return Store(storage)
    raise TypeError(f"storage must be a URL or a Store, not {type(storage).__name__}")
