"""SQLAlchemy ORM models for the store's writes, mapped onto the Core tables of
:mod:`storage.tables` (the one definition of the schema); the annotations type the attributes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import DeclarativeBase, Mapped

from storage import tables
from storage.records import (
    AnchorRecord,
    ArtifactRecord,
    CalibrationRecord,
    CheckpointRecord,
    EventRecord,
    FinetuneRecord,
    LatencyRecord,
    LockRecord,
    SearchRecord,
    TrialRecord,
)


class Base(DeclarativeBase):
    metadata = tables.metadata


class SearchModel(Base):
    __table__ = tables.searches

    search_id: Mapped[int]
    name: Mapped[str]
    status: Mapped[str]
    config_json: Mapped[str]
    config_hash: Mapped[str]
    space: Mapped[str]
    strategy: Mapped[str]
    budget_trials: Mapped[int]
    versions_json: Mapped[str]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]

    def to_record(self) -> SearchRecord:
        return tables.search_record(self)


class TrialModel(Base):
    __table__ = tables.trials

    trial_id: Mapped[int]
    search_id: Mapped[int]
    number: Mapped[int]
    arch_json: Mapped[str]
    arch_hash: Mapped[str]
    state: Mapped[str]
    accuracy: Mapped[float | None]
    loss: Mapped[float | None]
    latency_ms: Mapped[float | None]
    latency_p90_ms: Mapped[float | None]
    params: Mapped[int | None]
    macs: Mapped[int | None]
    metrics_json: Mapped[str]
    error: Mapped[str | None]
    worker: Mapped[str]
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    duration_s: Mapped[float | None]
    latency_key: Mapped[str | None]
    attempts: Mapped[int]
    lease_expires_at: Mapped[datetime | None]
    memo_json: Mapped[str | None]

    def to_record(self) -> TrialRecord:
        return tables.trial_record(self)


class SearchLockModel(Base):
    __table__ = tables.search_locks

    lock_id: Mapped[int]
    search_id: Mapped[int]
    name: Mapped[str]
    holder: Mapped[str]
    expires_at: Mapped[datetime]

    def to_record(self) -> LockRecord:
        return tables.lock_record(self)


class LatencyMeasurementModel(Base):
    __table__ = tables.latency_measurements

    measurement_id: Mapped[int]
    device: Mapped[str]
    arch_hash: Mapped[str]
    batch_size: Mapped[int]
    input_shape: Mapped[str]
    threads: Mapped[int]
    median_ms: Mapped[float]
    p90_ms: Mapped[float]
    repeats: Mapped[int]
    created_at: Mapped[datetime]
    spread: Mapped[float | None]
    noisy: Mapped[bool]
    reference_key: Mapped[str | None]
    ratio: Mapped[float | None]
    reference_ms: Mapped[float | None]
    drift: Mapped[float | None]
    drifted: Mapped[bool]

    def to_record(self) -> LatencyRecord:
        return tables.latency_record(self)


class LatencyAnchorModel(Base):
    __table__ = tables.latency_anchors

    anchor_id: Mapped[int]
    device: Mapped[str]
    batch_size: Mapped[int]
    input_shape: Mapped[str]
    threads: Mapped[int]
    reference_key: Mapped[str]
    anchor_ms: Mapped[float]
    created_at: Mapped[datetime]

    def to_record(self) -> AnchorRecord:
        return tables.anchor_record(self)


class LatencyCalibrationModel(Base):
    __table__ = tables.latency_calibrations

    calibration_id: Mapped[int]
    device: Mapped[str]
    space_key: Mapped[str]
    batch_size: Mapped[int]
    input_shape: Mapped[str]
    threads: Mapped[int]
    space: Mapped[str]
    content_json: Mapped[str]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    def to_record(self) -> CalibrationRecord:
        return tables.calibration_record(self)


class SupernetCheckpointModel(Base):
    __table__ = tables.supernet_checkpoints

    checkpoint_id: Mapped[int]
    key: Mapped[str]
    space: Mapped[str]
    path: Mapped[str]
    sha256: Mapped[str]
    created_at: Mapped[datetime]

    def to_record(self) -> CheckpointRecord:
        return tables.checkpoint_record(self)


class EventModel(Base):
    __table__ = tables.events

    event_id: Mapped[int]
    search_id: Mapped[int]
    kind: Mapped[str]
    message: Mapped[str]
    created_at: Mapped[datetime]

    def to_record(self) -> EventRecord:
        return tables.event_record(self)


class SearchArtifactModel(Base):
    __table__ = tables.search_artifacts

    artifact_id: Mapped[int]
    search_id: Mapped[int]
    kind: Mapped[str]
    content_json: Mapped[str]
    created_at: Mapped[datetime]

    def to_record(self) -> ArtifactRecord:
        return tables.artifact_record(self)


class FinetuneModel(Base):
    __table__ = tables.finetunes

    finetune_id: Mapped[int]
    trial_id: Mapped[int]
    key: Mapped[str]
    settings_json: Mapped[str]
    status: Mapped[str]
    steps_done: Mapped[int]
    accuracy: Mapped[float | None]
    test_accuracy: Mapped[float | None]
    path: Mapped[str | None]
    sha256: Mapped[str | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    def to_record(self) -> FinetuneRecord:
        return tables.finetune_record(self)
