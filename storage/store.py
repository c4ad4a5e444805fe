"""The store: every search, trial, latency measurement, checkpoint and event of nasprune."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from storage.attachments import Attachments
from storage.engine import create_store_engine, one_line, safe_url, upgrade_to_head
from storage.errors import DuplicateSearchError, StoreError
from storage.latency import LatencyTables
from storage.models import SearchModel, TrialModel
from storage.queries import split_metrics
from storage.reader import Reader
from storage.records import SearchRecord, SearchStatus, TrialRecord, TrialState
from storage.tables import utcnow

_T = TypeVar("_T")
_CONFLICT_RETRIES = 50  # concurrent writers that race for the same unique key retry this often


class _ConflictError(StoreError):
    """A unique constraint was violated: another writer got there first."""


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


class Store(Reader, Attachments, LatencyTables):
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
      twice raises StoreError. Datetimes are UTC.

    Example::

        store = Store("sqlite:///nasprune.db")
        search = store.create_search("s1", config, config_hash, "builtin.resnet",
                                     "random", 100, {"nasprune": "0.1.0"})
        trial = store.create_trial(search.search_id, arch, arch_hash, worker="host:1")
        store.finish_trial(trial.trial_id, TrialState.COMPLETE, {"accuracy": 0.9})
        best = store.best_trial(search.search_id, max_latency_ms=3.0)
    """

    def __init__(self, url: str) -> None:
        engine = create_store_engine(url)
        try:
            upgrade_to_head(engine, url)
        except BaseException:
            engine.dispose()
            raise
        super().__init__(url, engine)
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """A session that commits on success, rolls back on error, and raises StoreError."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            raise _ConflictError(f"{safe_url(self.url)}: {one_line(exc)}") from exc
        except SQLAlchemyError as exc:
            session.rollback()
            raise StoreError(f"store {safe_url(self.url)}: {one_line(exc)}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _write_retrying(self, work: Callable[[Session], _T], what: str) -> _T:
        """Run ``work`` in a session; retry when a concurrent writer took the unique key."""
        for attempt in range(_CONFLICT_RETRIES):
            try:
                with self._session() as session:
                    return work(session)
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
        try:
            with self._session() as session:
                if session.scalar(select(SearchModel.search_id).filter_by(name=name)):
                    raise duplicate
                session.add(row)
                session.flush()
                return row.to_record()
        except _ConflictError as exc:
            raise duplicate from exc

    def set_search_status(self, search_id: int, status: SearchStatus) -> None:
        """Move a search to ``status``; completed and failed also set ``finished_at``."""
        status = SearchStatus(status)
        with self._session() as session:
            row = self._search_row(session, search_id)
            row.status = status.value
            row.updated_at = utcnow()
            row.finished_at = row.updated_at if status.is_finished() else None

    def set_budget(self, search_id: int, trials: int) -> SearchRecord:
        """Set the search's budget: the number of complete trials it runs to, in total. The
        stored config is left as it was created (its hash still recognises the search)."""
        if trials < 1:
            raise StoreError(f"a search's budget must be at least one trial, not {trials}")
        with self._session() as session:
            row = self._search_row(session, search_id)
            row.budget_trials = trials
            row.updated_at = utcnow()
            session.flush()
            return row.to_record()

    def _search_row(self, session: Session, search_id: int) -> SearchModel:
        row = session.get(SearchModel, search_id)
        if row is None:
            raise StoreError(f"no search with id {search_id} in {safe_url(self.url)}")
        return row

    # trials

    def create_trial(
        self, search_id: int, arch: dict[str, Any], arch_hash: str, worker: str
    ) -> TrialRecord:
        """A running trial numbered next in its search (0, 1, 2 ...), safe across writers."""

        def insert(session: Session) -> TrialRecord:
            self._search_row(session, search_id)
            number = session.scalar(
                select(func.coalesce(func.max(TrialModel.number), -1) + 1).where(
                    TrialModel.search_id == search_id
                )
            )
            now = utcnow()
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
            )
            session.add(row)
            session.flush()
            return row.to_record()

        return self._write_retrying(insert, f"number a new trial of search {search_id}")

    def heartbeat(self, trial_id: int) -> None:
        """Record that the worker running this trial is alive."""
        with self._session() as session:
            self._trial_row(session, trial_id).heartbeat_at = utcnow()

    def finish_trial(
        self,
        trial_id: int,
        state: TrialState,
        metrics: dict[str, float] | None = None,
        error: str | None = None,
        latency_key: str | None = None,
    ) -> TrialRecord:
        """Finish a running trial; column metrics go to their columns, the rest to JSON;
        ``latency_key`` names its latency measurements (one per device)."""
        state = TrialState(state)
        if not state.is_finished():
            raise StoreError(f"finish_trial needs a finished state, not {state.value!r}")
        columns, extra = split_metrics(metrics or {})
        with self._session() as session:
            row = self._trial_row(session, trial_id)
            now = utcnow()
            values: dict[str, Any] = {
                **columns,
                "metrics_json": _dumps(extra),
                "state": state.value,
                "error": error,
                "finished_at": now,
                "duration_s": (now - row.started_at).total_seconds(),
                "latency_key": latency_key,
            }
            changed = session.execute(
                update(TrialModel)
                .where(TrialModel.trial_id == trial_id)
                .where(TrialModel.state == TrialState.RUNNING.value)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if changed.rowcount == 0:  # type: ignore[attr-defined]
                session.refresh(row)
                raise StoreError(
                    f"trial {row.number} of search {row.search_id} is already {row.state}"
                )
            session.refresh(row)
            return row.to_record()

    def fail_running_trials(self, search_id: int, reason: str) -> int:
        """Mark every running trial of the search failed (on resume); returns how many."""
        with self._session() as session:
            running = session.scalars(
                select(TrialModel).where(
                    TrialModel.search_id == search_id,
                    TrialModel.state == TrialState.RUNNING.value,
                )
            ).all()
            now = utcnow()
            for row in running:
                row.state = TrialState.FAILED.value
                row.error = reason
                row.finished_at = now
                row.duration_s = (now - row.started_at).total_seconds()
            return len(running)

    def _trial_row(self, session: Session, trial_id: int) -> TrialModel:
        row = session.get(TrialModel, trial_id)
        if row is None:
            raise StoreError(f"no trial with id {trial_id} in {safe_url(self.url)}")
        return row


def get_store(storage: str | Store) -> Store:
    """The one resolver: a Store is returned as is, a URL opens a new Store."""
    if isinstance(storage, Store):
        return storage
    if isinstance(storage, str):
        return Store(storage)
    raise TypeError(f"storage must be a URL or a Store, not {type(storage).__name__}")
