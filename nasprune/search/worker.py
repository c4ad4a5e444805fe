"""What one worker of a search holds while it runs, and what it reports to a display."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Protocol

from nasprune.evaluation.data import Loaders
from nasprune.evaluation.stored import StoredSearch
from nasprune.evaluation.supernet import Progress
from nasprune.latency import LatencyBackend
from nasprune.latency.predictor import Predictor
from nasprune.latency.reference import ReferenceNetwork, largest_subnet_reference
from nasprune.search.leases import worker_name
from search_spaces import SearchSpace
from storage import DeviceKey, TrialRecord


class Observer(Protocol):
    """What the loop reports to a progress display (the CLI's rich bar, or nothing)."""

    def supernet_progress(self, progress: Progress) -> None: ...
    def trial_done(
        self, trial: TrialRecord, completed: int, budget: int, best: float | None
    ) -> None: ...


class Silent:
    """An observer that shows nothing."""

    def supernet_progress(self, progress: Progress) -> None:
        pass

    def trial_done(
        self, trial: TrialRecord, completed: int, budget: int, best: float | None
    ) -> None:
        pass


Parts = tuple[SearchSpace, LatencyBackend, Loaders]  # what prepare() resolves from a config


@dataclass
class Worker:
    """One worker on a search: the stored search made ready to evaluate, the backend that
    times its candidates on this device, and the name its leases are held under."""

    search: StoredSearch
    backend: LatencyBackend
    on: DeviceKey  # what the backend measures
    remeasure: bool = False  # measure latency again even where a stored figure exists
    predictor: Predictor | None = None  # screens by predicted latency, when calibrated
    name: str = field(default_factory=worker_name)

    @functools.cached_property
    def reference(self) -> ReferenceNetwork:
        """What the candidates' latency is timed against: the space's largest subnet."""
        return largest_subnet_reference(self.search.space)
