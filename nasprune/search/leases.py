"""What keeps a worker's claims held: a heartbeat thread that renews a trial's lease or the
supernet lock while the work goes on, and the release of trials whose worker died here.

A worker is named ``host:pid``; a trial held by a dead pid on this host is freed at once
(:func:`free_dead_local_trials`), one held elsewhere when its lease expires.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from storage import Store, StoreError, TrialRecord, TrialState

log = logging.getLogger(__name__)


def worker_name() -> str:
    """``host:pid``: who holds a trial's lease (a dead pid on this host frees it at once)."""
    return f"{socket.gethostname()}:{os.getpid()}"


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


def trial_heartbeat(store: Store, trial: TrialRecord, worker: str, lease_s: float) -> Heartbeat:
    """The heartbeat that renews ``worker``'s lease on ``trial`` every third of the lease."""
    return Heartbeat(
        lambda: store.heartbeat(trial.trial_id, worker=worker, lease_s=lease_s),
        lease_s / 3,
        f"trial {trial.number}",
    )


@contextmanager
def supernet_lock(store: Store, search_id: int, worker: str, lease_s: float) -> Iterator[None]:
    """Hold the search's supernet lock, renewed by a heartbeat, while the body runs: the first
    worker trains and records the checkpoint (with its checksum) in the store; the others wait
    here, then find the checkpoint and load it. A lock whose holder died expires."""
    while not store.acquire_lock(search_id, "supernet", worker, lease_s):
        time.sleep(min(1.0, lease_s / 4))
    renew = Heartbeat(
        lambda: store.acquire_lock(search_id, "supernet", worker, lease_s),
        lease_s / 3,
        "the supernet lock",
    )
    try:
        with renew:
            yield
    finally:
        store.release_lock(search_id, "supernet", worker)


def free_dead_local_trials(store: Store, search_id: int) -> int:
    """Release the leases of running trials whose worker was a process on this host that is
    gone (killed, crashed), so that they are retried now; returns how many."""
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
