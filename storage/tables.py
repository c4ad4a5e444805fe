"""The schema as SQLAlchemy Core tables, and how a row of each becomes a record.

One table per entity, plural names, ``<entity>_id`` keys. This is the one definition of the
schema: the ORM models in :mod:`storage.models` map onto these tables, and the read-only
:class:`storage.reader.Reader` queries them without loading the ORM. Datetimes are stored
naive and always in UTC (the same on SQLite and PostgreSQL); the records in
:mod:`storage.records` give them back timezone-aware. Enum-valued columns hold the enum's
string value. ``migrations/versions`` must be kept in step with this file.

The ``*_record`` functions take a row of their table: a Core ``Row`` or an ORM model
instance, which have the same attributes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

from storage.records import (
    AnchorRecord,
    ArtifactRecord,
    CalibrationRecord,
    CheckpointRecord,
    EventRecord,
    FinetuneRecord,
    LatencyRecord,
    LockRecord,
    Referenced,
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
metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _id(name: str) -> Column[int]:
    return Column(name, Integer, primary_key=True)


def _search_id(index: bool = False) -> Column[int]:
    target = ForeignKey("searches.search_id", ondelete="CASCADE")
    return Column("search_id", Integer, target, nullable=False, index=index)


searches = Table(
    "searches",
    metadata,
    _id("search_id"),
    Column("name", String(255), nullable=False, unique=True, index=True),
    Column("status", String(16), nullable=False),
    Column("config_json", Text, nullable=False),
    Column("config_hash", String(128), nullable=False),
    Column("space", String(255), nullable=False),
    Column("strategy", String(255), nullable=False),
    Column("budget_trials", Integer, nullable=False),
    Column("versions_json", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=True),
)

trials = Table(
    "trials",
    metadata,
    _id("trial_id"),
    _search_id(),
    Column("number", Integer, nullable=False),
    Column("arch_json", Text, nullable=False),
    Column("arch_hash", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("accuracy", Float, nullable=True),
    Column("loss", Float, nullable=True),
    Column("latency_ms", Float, nullable=True),
    Column("latency_p90_ms", Float, nullable=True),
    Column("params", BigInteger, nullable=True),
    Column("macs", BigInteger, nullable=True),
    Column("metrics_json", Text, nullable=False, default="{}"),
    Column("error", Text, nullable=True),
    Column("worker", String(255), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("heartbeat_at", DateTime, nullable=True),
    Column("finished_at", DateTime, nullable=True),
    Column("duration_s", Float, nullable=True),
    # the arch_hash of its latency_measurements rows on every device (revision 0004)
    Column("latency_key", String(128), nullable=True),
    # worker leases (revision 0005): how often it was started, when its worker's lease ends,
    # and the JSON dict its strategy attached to the proposal
    Column("attempts", Integer, nullable=False, default=1, server_default=text("1")),
    Column("lease_expires_at", DateTime, nullable=True),
    Column("memo_json", Text, nullable=True),
    UniqueConstraint("search_id", "number"),
    Index(None, "search_id", "arch_hash"),
    Index(None, "search_id", "state"),
    Index(None, "search_id", "loss"),
    Index(None, "search_id", "latency_p90_ms"),
    Index(None, "search_id", "params"),
    Index(None, "search_id", "macs"),
    Index(None, "search_id", "latency_key"),
    Index(None, "search_id", "finished_at"),
)

# A lease on a named job of a search that one worker does for all (training the supernet):
# the holder renews it; once it expires, another worker may take it over (revision 0005).
search_locks = Table(
    "search_locks",
    metadata,
    _id("lock_id"),
    _search_id(),
    Column("name", String(255), nullable=False),
    Column("holder", String(255), nullable=False),
    Column("expires_at", DateTime, nullable=False),
    UniqueConstraint("search_id", "name"),
)
# Covering indexes for accuracy and latency (revision 0006, in place of one index on each): the
# best trial under a latency limit reads one of them and not the table (SQLite scans the
# latencies within the limit, PostgreSQL the accuracies down from the top); read backwards,
# the first is in the order of that query and of a Pareto front of accuracy and latency, the
# second in that of a front of latency and accuracy.
Index(
    "ix_trials_search_id_state_accuracy_latency_ms_number",
    trials.c.search_id,
    trials.c.state,
    trials.c.accuracy,
    trials.c.latency_ms.desc(),
    trials.c.number.desc(),
)
Index(
    "ix_trials_search_id_state_latency_ms_accuracy_number",
    trials.c.search_id,
    trials.c.state,
    trials.c.latency_ms,
    trials.c.accuracy.desc(),
    trials.c.number,
)

latency_measurements = Table(
    "latency_measurements",
    metadata,
    _id("measurement_id"),
    Column("device", String(255), nullable=False),
    Column("arch_hash", String(128), nullable=False),
    Column("batch_size", Integer, nullable=False),
    Column("input_shape", String(255), nullable=False),  # JSON list, e.g. "[1,3,224,224]"
    Column("threads", Integer, nullable=False),
    Column("median_ms", Float, nullable=False),
    Column("p90_ms", Float, nullable=False),
    Column("repeats", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("spread", Float, nullable=True),  # IQR / median
    Column("noisy", Boolean, nullable=False, default=False, server_default=false()),
    # Revision 0007: a figure taken against the device's reference network (None before, or
    # with latency.relative false): median_ms = ratio * the anchor of latency_anchors.
    Column("reference_key", String(128), nullable=True),
    Column("ratio", Float, nullable=True),  # median candidate / reference time ratio
    Column("reference_ms", Float, nullable=True),  # the reference's figure meanwhile
    Column("drift", Float, nullable=True),  # machine speed against the anchor's, -0.1: 10% slower
    Column("drifted", Boolean, nullable=False, default=False, server_default=false()),
    UniqueConstraint(
        "device",
        "arch_hash",
        "batch_size",
        "input_shape",
        "threads",
        name="uq_latency_measurements_key",
    ),
)

# A device's figure of its reference network, one per device key, taken when the key was first
# measured and never replaced (revision 0007).
latency_anchors = Table(
    "latency_anchors",
    metadata,
    _id("anchor_id"),
    Column("device", String(255), nullable=False),
    Column("batch_size", Integer, nullable=False),
    Column("input_shape", String(255), nullable=False),  # JSON list, as in measurements
    Column("threads", Integer, nullable=False),
    Column("reference_key", String(128), nullable=False),
    Column("anchor_ms", Float, nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint(
        "device",
        "batch_size",
        "input_shape",
        "threads",
        "reference_key",
        name="uq_latency_anchors_key",
    ),
)

# A device's lookup table and predictor for one space, batch size, input and threads.
latency_calibrations = Table(
    "latency_calibrations",
    metadata,
    _id("calibration_id"),
    Column("device", String(255), nullable=False),
    Column("space_key", String(128), nullable=False),  # the space's name and params, hashed
    Column("batch_size", Integer, nullable=False),
    Column("input_shape", String(255), nullable=False),  # JSON list, as in measurements
    Column("threads", Integer, nullable=False),
    Column("space", String(255), nullable=False),
    Column("content_json", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint(
        "device",
        "space_key",
        "batch_size",
        "input_shape",
        "threads",
        name="uq_latency_calibrations_key",
    ),
)

supernet_checkpoints = Table(
    "supernet_checkpoints",
    metadata,
    _id("checkpoint_id"),
    Column("key", String(255), nullable=False, unique=True),
    Column("space", String(255), nullable=False),
    Column("path", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

events = Table(
    "events",
    metadata,
    _id("event_id"),
    _search_id(index=True),
    Column("kind", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

# A JSON document that belongs to a search (channel importance, a plan), one per kind.
search_artifacts = Table(
    "search_artifacts",
    metadata,
    _id("artifact_id"),
    _search_id(),
    Column("kind", String(64), nullable=False),
    Column("content_json", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("search_id", "kind"),
)

# A fine-tuning run of one trial's subnet, keyed by its settings; resumable by step.
finetunes = Table(
    "finetunes",
    metadata,
    _id("finetune_id"),
    Column("trial_id", Integer, ForeignKey("trials.trial_id", ondelete="CASCADE"), nullable=False),
    Column("key", String(64), nullable=False),
    Column("settings_json", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("steps_done", Integer, nullable=False),
    Column("accuracy", Float, nullable=True),
    Column("test_accuracy", Float, nullable=True),
    Column("path", Text, nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("trial_id", "key"),
)


def utcnow() -> datetime:
    """Now, as the naive UTC datetime that every datetime column holds."""
    return datetime.now(UTC).replace(tzinfo=None)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def _aware_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value)


def _loads(text: str | None) -> dict[str, Any]:
    return dict(json.loads(text)) if text else {}


def _shape(text: str) -> tuple[int, ...]:
    return tuple(int(size) for size in json.loads(text))


def search_record(row: Any) -> SearchRecord:
    return SearchRecord(
        search_id=row.search_id,
        name=row.name,
        status=SearchStatus(row.status),
        config=_loads(row.config_json),
        config_hash=row.config_hash,
        space=row.space,
        strategy=row.strategy,
        budget_trials=row.budget_trials,
        versions=_loads(row.versions_json),
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
        finished_at=_aware_or_none(row.finished_at),
    )


def trial_record(row: Any) -> TrialRecord:
    return TrialRecord(
        trial_id=row.trial_id,
        search_id=row.search_id,
        number=row.number,
        arch=_loads(row.arch_json),
        arch_hash=row.arch_hash,
        state=TrialState(row.state),
        accuracy=row.accuracy,
        loss=row.loss,
        latency_ms=row.latency_ms,
        latency_p90_ms=row.latency_p90_ms,
        params=row.params,
        macs=row.macs,
        metrics=_loads(row.metrics_json),
        error=row.error,
        worker=row.worker,
        started_at=_aware(row.started_at),
        heartbeat_at=_aware_or_none(row.heartbeat_at),
        finished_at=_aware_or_none(row.finished_at),
        duration_s=row.duration_s,
        latency_key=row.latency_key,
        attempts=row.attempts,
        lease_expires_at=_aware_or_none(row.lease_expires_at),
        memo=None if row.memo_json is None else _loads(row.memo_json),
    )


def lock_record(row: Any) -> LockRecord:
    return LockRecord(
        lock_id=row.lock_id,
        search_id=row.search_id,
        name=row.name,
        holder=row.holder,
        expires_at=_aware(row.expires_at),
    )


def latency_record(row: Any) -> LatencyRecord:
    return LatencyRecord(
        measurement_id=row.measurement_id,
        device=row.device,
        arch_hash=row.arch_hash,
        batch_size=row.batch_size,
        input_shape=_shape(row.input_shape),
        threads=row.threads,
        median_ms=row.median_ms,
        p90_ms=row.p90_ms,
        repeats=row.repeats,
        created_at=_aware(row.created_at),
        spread=row.spread,
        noisy=bool(row.noisy),
        reference=_referenced(row),
    )


def _referenced(row: Any) -> Referenced | None:
    if row.reference_key is None or row.ratio is None or row.reference_ms is None:
        return None
    return Referenced(
        reference_key=row.reference_key,
        ratio=row.ratio,
        reference_ms=row.reference_ms,
        drift=0.0 if row.drift is None else row.drift,
        drifted=bool(row.drifted),
    )


def anchor_record(row: Any) -> AnchorRecord:
    return AnchorRecord(
        anchor_id=row.anchor_id,
        device=row.device,
        batch_size=row.batch_size,
        input_shape=_shape(row.input_shape),
        threads=row.threads,
        reference_key=row.reference_key,
        anchor_ms=row.anchor_ms,
        created_at=_aware(row.created_at),
    )


def calibration_record(row: Any) -> CalibrationRecord:
    return CalibrationRecord(
        calibration_id=row.calibration_id,
        device=row.device,
        space_key=row.space_key,
        batch_size=row.batch_size,
        input_shape=_shape(row.input_shape),
        threads=row.threads,
        space=row.space,
        content=json.loads(row.content_json),
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
    )


def checkpoint_record(row: Any) -> CheckpointRecord:
    return CheckpointRecord(
        checkpoint_id=row.checkpoint_id,
        key=row.key,
        space=row.space,
        path=row.path,
        sha256=row.sha256,
        created_at=_aware(row.created_at),
    )


def event_record(row: Any) -> EventRecord:
    return EventRecord(
        event_id=row.event_id,
        search_id=row.search_id,
        kind=row.kind,
        message=row.message,
        created_at=_aware(row.created_at),
    )


def artifact_record(row: Any) -> ArtifactRecord:
    return ArtifactRecord(
        artifact_id=row.artifact_id,
        search_id=row.search_id,
        kind=row.kind,
        content=json.loads(row.content_json),
        created_at=_aware(row.created_at),
    )


def finetune_record(row: Any) -> FinetuneRecord:
    return FinetuneRecord(
        finetune_id=row.finetune_id,
        trial_id=row.trial_id,
        key=row.key,
        settings=_loads(row.settings_json),
        status=row.status,
        steps_done=row.steps_done,
        accuracy=row.accuracy,
        test_accuracy=row.test_accuracy,
        path=row.path,
        sha256=row.sha256,
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
    )
