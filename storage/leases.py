"""Many workers on one search: trial leases, heartbeats, reclaiming the trials of workers that
died, and named locks for the work one worker does for all. :class:`storage.Store` inherits
these methods (its docstring states the contract); they use its transactions.

A worker's loop::

    trial = store.reclaim_expired(search_id, me, lease_s=60, max_attempts=3)
    if trial is None:
        arch = strategy.ask()  # outside any transaction
        trial = store.create_trial(search_id, arch, hash_of(arch), me, lease_s=60,
                                   budget=budget)  # None: the budget is taken
    ...  # evaluate, while a thread calls store.heartbeat(trial.trial_id, me, lease_s=60)
    ...  # and drops the trial when that answers False
    store.finish_trial(trial.trial_id, TrialState.COMPLETE, metrics, worker=me)

Lease times come from :meth:`Leases._now`: the ``clock`` the store was opened with, if any
(tests move it instead of sleeping), else :func:`server_now`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from storage.errors import StoreError
from storage.models import SearchLockModel, SearchModel, TrialModel
from storage.records import LockRecord, TrialRecord, TrialState
from storage.tables import utcnow

RUNNING = TrialState.RUNNING.value


def server_now(session: Session) -> datetime:
    """Now, as naive UTC, by the PostgreSQL server's clock, so that the leases that workers
    on different machines write and compare are on one clock; this machine's for SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        clock = func.timezone("UTC", func.clock_timestamp())
        now: datetime = session.execute(select(clock)).scalar_one()
        return now
    return utcnow()


def lease_end(now: datetime, lease_s: float) -> datetime:
    """When a lease of ``lease_s`` seconds taken ``now`` ends."""
    if lease_s <= 0:
        raise StoreError(f"a lease must last more than 0 s, not {lease_s!r}")
    return now + timedelta(seconds=lease_s)


class Leases:
    """Heartbeats, reclaiming expired trials and search locks (mixed into Store)."""

    _clock: Callable[[], datetime] | None = None  # Store(clock=...)
    _transaction: Callable[..., Any]
    _write_retrying: Callable[..., Any]
    _search_row: Callable[[Session, int], SearchModel]
    _trial_row: Callable[[Session, int], TrialModel]

    def _now(self, session: Session) -> datetime:
        """Now, as naive UTC, for every lease, lock and trial time: the injected clock when
        the store has one (an aware time is converted to UTC), else :func:`server_now`."""
        if self._clock is None:
            return server_now(session)
        now = self._clock()
        return now if now.tzinfo is None else now.astimezone(UTC).replace(tzinfo=None)

    def heartbeat(
        self, trial_id: int, worker: str | None = None, lease_s: float | None = None
    ) -> bool:
        """Record that the trial's worker is alive: ``heartbeat_at`` = now, and with
        ``lease_s`` its lease ends ``lease_s`` seconds from now.

        False, changing nothing, once the trial is no longer running (or, with ``worker``,
        no longer running under that worker: it was reclaimed after its lease expired); the
        worker should then drop it.
        """

        def beat(session: Session) -> bool:
            now = self._now(session)
            values: dict[str, Any] = {"heartbeat_at": now}
            if lease_s is not None:
                values["lease_expires_at"] = lease_end(now, lease_s)
            query = update(TrialModel).where(
                TrialModel.trial_id == trial_id, TrialModel.state == RUNNING
            )
            if worker is not None:
                query = query.where(TrialModel.worker == worker)
            changed = session.execute(
                query.values(**values).execution_options(synchronize_session=False)
            )
            if changed.rowcount == 0:  # type: ignore[attr-defined]
                self._trial_row(session, trial_id)  # StoreError if there is no such trial
                return False
            return True

        result: bool = self._transaction(beat)
        return result

    def release_trial(self, trial_id: int, worker: str) -> int:
        """End the lease of a trial running under ``worker`` now, so that the next
        :meth:`reclaim_expired` retries it (an interrupted worker gives its trial back; a
        dead process's trial is freed); returns 1, or 0 when it was not ``worker``'s."""

        def release(session: Session) -> int:
            changed = session.execute(
                update(TrialModel)
                .where(
                    TrialModel.trial_id == trial_id,
                    TrialModel.state == RUNNING,
                    TrialModel.worker == worker,
                )
                .values(lease_expires_at=self._now(session) - timedelta(seconds=1))
                .execution_options(synchronize_session=False)
            )
            return int(changed.rowcount)  # type: ignore[attr-defined]

        released: int = self._transaction(release)
        return released

    def reclaim_expired(
        self, search_id: int, worker: str, lease_s: float, max_attempts: int
    ) -> TrialRecord | None:
        """Take over the lowest-numbered running trial of the search whose lease expired
        (its worker died or lost the database): ``attempts`` + 1, ``worker``, a new lease,
        and ``started_at`` reset to now, so that ``duration_s`` is the attempt that finished
        it. A trial that had ``max_attempts`` already is failed instead, with the reason in
        its ``error``, and the next one is looked at. None when there is none to take.

        On PostgreSQL the rows are read with ``FOR UPDATE SKIP LOCKED``, so concurrent
        reclaimers never wait for each other nor get the same trial.
        """
        if max_attempts < 1:
            raise StoreError(f"max_attempts must be at least 1, not {max_attempts!r}")

        def reclaim(session: Session) -> TrialRecord | None:
            now = self._now(session)
            expired = (
                select(TrialModel)
                .where(
                    TrialModel.search_id == search_id,
                    TrialModel.state == RUNNING,
                    TrialModel.lease_expires_at < now,
                )
                .order_by(TrialModel.number)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            while (row := session.scalars(expired).first()) is not None:
                if row.attempts < max_attempts:
                    row.attempts += 1
                    row.worker = worker
                    row.started_at = row.heartbeat_at = now
                    row.lease_expires_at = lease_end(now, lease_s)
                    session.flush()
                    return row.to_record()
                row.state = TrialState.FAILED.value
                row.error = (
                    f"lease expired on attempt {row.attempts} of {max_attempts} "
                    f"(last worker {row.worker}); given up"
                )
                row.finished_at = now
                row.duration_s = (now - row.started_at).total_seconds()
                row.lease_expires_at = None
                session.flush()
            return None

        found: TrialRecord | None = self._transaction(reclaim)
        return found

    # search locks

    def acquire_lock(self, search_id: int, name: str, holder: str, lease_s: float) -> bool:
        """Take the search's lock ``name`` for ``lease_s`` seconds: True when it was free,
        had expired, or is ``holder``'s already (then renewed: call it again to renew);
        False while another holder's lease runs."""

        def acquire(session: Session) -> bool:
            now = self._now(session)
            expires_at = lease_end(now, lease_s)
            row = session.scalars(
                select(SearchLockModel).filter_by(search_id=search_id, name=name).with_for_update()
            ).first()
            if row is None:
                self._search_row(session, search_id)
                row = SearchLockModel(search_id=search_id, name=name)
                session.add(row)
            elif row.holder != holder and row.expires_at > now:
                return False
            row.holder, row.expires_at = holder, expires_at
            session.flush()  # two first takers: the unique key lets one win, the other retries
            return True

        taken: bool = self._write_retrying(acquire, f"take the lock {name!r} of a search")
        return taken

    def release_lock(self, search_id: int, name: str, holder: str) -> bool:
        """Give the lock back; False (and nothing changes) when ``holder`` did not hold it."""

        def release(session: Session) -> bool:
            gone = session.execute(
                delete(SearchLockModel).filter_by(search_id=search_id, name=name, holder=holder)
            )
            return bool(gone.rowcount)  # type: ignore[attr-defined]

        released: bool = self._transaction(release)
        return released

    def get_lock(self, search_id: int, name: str) -> LockRecord | None:
        """Who holds the search's lock ``name`` and until when (possibly past), if anyone."""

        def read(session: Session) -> LockRecord | None:
            query = select(SearchLockModel).filter_by(search_id=search_id, name=name)
            row = session.scalars(query).first()
            return None if row is None else row.to_record()

        found: LockRecord | None = self._transaction(read)
        return found
