"""Many workers on one search, on SQLite and PostgreSQL: the budget is exact under races,
expired trials are reclaimed (and given up after their last attempt), a worker that lost its
lease can neither renew nor finish, finishing is idempotent, search locks, finished_trials.

Leases expire on a test :class:`Clock` the stores are opened with, moved forward instead of
slept on; one test keeps the database's own clock (the default) and really waits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

import storage.leases
import storage.store
from storage import ArchTakenError, LostLeaseError, Store, StoreError, TrialRecord, TrialState
from storage.tables import trials, utcnow

COMPLETE, FAILED, RUNNING = TrialState.COMPLETE, TrialState.FAILED, TrialState.RUNNING
REPO = Path(__file__).resolve().parents[2]
TINY_LEASE_S = 0.2
PAST_TINY_LEASE = timedelta(seconds=TINY_LEASE_S + 0.1)


class Clock:
    """Now as naive UTC, starting at the real now and moving only when told to."""

    def __init__(self) -> None:
        self.time = utcnow()

    def now(self) -> datetime:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def open_store(store_url: str, clock: Clock) -> Iterator[Callable[[], Store]]:
    """Opens more stores on the test's database, all on the test's clock; closed after it."""
    opened: list[Store] = []

    def open_one() -> Store:
        opened.append(Store(store_url, clock=clock.now))
        return opened[-1]

    yield open_one
    for one in opened:
        one.close()


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    """The test's store, on the test's clock (this file's tests; the others use the real one)."""
    return open_store()


def _search(store: Store, name: str = "s") -> int:
    return store.create_search(name, {}, "h", "space", "random", 10, {}).search_id


def _expired(
    store: Store, clock: Clock, search_id: int, count: int, worker: str = "w1"
) -> list[TrialRecord]:
    """``count`` running trials of ``worker`` whose leases have expired."""
    created = [
        store.create_trial(search_id, {"i": i}, f"h{i}", worker, lease_s=TINY_LEASE_S)
        for i in range(count)
    ]
    clock.advance(TINY_LEASE_S + 0.1)
    return created


def _database_now(url: str) -> datetime:
    """Now by the database's own clock: the PostgreSQL server's (naive UTC); this machine's
    for SQLite."""
    if not url.startswith("postgresql"):
        return utcnow()
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            clock = select(func.timezone("UTC", func.clock_timestamp()))
            now: datetime = connection.execute(clock).scalar_one()
            return now
    finally:
        engine.dispose()


def _in_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` in ``count`` threads started together; re-raise the first error."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


# creating trials


def test_a_trial_keeps_its_memo_and_lease_and_starts_at_attempt_one(store: Store) -> None:
    search_id = _search(store)
    memo = {"population": [1, 2], "parent": None}
    leased = store.create_trial(search_id, {"w": 1}, "a", "w1", memo=memo, lease_s=60)
    plain = store.create_trial(search_id, {"w": 2}, "b", "w1")
    assert leased.memo == memo and leased.attempts == 1
    assert leased.lease_expires_at is not None
    assert leased.lease_expires_at - leased.started_at == timedelta(seconds=60)
    assert plain.memo is None and plain.lease_expires_at is None and plain.attempts == 1
    assert store.trials(search_id) == [leased, plain]
    with pytest.raises(StoreError, match="more than 0 s"):
        store.create_trial(search_id, {}, "c", "w1", lease_s=0)


def test_the_budget_counts_complete_and_running_trials_but_not_failed_ones(store: Store) -> None:
    search_id = _search(store)
    first = store.create_trial(search_id, {}, "a", "w", budget=3)
    second = store.create_trial(search_id, {}, "b", "w", budget=3)
    failed = store.create_trial(search_id, {}, "c", "w", budget=3)
    assert first is not None and second is not None and failed is not None
    store.finish_trial(first.trial_id, COMPLETE, {"accuracy": 0.5})
    store.finish_trial(failed.trial_id, FAILED, error="boom")
    infeasible = store.create_trial(search_id, {}, "d", "w", budget=3)
    assert infeasible is not None
    store.finish_trial(infeasible.trial_id, TrialState.INFEASIBLE)
    last = store.create_trial(search_id, {}, "e", "w", budget=3)
    assert last is not None and last.number == 4
    assert store.create_trial(search_id, {}, "f", "w", budget=3) is None  # 1 complete, 2 running
    store.finish_trial(second.trial_id, FAILED)
    assert store.create_trial(search_id, {}, "g", "w", budget=3) is not None
    assert store.create_trial(search_id, {}, "h", "w", budget=3) is None
    assert store.count_trials(search_id) == 6


def test_eight_threads_racing_for_a_budget_complete_exactly_that_many_trials(
    store: Store, open_store: Callable[[], Store]
) -> None:
    search_id, budget = _search(store), 24
    stores = [open_store() for _ in range(8)]

    def work(i: int) -> None:
        mine, worker = stores[i], f"thread-{i}"
        while (trial := mine.create_trial(search_id, {}, "h", worker, budget=budget)) is not None:
            mine.finish_trial(trial.trial_id, COMPLETE, {"accuracy": 0.5}, worker=worker)

    _in_threads(8, work)
    done = store.trials(search_id)
    assert [t.number for t in done] == list(range(budget))
    assert all(t.state is COMPLETE for t in done)


_WORKER = textwrap.dedent(
    """
    import sys, time
    from storage import Store, TrialState

    url, search_id, budget, worker = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    with Store(url) as store:
        print("ready", flush=True)
        sys.stdin.readline()  # all start together
        while True:
            trial = store.create_trial(search_id, {}, "h", worker, budget=budget)
            if trial is None:
                break
            time.sleep(0.01)  # evaluating
            metrics = {"accuracy": 0.5}
            store.finish_trial(trial.trial_id, TrialState.COMPLETE, metrics, worker=worker)
    """
)


@pytest.mark.slow
def test_three_processes_racing_for_a_budget_complete_exactly_that_many_trials(
    store: Store, store_url: str
) -> None:
    search_id, budget = _search(store), 30
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    arguments = [store_url, str(search_id), str(budget)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, *arguments, f"process-{i}"],
            env={**os.environ, "PYTHONPATH": path},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    for worker in workers:
        _, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr
    done = store.trials(search_id)
    assert [t.number for t in done] == list(range(budget))
    assert all(t.state is COMPLETE for t in done)
    assert len({t.worker for t in done}) == 3  # they did race


# reclaiming expired trials


def test_an_expired_trial_is_reclaimed_by_another_worker_who_finishes_it(
    store: Store, clock: Clock
) -> None:
    search_id = _search(store)
    alive = store.create_trial(search_id, {"w": 0}, "a", "w0", lease_s=60)
    trial = store.create_trial(search_id, {"w": 1}, "b", "w1", memo={"m": 1}, lease_s=TINY_LEASE_S)
    clock.advance(TINY_LEASE_S + 0.1)
    taken = store.reclaim_expired(search_id, "w2", lease_s=60, max_attempts=3)
    assert taken is not None and taken.trial_id == trial.trial_id  # not the one alive
    assert (taken.worker, taken.attempts, taken.state) == ("w2", 2, RUNNING)
    assert (taken.arch, taken.memo, taken.number) == ({"w": 1}, {"m": 1}, 1)
    assert taken.started_at - trial.started_at == PAST_TINY_LEASE
    assert taken.heartbeat_at == taken.started_at
    assert taken.lease_expires_at == taken.started_at + timedelta(seconds=60)
    assert store.reclaim_expired(search_id, "w3", lease_s=60, max_attempts=3) is None

    assert store.heartbeat(trial.trial_id, "w1", lease_s=60) is False
    with pytest.raises(LostLeaseError, match="w2 runs it now \\(attempt 2\\)"):
        store.finish_trial(trial.trial_id, COMPLETE, {"accuracy": 0.1}, worker="w1")
    assert store.trials(search_id) == [alive, taken]  # w1 changed nothing
    assert store.heartbeat(trial.trial_id, "w2", lease_s=60) is True
    clock.advance(5)
    done = store.finish_trial(trial.trial_id, COMPLETE, {"accuracy": 0.9}, worker="w2")
    assert (done.state, done.accuracy, done.worker, done.attempts) == (COMPLETE, 0.9, "w2", 2)
    assert done.lease_expires_at is None and done.duration_s == 5.0  # the attempt that finished


def test_a_trial_is_given_up_as_failed_after_its_last_attempt(store: Store, clock: Clock) -> None:
    search_id = _search(store)
    first, second = _expired(store, clock, search_id, 2)
    again = store.reclaim_expired(search_id, "w2", lease_s=TINY_LEASE_S, max_attempts=2)
    assert again is not None and again.trial_id == first.trial_id and again.attempts == 2
    clock.advance(TINY_LEASE_S + 0.1)
    # the first trial has had its 2 attempts: it fails, and the second is taken instead
    next_one = store.reclaim_expired(search_id, "w3", lease_s=60, max_attempts=2)
    assert next_one is not None and next_one.trial_id == second.trial_id
    given_up = store.trials(search_id, [FAILED])
    assert [t.trial_id for t in given_up] == [first.trial_id]
    assert given_up[0].error == "lease expired on attempt 2 of 2 (last worker w2); given up"
    assert given_up[0].finished_at is not None and given_up[0].lease_expires_at is None
    assert given_up[0].finished_at - again.started_at == PAST_TINY_LEASE
    assert given_up[0].duration_s == PAST_TINY_LEASE.total_seconds()
    with pytest.raises(LostLeaseError, match="already failed: lease expired on attempt 2"):
        store.finish_trial(first.trial_id, COMPLETE, worker="w2")
    with pytest.raises(StoreError, match="at least 1"):
        store.reclaim_expired(search_id, "w3", lease_s=60, max_attempts=0)


def test_trials_without_a_lease_or_with_a_renewed_one_are_not_reclaimed(
    store: Store, clock: Clock
) -> None:
    search_id = _search(store)
    store.create_trial(search_id, {}, "a", "w1")
    renewed = store.create_trial(search_id, {}, "b", "w1", lease_s=TINY_LEASE_S)
    clock.advance(TINY_LEASE_S / 2)
    assert store.heartbeat(renewed.trial_id, "w1", lease_s=60) is True
    clock.advance(TINY_LEASE_S + 0.1)
    assert store.reclaim_expired(search_id, "w2", lease_s=60, max_attempts=3) is None
    beaten = store.trials(search_id)[1]
    assert beaten.lease_expires_at is not None and beaten.heartbeat_at is not None
    assert beaten.heartbeat_at - renewed.started_at == timedelta(seconds=TINY_LEASE_S / 2)
    assert beaten.lease_expires_at == beaten.heartbeat_at + timedelta(seconds=60)


def test_a_lease_runs_until_its_end_and_is_reclaimed_just_after(store: Store, clock: Clock) -> None:
    search_id = _search(store)
    trial = store.create_trial(search_id, {}, "h", "w1", lease_s=30)
    clock.advance(30)  # the last instant of the lease
    assert store.reclaim_expired(search_id, "w2", lease_s=30, max_attempts=3) is None
    assert store.heartbeat(trial.trial_id, "w1") is True  # renews nothing: no lease_s
    clock.advance(0.000001)
    taken = store.reclaim_expired(search_id, "w2", lease_s=30, max_attempts=3)
    assert taken is not None and taken.trial_id == trial.trial_id and taken.worker == "w2"
    assert store.heartbeat(trial.trial_id, "w1", lease_s=30) is False


def test_without_a_clock_a_lease_expires_by_the_database_clock(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default, on the real clock: PostgreSQL's server clock, which a worker whose own
    clock is an hour slow does not change; this machine's for SQLite."""
    if store_url.startswith("postgresql"):
        slow = lambda: utcnow() - timedelta(hours=1)  # noqa: E731
        monkeypatch.setattr(storage.leases, "utcnow", slow)
        monkeypatch.setattr(storage.store, "utcnow", slow)
    with Store(store_url) as store:
        search_id = _search(store)
        before = _database_now(store_url)
        alive = store.create_trial(search_id, {}, "a", "w0", lease_s=60)
        short = store.create_trial(search_id, {}, "b", "w1", lease_s=TINY_LEASE_S)
        after = _database_now(store_url)
        assert (
            before
            <= alive.started_at.replace(tzinfo=None)
            <= short.started_at.replace(tzinfo=None)
            <= after
        )
        time.sleep(TINY_LEASE_S + 0.1)  # the real wait that the other tests move a clock for
        taken = store.reclaim_expired(search_id, "w2", lease_s=60, max_attempts=3)
        assert taken is not None and taken.trial_id == short.trial_id
        assert taken.started_at.replace(tzinfo=None) - after >= PAST_TINY_LEASE
        assert store.reclaim_expired(search_id, "w3", lease_s=60, max_attempts=3) is None


def test_concurrent_reclaimers_never_take_the_same_trial(
    store: Store, clock: Clock, open_store: Callable[[], Store]
) -> None:
    search_id = _search(store)
    expired = _expired(store, clock, search_id, 12)
    taken: list[int] = []
    stores = [open_store() for _ in range(4)]

    def work(i: int) -> None:
        while (trial := stores[i].reclaim_expired(search_id, f"r{i}", 60, 3)) is not None:
            taken.append(trial.trial_id)

    _in_threads(4, work)
    assert sorted(taken) == [t.trial_id for t in expired]
    assert all(t.attempts == 2 for t in store.trials(search_id))


@pytest.mark.postgres
def test_a_reclaimer_skips_a_trial_locked_by_another_transaction(
    postgresql_url: str, clock: Clock
) -> None:
    with Store(postgresql_url, clock=clock.now) as store:
        search_id = _search(store)
        locked, free = _expired(store, clock, search_id, 2)
        found: list[TrialRecord | None] = []
        engine = create_engine(postgresql_url)
        try:
            with engine.begin() as other:  # another reclaimer, busy with the first trial
                row = select(trials).where(trials.c.trial_id == locked.trial_id)
                other.execute(row.with_for_update())
                reclaimer = threading.Thread(
                    target=lambda: found.append(store.reclaim_expired(search_id, "w2", 60, 3))
                )
                reclaimer.start()
                reclaimer.join(timeout=10)
                assert not reclaimer.is_alive(), "the reclaimer waited for a locked row"
        finally:
            engine.dispose()
        assert found[0] is not None and found[0].trial_id == free.trial_id
        later = store.reclaim_expired(search_id, "w3", 60, 3)
        assert later is not None and later.trial_id == locked.trial_id


# heartbeats and finishing


def test_a_heartbeat_without_a_worker_answers_whether_the_trial_still_runs(store: Store) -> None:
    trial = store.create_trial(_search(store), {}, "h", "w")
    assert store.heartbeat(trial.trial_id) is True
    assert store.trials(trial.search_id)[0].lease_expires_at is None
    store.finish_trial(trial.trial_id, COMPLETE, {"accuracy": 0.5})
    finished = store.trials(trial.search_id)[0]
    assert store.heartbeat(trial.trial_id) is False
    assert store.trials(trial.search_id) == [finished]
    with pytest.raises(StoreError, match="no trial with id"):
        store.heartbeat(trial.trial_id + 100)


def test_finishing_again_by_the_same_worker_in_the_same_state_returns_the_trial(
    store: Store,
) -> None:
    trial = store.create_trial(_search(store), {}, "h", "w1", lease_s=60)
    done = store.finish_trial(trial.trial_id, COMPLETE, {"accuracy": 0.7}, worker="w1")
    again = store.finish_trial(trial.trial_id, COMPLETE, {"accuracy": 0.7}, worker="w1")
    assert again == done
    with pytest.raises(LostLeaseError, match="already complete by w1"):
        store.finish_trial(trial.trial_id, FAILED, error="late", worker="w1")
    with pytest.raises(LostLeaseError, match="no longer w2's"):
        store.finish_trial(trial.trial_id, COMPLETE, {"accuracy": 0.7}, worker="w2")
    with pytest.raises(StoreError, match="already complete"):
        store.finish_trial(trial.trial_id, COMPLETE, {"accuracy": 0.7})
    assert store.trials(trial.search_id) == [done]


# search locks


def test_a_search_lock_is_exclusive_renewable_and_released_by_its_holder(store: Store) -> None:
    search_id = _search(store)
    assert store.get_lock(search_id, "supernet") is None
    assert store.acquire_lock(search_id, "supernet", "w1", lease_s=60) is True
    first = store.get_lock(search_id, "supernet")
    assert store.acquire_lock(search_id, "supernet", "w2", lease_s=60) is False
    assert store.acquire_lock(search_id, "other", "w2", lease_s=60) is True
    assert store.acquire_lock(search_id, "supernet", "w1", lease_s=120) is True  # renews
    renewed = store.get_lock(search_id, "supernet")
    assert first is not None and renewed is not None and renewed.holder == "w1"
    assert renewed.expires_at > first.expires_at
    assert store.release_lock(search_id, "supernet", "w2") is False
    assert store.release_lock(search_id, "supernet", "w1") is True
    assert store.release_lock(search_id, "supernet", "w1") is False
    assert store.acquire_lock(search_id, "supernet", "w2", lease_s=60) is True
    with pytest.raises(StoreError, match="no search with id"):
        store.acquire_lock(search_id + 100, "supernet", "w1", lease_s=60)


def test_an_expired_search_lock_is_taken_over(store: Store, clock: Clock) -> None:
    search_id = _search(store)
    assert store.acquire_lock(search_id, "supernet", "w1", lease_s=60) is True
    assert store.acquire_lock(search_id, "supernet", "w2", lease_s=60) is False
    assert store.acquire_lock(search_id, "supernet", "w1", lease_s=TINY_LEASE_S) is True
    clock.advance(TINY_LEASE_S / 2)
    assert store.acquire_lock(search_id, "supernet", "w2", lease_s=60) is False
    clock.advance(TINY_LEASE_S / 2 + 0.1)
    assert store.acquire_lock(search_id, "supernet", "w2", lease_s=60) is True
    assert store.acquire_lock(search_id, "supernet", "w1", lease_s=60) is False
    lock = store.get_lock(search_id, "supernet")
    assert lock is not None and lock.holder == "w2"


def test_one_of_many_racing_takers_gets_a_search_lock(
    store: Store, open_store: Callable[[], Store]
) -> None:
    search_id = _search(store)
    stores = [open_store() for _ in range(6)]
    winners: list[str] = []

    def work(i: int) -> None:
        if stores[i].acquire_lock(search_id, "supernet", f"w{i}", lease_s=60):
            winners.append(f"w{i}")

    _in_threads(6, work)
    lock = store.get_lock(search_id, "supernet")
    assert len(winners) == 1 and lock is not None and lock.holder == winners[0]


# catching up with other workers


def test_finished_trials_since_a_time_are_those_finished_then_or_later(
    store: Store, clock: Clock
) -> None:
    search_id, other = _search(store, "a"), _search(store, "b")
    early = store.create_trial(search_id, {}, "h", "w")
    store.create_trial(search_id, {}, "h", "w")  # stays running
    late = store.create_trial(search_id, {}, "h", "w")
    failed = store.create_trial(search_id, {}, "h", "w")
    store.create_trial(other, {}, "h", "w")
    first = store.finish_trial(early.trial_id, COMPLETE, {"accuracy": 0.5})
    clock.advance(0.05)
    store.finish_trial(failed.trial_id, FAILED, error="boom")
    store.finish_trial(late.trial_id, COMPLETE, {"accuracy": 0.6})
    everything = store.finished_trials(search_id)
    assert [t.number for t in everything] == [0, 2, 3]
    assert first.finished_at is not None
    assert [t.number for t in store.finished_trials(search_id, first.finished_at)] == [0, 2, 3]
    after = first.finished_at + timedelta(microseconds=1)
    assert [t.number for t in store.finished_trials(search_id, after)] == [2, 3]
    naive = after.replace(tzinfo=None)  # naive is UTC
    assert [t.number for t in store.finished_trials(search_id, naive)] == [2, 3]
    assert store.finished_trials(search_id, after + timedelta(hours=1)) == []
    assert store.finished_trials(other) == []


def test_a_network_running_or_complete_cannot_get_a_second_trial_when_unique(
    store: Store,
) -> None:
    search_id = store.create_search("u", {}, "h", "s", "random", 5, {}).search_id
    first = store.create_trial(search_id, {"a": 1}, "aaaa", "w1", lease_s=30, unique=True)
    with pytest.raises(ArchTakenError):
        store.create_trial(search_id, {"a": 1}, "aaaa", "w2", lease_s=30, unique=True)
    store.finish_trial(first.trial_id, TrialState.COMPLETE, {"accuracy": 0.5})
    with pytest.raises(ArchTakenError):
        store.create_trial(search_id, {"a": 1}, "aaaa", "w2", lease_s=30, unique=True)
    other = store.create_trial(search_id, {"a": 2}, "bbbb", "w2", lease_s=30, unique=True)
    store.finish_trial(other.trial_id, TrialState.FAILED, error="boom")
    retry = store.create_trial(search_id, {"a": 2}, "bbbb", "w2", lease_s=30, unique=True)
    assert retry.number == 2, "a failed network may be tried again"
    assert [t.number for t in store.trials(search_id)] == [0, 1, 2]
