"""SQLAlchemy models: one table per entity, plural names, ``<entity>_id`` keys.

Datetimes are stored naive and always in UTC (the same on SQLite and PostgreSQL); the
records in :mod:`storage.records` give them back timezone-aware. Enum-valued columns hold
the enum's string value. ``migrations/versions`` must be kept in step with this file.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.records import (
    ArtifactRecord,
    CalibrationRecord,
    CheckpointRecord,
    EventRecord,
    FinetuneRecord,
    LatencyRecord,
    SearchRecord,
    SearchStatus,
    TrialRecord,
    TrialState,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, as the naive UTC datetime that every datetime column holds."""
    return datetime.now(UTC).replace(tzinfo=None)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def _aware_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value)


def _loads(text: str | None) -> dict[str, Any]:
    return dict(json.loads(text)) if text else {}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SearchModel(Base):
    __tablename__ = "searches"

    search_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    status: Mapped[str] = mapped_column(String(16))
    config_json: Mapped[str] = mapped_column(Text)
    config_hash: Mapped[str] = mapped_column(String(128))
    space: Mapped[str] = mapped_column(String(255))
    strategy: Mapped[str] = mapped_column(String(255))
    budget_trials: Mapped[int] = mapped_column(Integer)
    versions_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    def to_record(self) -> SearchRecord:
        return SearchRecord(
            search_id=self.search_id,
            name=self.name,
            status=SearchStatus(self.status),
            config=_loads(self.config_json),
            config_hash=self.config_hash,
            space=self.space,
            strategy=self.strategy,
            budget_trials=self.budget_trials,
            versions=_loads(self.versions_json),
            created_at=_aware(self.created_at),
            updated_at=_aware(self.updated_at),
            finished_at=_aware_or_none(self.finished_at),
        )


class TrialModel(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("search_id", "number"),
        Index(None, "search_id", "arch_hash"),
        Index(None, "search_id", "state"),
        Index(None, "search_id", "accuracy"),
        Index(None, "search_id", "loss"),
        Index(None, "search_id", "latency_ms"),
        Index(None, "search_id", "latency_p90_ms"),
        Index(None, "search_id", "params"),
        Index(None, "search_id", "macs"),
        Index(None, "search_id", "latency_key"),
    )

    trial_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.search_id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    arch_json: Mapped[str] = mapped_column(Text)
    arch_hash: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_p90_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    params: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    macs: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    metrics_json: Mapped[str] = mapped_column(Text, default="{}")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # the arch_hash of its latency_measurements rows on every device (revision 0004)
    latency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)

    def to_record(self) -> TrialRecord:
        return TrialRecord(
            trial_id=self.trial_id,
            search_id=self.search_id,
            number=self.number,
            arch=_loads(self.arch_json),
            arch_hash=self.arch_hash,
            state=TrialState(self.state),
            accuracy=self.accuracy,
            loss=self.loss,
            latency_ms=self.latency_ms,
            latency_p90_ms=self.latency_p90_ms,
            params=self.params,
            macs=self.macs,
            metrics=_loads(self.metrics_json),
            error=self.error,
            worker=self.worker,
            started_at=_aware(self.started_at),
            heartbeat_at=_aware_or_none(self.heartbeat_at),
            finished_at=_aware_or_none(self.finished_at),
            duration_s=self.duration_s,
            latency_key=self.latency_key,
        )


class LatencyMeasurementModel(Base):
    __tablename__ = "latency_measurements"
    __table_args__ = (
        UniqueConstraint(
            "device",
            "arch_hash",
            "batch_size",
            "input_shape",
            "threads",
            name="uq_latency_measurements_key",
        ),
    )

    measurement_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device: Mapped[str] = mapped_column(String(255))
    arch_hash: Mapped[str] = mapped_column(String(128))
    batch_size: Mapped[int] = mapped_column(Integer)
    input_shape: Mapped[str] = mapped_column(String(255))  # JSON list, e.g. "[1,3,224,224]"
    threads: Mapped[int] = mapped_column(Integer)
    median_ms: Mapped[float] = mapped_column(Float)
    p90_ms: Mapped[float] = mapped_column(Float)
    repeats: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    spread: Mapped[float | None] = mapped_column(Float, nullable=True)  # IQR / median
    noisy: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    def to_record(self) -> LatencyRecord:
        return LatencyRecord(
            measurement_id=self.measurement_id,
            device=self.device,
            arch_hash=self.arch_hash,
            batch_size=self.batch_size,
            input_shape=tuple(int(size) for size in json.loads(self.input_shape)),
            threads=self.threads,
            median_ms=self.median_ms,
            p90_ms=self.p90_ms,
            repeats=self.repeats,
            created_at=_aware(self.created_at),
            spread=self.spread,
            noisy=bool(self.noisy),
        )


class LatencyCalibrationModel(Base):
    """A device's lookup table and predictor for one space, batch size, input and threads."""

    __tablename__ = "latency_calibrations"
    __table_args__ = (
        UniqueConstraint(
            "device",
            "space_key",
            "batch_size",
            "input_shape",
            "threads",
            name="uq_latency_calibrations_key",
        ),
    )

    calibration_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device: Mapped[str] = mapped_column(String(255))
    space_key: Mapped[str] = mapped_column(String(128))  # the space's name and params, hashed
    batch_size: Mapped[int] = mapped_column(Integer)
    input_shape: Mapped[str] = mapped_column(String(255))  # JSON list, as in measurements
    threads: Mapped[int] = mapped_column(Integer)
    space: Mapped[str] = mapped_column(String(255))
    content_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)

    def to_record(self) -> CalibrationRecord:
        return CalibrationRecord(
            calibration_id=self.calibration_id,
            device=self.device,
            space_key=self.space_key,
            batch_size=self.batch_size,
            input_shape=tuple(int(size) for size in json.loads(self.input_shape)),
            threads=self.threads,
            space=self.space,
            content=json.loads(self.content_json),
            created_at=_aware(self.created_at),
            updated_at=_aware(self.updated_at),
        )


class SupernetCheckpointModel(Base):
    __tablename__ = "supernet_checkpoints"

    checkpoint_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    space: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)

    def to_record(self) -> CheckpointRecord:
        return CheckpointRecord(
            checkpoint_id=self.checkpoint_id,
            key=self.key,
            space=self.space,
            path=self.path,
            sha256=self.sha256,
            created_at=_aware(self.created_at),
        )


class EventModel(Base):
    __tablename__ = "events"

    event_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(
        ForeignKey("searches.search_id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    def to_record(self) -> EventRecord:
        return EventRecord(
            event_id=self.event_id,
            search_id=self.search_id,
            kind=self.kind,
            message=self.message,
            created_at=_aware(self.created_at),
        )


class SearchArtifactModel(Base):
    """A JSON document that belongs to a search (channel importance, a plan), one per kind."""

    __tablename__ = "search_artifacts"
    __table_args__ = (UniqueConstraint("search_id", "kind"),)

    artifact_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.search_id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    content_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    def to_record(self) -> ArtifactRecord:
        return ArtifactRecord(
            artifact_id=self.artifact_id,
            search_id=self.search_id,
            kind=self.kind,
            content=json.loads(self.content_json),
            created_at=_aware(self.created_at),
        )


class FinetuneModel(Base):
    """A fine-tuning run of one trial's subnet, keyed by its settings; resumable by step."""

    __tablename__ = "finetunes"
    __table_args__ = (UniqueConstraint("trial_id", "key"),)

    finetune_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.trial_id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    settings_json: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    steps_done: Mapped[int] = mapped_column(Integer)
    accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    test_accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)

    def to_record(self) -> FinetuneRecord:
        return FinetuneRecord(
            finetune_id=self.finetune_id,
            trial_id=self.trial_id,
            key=self.key,
            settings=_loads(self.settings_json),
            status=self.status,
            steps_done=self.steps_done,
            accuracy=self.accuracy,
            test_accuracy=self.test_accuracy,
            path=self.path,
            sha256=self.sha256,
            created_at=_aware(self.created_at),
            updated_at=_aware(self.updated_at),
        )
