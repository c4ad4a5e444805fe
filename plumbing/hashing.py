"""One canonical JSON text, and its SHA-256: what configs, space states, fine-tuning settings,
supernet recipes, latency units and calibrations are keyed by in the store.

The text is ``json.dumps(value, sort_keys=True)`` (default separators), as every key stored
so far was made, so that stores written by earlier versions keep their keys. An
architecture's own hash (:func:`search_spaces.arch_hash`) keeps its compact form for the same
reason: every stored trial is keyed by it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """``value`` as JSON with sorted keys: equal values give equal text."""
    return json.dumps(value, sort_keys=True, default=str)


def json_hash(value: Any, length: int = 64) -> str:
    """The hex SHA-256 of :func:`canonical_json`, its first ``length`` digits."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]
