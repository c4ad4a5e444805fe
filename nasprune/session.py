"""What one worker of a search holds while it runs, and what it reports to a display."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

from nasprune.config import SearchConfig
from nasprune.data import Loaders
from nasprune.latency import LatencyBackend
from nasprune.latency.predictor import Predictor
from search_spaces import SearchSpace
from storage import DeviceKey, SearchRecord, Store, TrialRecord


class Observer(Protocol):
    """What the loop reports to a progress display (the CLI's rich bar, or nothing)."""

    def supernet_epoch(self, epoch: int, epochs: int, loss: float) -> None: ...
    def trial_done(
        self, trial: TrialRecord, completed: int, budget: int, best: float | None
    ) -> None: ...


class Silent:
    """An observer that shows nothing."""

    def supernet_epoch(self, epoch: int, epochs: int, loss: float) -> None:
        pass

    def trial_done(
        self, trial: TrialRecord, completed: int, budget: int, best: float | None
    ) -> None:
        pass


def worker_name() -> str:
    """``host:pid``: who holds a trial's lease (a dead pid on this host frees it at once)."""
    return f"{socket.gethostname()}:{os.getpid()}"


Parts = tuple[SearchSpace, LatencyBackend, Loaders]  # what prepare() resolves from a config


@dataclass
class Session:
    """Everything one worker needs, built before its loop starts."""

    config: SearchConfig
    store: Store
    search: SearchRecord
    space: SearchSpace
    backend: LatencyBackend
    loaders: Loaders
    calibration: list[torch.Tensor]
    mode: str = "elastic"  # elastic | prune, the config's evaluation.mode
    remeasure: bool = False  # measure latency again even where a stored figure exists
    on: DeviceKey = DeviceKey("", 0, (), 0)  # what the backend measures: set from it
    predictor: Predictor | None = None  # screens by predicted latency, when calibrated
    supernet: nn.Module = field(default_factory=nn.Module)  # set once loaded or trained
    worker: str = field(default_factory=worker_name)
