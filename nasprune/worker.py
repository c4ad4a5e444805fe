"""A worker's loop: take the next trial of a search, evaluate it under a lease, finish it.

Any number of workers, on any number of machines, can run one search through one store. Each
turn a worker stops if the search was cancelled; else it first retries a trial whose lease
expired (its worker was killed or its machine lost), else brings its strategy up to date with
the trials finished since its last turn and creates a new trial, if the budget leaves room:
complete plus running trials never exceed it, so the search ends with exactly its budget of
complete trials. While it evaluates, a thread renews the trial's lease; a worker whose lease
was taken over drops its result (the new holder finishes the trial). A trial evaluated
``max_attempts`` times without finishing is failed with the reason. A trial left running by a
dead process on this host is retried at once, without waiting for its lease to expire.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from nasprune.config import SearchConfig
from nasprune.errors import SearchError
from nasprune.proposer import Exhausted, Proposer, Values
from nasprune.queries import limits_of_record
from nasprune.session import Observer, Session
from nasprune.trial_metrics import evaluate
from storage import (
    ArchTakenError,
    LostLeaseError,
    SearchRecord,
    SearchStatus,
    Store,
    StoreError,
    TrialRecord,
    TrialState,
)

log = logging.getLogger(__name__)

Told = Callable[[TrialRecord], Values]


@dataclass
class Turns:
    """How a worker's loop ended."""

    stopped_because: str  # "budget", "time", "exhausted", "max-trials", "cancelled"
    new_trials: int  # trials this worker evaluated (new ones and retries)


class LeaseLost(Exception):
    """Another worker took this trial over: its lease expired while it was being evaluated."""


class Heartbeat:
    """Calls ``renew`` from a thread every ``interval`` seconds while the main thread works;
    ``renew`` answers whether the lease is still held."""

    def __init__(self, renew: Callable[[], bool], interval: float, what: str) -> None:
        self._renew, self._interval, self._what = renew, interval, what
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._run, name="nasprune-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                held = self._renew()
            except StoreError as exc:  # the store already retried a lost connection
                log.warning("could not renew the lease of %s: %s", self._what, exc)
                continue
            if not held:
                self.lost = True
                return

    def check(self) -> None:
        """Raise :class:`LeaseLost` once another worker holds the lease (long work calls it)."""
        if self.lost:
            raise LeaseLost()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def trial_heartbeat(session: Session, trial: TrialRecord) -> Heartbeat:
    lease_s = session.config.execution.lease_s
    return Heartbeat(
        lambda: session.store.heartbeat(trial.trial_id, worker=session.worker, lease_s=lease_s),
        lease_s / 3,
        f"trial {trial.number}",
    )


def told_values(session: Session, trial: TrialRecord) -> Values:
    """What the strategy learns from a finished trial: objective values, or None if it failed,
    was screened out, or broke a measured constraint."""
    config = session.config
    if trial.state != TrialState.COMPLETE:
        return None
    for metric, limit in config.constraints.items():
        value = getattr(trial, metric)
        if value is not None and value > limit.max:
            return None
    return [float(getattr(trial, o.metric)) for o in config.objectives]


class _History:
    """Keeps the proposer up to date with the search's finished trials, cheaply: each refresh
    reads only the trials finished since the last one (by time, with a margin for clocks)."""

    MARGIN = timedelta(seconds=5)

    def __init__(self, session: Session, proposer: Proposer) -> None:
        self.session, self.proposer = session, proposer
        self.since: datetime | None = None

    def refresh(self) -> None:
        store, search_id = self.session.store, self.session.search.search_id
        trials = store.finished_trials(search_id, self.since)
        latest = max((t.finished_at for t in trials if t.finished_at), default=None)
        if latest is not None:
            self.since = latest - self.MARGIN
        self.proposer.add(trials, lambda t: told_values(self.session, t))


def free_dead_local_trials(session: Session) -> int:
    """Release the leases of running trials whose worker was a process on this host that is
    gone (killed, crashed), so that they are retried now; returns how many."""
    store, search_id = session.store, session.search.search_id
    host = socket.gethostname()
    freed = 0
    for trial in store.trials(search_id, [TrialState.RUNNING]):
        name, _, pid = trial.worker.rpartition(":")
        if name == host and pid.isdigit() and not _alive(int(pid)):
            freed += store.release_trial(trial.trial_id, trial.worker)
    return freed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def work(
    session: Session,
    proposer: Proposer,
    observer: Observer,
    started: float,
    max_trials: int | None = None,
) -> Turns:
    """Take turns until the budget, the time limit, ``max_trials`` or the space is spent. The
    time limit counts from ``started`` and is checked after each trial."""
    config, store, search = session.config, session.store, session.search
    store.add_event(search.search_id, "worker", f"{session.worker} joined")
    history = _History(session, proposer)
    history.refresh()
    free_dead_local_trials(session)
    evaluated = failures = 0
    while True:
        record = store.get_search(search.name)
        if record.status == SearchStatus.CANCELLED:  # the trial in hand was finished first
            return Turns("cancelled", evaluated)
        budget = record.budget_trials
        completed = store.count_trials(search.search_id, [TrialState.COMPLETE])
        if completed >= budget:
            return Turns("budget", evaluated)
        if max_trials is not None and evaluated >= max_trials:
            return Turns("max-trials", evaluated)
        trial = _next_trial(session, proposer, history, budget, completed)
        if trial is None:
            if not store.count_trials(search.search_id, [TrialState.RUNNING]):
                return Turns("exhausted", evaluated)
            time.sleep(_poll_s(session))  # others run the last trials, or the space is spent
            continue
        finished = _run_trial(session, trial)
        evaluated += 1
        if finished is None:  # another worker holds it now
            continue
        proposer.add([finished], lambda t: told_values(session, t))
        if finished.state == TrialState.COMPLETE:
            completed += 1
        elif finished.state == TrialState.FAILED:
            failures += 1
            if failures > max(3, budget // 10):
                store.set_search_status(search.search_id, SearchStatus.FAILED)
                raise SearchError(
                    f"search {search.name!r}: {failures} trials failed; last: {finished.error}"
                )
        observer.trial_done(finished, completed, budget, _best_value(session))
        if config.budget.time is not None and time.monotonic() - started >= config.budget.time:
            return Turns("time" if completed < budget else "budget", evaluated)


def _poll_s(session: Session) -> float:
    return min(1.0, session.config.execution.lease_s / 4)


def _next_trial(
    session: Session, proposer: Proposer, history: _History, budget: int, completed: int
) -> TrialRecord | None:
    """A trial to evaluate now: an expired one to retry first, else a new one the budget has
    room for; None when there is nothing to do yet."""
    store, search_id = session.store, session.search.search_id
    execution = session.config.execution
    trial = store.reclaim_expired(
        search_id, session.worker, execution.lease_s, execution.max_attempts
    )
    if trial is not None:
        return trial
    while True:
        history.refresh()
        running = store.trials(search_id, [TrialState.RUNNING])
        if completed + len(running) >= budget:
            return None  # the budget is taken by running trials: no proposal is spent
        try:
            candidate = proposer.next(store.count_trials(search_id), {t.arch_hash for t in running})
        except Exhausted:
            return None
        try:
            return store.create_trial(
                search_id,
                candidate.arch,
                candidate.key,
                session.worker,
                memo=candidate.memo,
                lease_s=execution.lease_s,
                budget=budget,
                unique=True,
            )
        except ArchTakenError:  # another worker proposed it a moment earlier: ask again
            completed = store.count_trials(search_id, [TrialState.COMPLETE])


def _run_trial(session: Session, trial: TrialRecord) -> TrialRecord | None:
    """Evaluate a claimed trial under its lease and finish it. A crash of the evaluation is a
    failed trial; an interrupt gives the trial back to the queue (and is re-raised); None
    when the lease was lost and another worker finishes the trial."""
    store, worker = session.store, session.worker
    try:
        with trial_heartbeat(session, trial) as beat:
            with _released_on_interrupt(session, trial):
                try:
                    state, metrics, latency_key = evaluate(session, trial, beat.check)
                except LeaseLost:
                    raise
                except Exception as exc:  # an evaluation that crashes is a failed trial
                    return store.finish_trial(
                        trial.trial_id,
                        TrialState.FAILED,
                        error=f"{type(exc).__name__}: {exc}",
                        worker=worker,
                    )
        return store.finish_trial(
            trial.trial_id, state, metrics, latency_key=latency_key, worker=worker
        )
    except (LeaseLost, LostLeaseError):
        store.add_event(
            session.search.search_id,
            "lease",
            f"trial {trial.number}: {worker} lost its lease; another worker retries it",
        )
        return None


@contextmanager
def _released_on_interrupt(session: Session, trial: TrialRecord) -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        session.store.release_trial(trial.trial_id, session.worker)
        raise


def best(session: Session) -> TrialRecord | None:
    """The search's best complete trial by its first objective, within its limits."""
    return told_best(session.store, session.search, session.config)


def told_best(store: Store, search: SearchRecord, config: SearchConfig) -> TrialRecord | None:
    """:func:`best` from its parts."""
    first = config.objectives[0]
    return store.best_trial(
        search.search_id, first.metric, first.direction, **limits_of_record(search)
    )


def _best_value(session: Session) -> float | None:
    found = best(session)
    return None if found is None else getattr(found, session.config.objectives[0].metric)
