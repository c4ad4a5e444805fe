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

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from nasprune.errors import SearchError
from nasprune.lifecycle import StoppedBecause
from nasprune.queries import limits_of_record
from nasprune.search.leases import LeaseLost, free_dead_local_trials, trial_heartbeat
from nasprune.search.proposer import Exhausted, Proposer, Values
from nasprune.search.trial import evaluate
from nasprune.search.worker import Observer, Worker
from storage import (
    ArchTakenError,
    LostLeaseError,
    SearchStatus,
    TrialRecord,
    TrialState,
)

Told = Callable[[TrialRecord], Values]


@dataclass
class Turns:
    """How a worker's loop ended."""

    stopped_because: StoppedBecause
    new_trials: int  # trials this worker evaluated (new ones and retries)


def told_values(worker: Worker, trial: TrialRecord) -> Values:
    """What the strategy learns from a finished trial: objective values, or None if it failed,
    was screened out, or broke a measured constraint."""
    config = worker.search.config
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

    def __init__(self, worker: Worker, proposer: Proposer) -> None:
        self.worker, self.proposer = worker, proposer
        self.since: datetime | None = None

    def refresh(self) -> None:
        store, search_id = self.worker.search.store, self.worker.search.record.search_id
        trials = store.finished_trials(search_id, self.since)
        latest = max((t.finished_at for t in trials if t.finished_at), default=None)
        if latest is not None:
            self.since = latest - self.MARGIN
        self.proposer.add(trials, lambda t: told_values(self.worker, t))


def work(
    worker: Worker,
    proposer: Proposer,
    observer: Observer,
    started: float,
    max_trials: int | None = None,
) -> Turns:
    """Take turns until the budget, the time limit, ``max_trials`` or the space is spent. The
    time limit counts from ``started`` and is checked after each trial."""
    config, store, search = worker.search.config, worker.search.store, worker.search.record
    store.add_event(search.search_id, "worker", f"{worker.name} joined")
    history = _History(worker, proposer)
    history.refresh()
    free_dead_local_trials(store, search.search_id)
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
        trial = _next_trial(worker, proposer, history, budget, completed)
        if trial is None:
            if not store.count_trials(search.search_id, [TrialState.RUNNING]):
                return Turns("exhausted", evaluated)
            time.sleep(_poll_s(worker))  # others run the last trials, or the space is spent
            continue
        finished = _run_trial(worker, trial)
        evaluated += 1
        if finished is None:  # another worker holds it now
            continue
        proposer.add([finished], lambda t: told_values(worker, t))
        if finished.state == TrialState.COMPLETE:
            completed += 1
        elif finished.state == TrialState.FAILED:
            failures += 1
            if failures > max(3, budget // 10):
                store.set_search_status(search.search_id, SearchStatus.FAILED)
                raise SearchError(
                    f"search {search.name!r}: {failures} trials failed; last: {finished.error}"
                )
        observer.trial_done(finished, completed, budget, _best_value(worker))
        if config.budget.time is not None and time.monotonic() - started >= config.budget.time:
            return Turns("time" if completed < budget else "budget", evaluated)


def _poll_s(worker: Worker) -> float:
    return min(1.0, worker.search.config.execution.lease_s / 4)


def _next_trial(
    worker: Worker, proposer: Proposer, history: _History, budget: int, completed: int
) -> TrialRecord | None:
    """A trial to evaluate now: an expired one to retry first, else a new one the budget has
    room for; None when there is nothing to do yet."""
    store, search_id = worker.search.store, worker.search.record.search_id
    execution = worker.search.config.execution
    trial = store.reclaim_expired(search_id, worker.name, execution.lease_s, execution.max_attempts)
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
                worker.name,
                memo=candidate.memo,
                lease_s=execution.lease_s,
                budget=budget,
                unique=True,
            )
        except ArchTakenError:  # another worker proposed it a moment earlier: ask again
            completed = store.count_trials(search_id, [TrialState.COMPLETE])


def _run_trial(worker: Worker, trial: TrialRecord) -> TrialRecord | None:
    """Evaluate a claimed trial under its lease and finish it. A crash of the evaluation is a
    failed trial; an interrupt gives the trial back to the queue (and is re-raised); None
    when the lease was lost and another worker finishes the trial."""
    store, name = worker.search.store, worker.name
    try:
        lease_s = worker.search.config.execution.lease_s
        with trial_heartbeat(store, trial, name, lease_s) as beat:
            with _released_on_interrupt(worker, trial):
                try:
                    state, metrics, latency_key = evaluate(worker, trial, beat.check)
                except LeaseLost:
                    raise
                except Exception as exc:  # an evaluation that crashes is a failed trial
                    return store.finish_trial(
                        trial.trial_id,
                        TrialState.FAILED,
                        error=f"{type(exc).__name__}: {exc}",
                        worker=name,
                    )
        return store.finish_trial(
            trial.trial_id, state, metrics, latency_key=latency_key, worker=name
        )
    except (LeaseLost, LostLeaseError):
        store.add_event(
            worker.search.record.search_id,
            "lease",
            f"trial {trial.number}: {name} lost its lease; another worker retries it",
        )
        return None


@contextmanager
def _released_on_interrupt(worker: Worker, trial: TrialRecord) -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        worker.search.store.release_trial(trial.trial_id, worker.name)
        raise


def best(worker: Worker) -> TrialRecord | None:
    """The search's best complete trial by its first objective, within its limits."""
    search, first = worker.search, worker.search.config.objectives[0]
    return search.store.best_trial(
        search.record.search_id, first.metric, first.direction, **limits_of_record(search.record)
    )


def _best_value(worker: Worker) -> float | None:
    found = best(worker)
    return None if found is None else getattr(found, worker.search.config.objectives[0].metric)
