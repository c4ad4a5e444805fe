"""Deriving a space: its progress lines and its time limit, never a silent hang.

Deriving traces the model, finds its channel groups and blocks, and checks every group on a
probe input; on a big model that takes a while, and a graph walk of a library may not end.
Each step is logged (logger ``search_spaces.derived``, level INFO: ``nasprune run`` shows it
as a progress line), and the whole derivation runs under a time limit,
``NASPRUNE_DERIVE_TIMEOUT_S`` seconds (default 600). In the main thread a timer interrupts a
step that overruns; in another thread the limit is checked between steps.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from search_spaces.dimensions import SpaceError

log = logging.getLogger("search_spaces.derived")
DEFAULT_TIMEOUT_S = 600.0


class _Overrun(BaseException):
    """Raised by the timer inside the step that overran (a BaseException, so that no
    ``except Exception`` of a library swallows it)."""


def timeout_s() -> float:
    raw = os.environ.get("NASPRUNE_DERIVE_TIMEOUT_S", str(DEFAULT_TIMEOUT_S))
    try:
        value = float(raw)
    except ValueError:
        raise SpaceError(
            f"NASPRUNE_DERIVE_TIMEOUT_S must be a number of seconds, got {raw!r}"
        ) from None
    if not value > 0:
        raise SpaceError(f"NASPRUNE_DERIVE_TIMEOUT_S must be above 0, got {raw!r}")
    return value


class Deadline:
    """The time limit of one derivation and the step it is in."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.current = "starting"

    def step(self, what: str) -> None:
        """Enter a new step: log it, and fail if the time is already up."""
        self.current = what
        log.info("derive: %s", what)
        if time.monotonic() - self.started > self.seconds:
            raise self.error()

    def error(self) -> SpaceError:
        return SpaceError(
            f"deriving the space took over {self.seconds:g} s and was stopped while "
            f"{self.current}; list the modules it stalls on under ignore (or blocks: none), "
            "or raise NASPRUNE_DERIVE_TIMEOUT_S"
        )


@contextmanager
def derivation(what: str) -> Iterator[Deadline]:
    """A :class:`Deadline` for the body; a step still running at the limit is interrupted
    (main thread) and the derivation fails with one line naming the step."""
    deadline = Deadline(timeout_s())
    log.info("derive: %s", what)
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield deadline
        return

    def overrun(signum: int, frame: FrameType | None) -> None:
        raise _Overrun()

    previous = signal.signal(signal.SIGALRM, overrun)
    old_timer = signal.setitimer(signal.ITIMER_REAL, deadline.seconds)
    try:
        yield deadline
    except _Overrun:
        raise deadline.error() from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_timer[0] > 0:  # someone else's timer: give back what is left of it
            elapsed = time.monotonic() - deadline.started
            signal.setitimer(signal.ITIMER_REAL, max(0.001, old_timer[0] - elapsed))
