"""Where everything in nasprune lasts: SQLAlchemy models, the Store API and migrations.

This package imports nothing from ``nasprune``, ``search_spaces`` or ``strategies``.
"""

from __future__ import annotations

from storage.engine import SCHEMA_VERSION
from storage.errors import DuplicateSearchError, SearchNotFoundError, StoreError
from storage.records import (
    COLUMN_METRICS,
    ArtifactRecord,
    CalibrationRecord,
    CheckpointRecord,
    DeviceKey,
    EventRecord,
    FinetuneRecord,
    LatencyRecord,
    SearchRecord,
    SearchStatus,
    TrialRecord,
    TrialState,
)
from storage.store import Store, get_store

__all__ = [
    "COLUMN_METRICS",
    "SCHEMA_VERSION",
    "ArtifactRecord",
    "CalibrationRecord",
    "CheckpointRecord",
    "DeviceKey",
    "DuplicateSearchError",
    "EventRecord",
    "FinetuneRecord",
    "LatencyRecord",
    "SearchNotFoundError",
    "SearchRecord",
    "SearchStatus",
    "Store",
    "StoreError",
    "TrialRecord",
    "TrialState",
    "get_store",
]
