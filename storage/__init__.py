"""Where everything in nasprune lasts: the schema, the Store API and migrations.

This package imports nothing from ``nasprune``, ``search_spaces`` or ``strategies``. Importing
it loads SQLAlchemy Core but not the ORM: :class:`Store` (and :func:`get_store`) load it when
first used, so a read-only :class:`Reader` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from storage.engine import SCHEMA_VERSION
from storage.errors import (
    ArchTakenError,
    ConnectionLostError,
    DuplicateSearchError,
    LostLeaseError,
    SearchNotFoundError,
    StoreError,
)
from storage.reader import BestQuestion, Reader, Tally, get_reader
from storage.records import (
    COLUMN_METRICS,
    AnchorRecord,
    ArtifactRecord,
    CalibrationRecord,
    CheckpointRecord,
    DeviceKey,
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

if TYPE_CHECKING:
    from storage.store import Store, get_store

__all__ = [
    "BestQuestion",
    "COLUMN_METRICS",
    "SCHEMA_VERSION",
    "AnchorRecord",
    "ArtifactRecord",
    "CalibrationRecord",
    "CheckpointRecord",
    "ConnectionLostError",
    "DeviceKey",
    "DuplicateSearchError",
    "EventRecord",
    "FinetuneRecord",
    "LatencyRecord",
    "LockRecord",
    "ArchTakenError",
    "LostLeaseError",
    "Reader",
    "Referenced",
    "SearchNotFoundError",
    "SearchRecord",
    "SearchStatus",
    "Store",
    "Tally",
    "StoreError",
    "TrialRecord",
    "TrialState",
    "get_reader",
    "get_store",
]


def __getattr__(name: str) -> Any:
    if name in ("Store", "get_store"):
        from storage import store

        return getattr(store, name)
    raise AttributeError(f"module 'storage' has no attribute {name!r}")
