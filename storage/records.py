"""Lifecycle enums and the immutable records the store returns.

Records are plain frozen dataclasses, detached from any database session, with JSON columns
decoded (``config``, ``versions``, ``arch``, ``metrics``) and datetimes timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

# Metrics that have their own indexed column in ``trials``; any other metric goes to JSON.
COLUMN_METRICS: tuple[str, ...] = (
    "accuracy",
    "loss",
    "latency_ms",
    "latency_p90_ms",
    "params",
    "macs",
)
INT_METRICS: frozenset[str] = frozenset({"params", "macs"})


class SearchStatus(StrEnum):
    """Where a search is in its life: created, then running (paused between invocations that
    stopped on a time limit or an interrupt), then completed or failed; or cancelled (through
    the HTTP service): its workers stop taking trials until it is resumed."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def is_finished(self) -> bool:
        return self in (SearchStatus.COMPLETED, SearchStatus.FAILED, SearchStatus.CANCELLED)


class TrialState(StrEnum):
    """A trial is running until it is finished as complete, failed or infeasible."""

    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    INFEASIBLE = "infeasible"  # rejected by a constraint before (or instead of) evaluation

    def is_finished(self) -> bool:
        return self is not TrialState.RUNNING


@dataclass(frozen=True)
class SearchRecord:
    search_id: int
    name: str
    status: SearchStatus
    config: dict[str, Any]
    config_hash: str
    space: str
    strategy: str
    budget_trials: int
    versions: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class TrialRecord:
    trial_id: int
    search_id: int
    number: int
    arch: dict[str, Any]
    arch_hash: str
    state: TrialState
    accuracy: float | None
    loss: float | None
    latency_ms: float | None
    latency_p90_ms: float | None
    params: int | None
    macs: int | None
    metrics: dict[str, Any]  # metrics without a column of their own
    error: str | None
    worker: str
    started_at: datetime
    heartbeat_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    latency_key: str | None = None  # the arch_hash of its latency measurements, per device
    attempts: int = 1  # 1 + how often it was reclaimed after its worker's lease expired
    lease_expires_at: datetime | None = None  # while running: when another worker may take it
    memo: dict[str, Any] | None = None  # what the strategy attached to its proposal

    def all_metrics(self) -> dict[str, Any]:
        """Column metrics that are set, merged with the extra metrics."""
        values = {name: getattr(self, name) for name in COLUMN_METRICS}
        merged = {name: value for name, value in values.items() if value is not None}
        merged.update(self.metrics)
        return merged


@dataclass(frozen=True)
class LockRecord:
    """A named lock of a search (``supernet``: one worker trains it, the others wait)."""

    lock_id: int
    search_id: int
    name: str
    holder: str
    expires_at: datetime


@dataclass(frozen=True)
class LatencyRecord:
    measurement_id: int
    device: str
    arch_hash: str
    batch_size: int
    input_shape: tuple[int, ...]
    threads: int
    median_ms: float
    p90_ms: float
    repeats: int
    created_at: datetime
    spread: float | None = None  # interquartile range / median (None before revision 0003)
    noisy: bool = False  # the median's confidence interval never got within the target
    # how the figure was taken against the device's reference network; None: an absolute
    # median (before revision 0007, or with latency.relative false)
    reference: Referenced | None = None


@dataclass(frozen=True)
class Referenced:
    """A figure taken against the device's reference network (revision 0007): its median is
    ``ratio`` times the device's anchor figure of that reference (:class:`AnchorRecord`)."""

    reference_key: str  # which reference network
    ratio: float  # median of the candidate / reference time ratios of paired bursts
    reference_ms: float  # the reference's own figure during this measurement
    drift: float  # the machine's speed against the anchor's: anchor_ms / reference_ms - 1
    drifted: bool = False  # |drift| was beyond the protocol's precision


@dataclass(frozen=True)
class AnchorRecord:
    """A device's figure of its reference network, taken when the device key was first
    measured and never replaced: the yardstick that turns ratios into milliseconds."""

    anchor_id: int
    device: str
    batch_size: int
    input_shape: tuple[int, ...]
    threads: int
    reference_key: str
    anchor_ms: float
    created_at: datetime


@dataclass(frozen=True)
class DeviceKey:
    """What a latency figure is a figure of, besides the architecture: the device's
    fingerprint, the batch size, the input shape (without the batch) and the threads."""

    device: str
    batch_size: int
    input_shape: tuple[int, ...]
    threads: int


@dataclass(frozen=True)
class CalibrationRecord:
    """A device's latency lookup table and predictor for one space (see nasprune.latency)."""

    calibration_id: int
    device: str
    space_key: str
    batch_size: int
    input_shape: tuple[int, ...]
    threads: int
    space: str
    content: dict[str, Any]  # decoded JSON: units, whole-network points, the fitted model
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CheckpointRecord:
    checkpoint_id: int
    key: str
    space: str
    path: str
    sha256: str
    created_at: datetime


@dataclass(frozen=True)
class EventRecord:
    event_id: int
    search_id: int
    kind: str
    message: str
    created_at: datetime


@dataclass(frozen=True)
class ArtifactRecord:
    artifact_id: int
    search_id: int
    kind: str
    content: Any  # decoded JSON
    created_at: datetime


@dataclass(frozen=True)
class FinetuneRecord:
    finetune_id: int
    trial_id: int
    key: str  # sha256 of the settings: the same settings reuse the same run
    settings: dict[str, Any]
    status: str  # "running" until the last step, then "complete"
    steps_done: int
    accuracy: float | None
    test_accuracy: float | None
    path: str | None  # the weights file (state dict) of the fine-tuned subnet
    sha256: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def complete(self) -> bool:
        return self.status == "complete"
