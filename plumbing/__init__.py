"""The few helpers every room of nasprune shares, in one place: a registry of named entries,
an import with an install hint, an error's first line, a canonical JSON hash.

It imports nothing of nasprune, ``search_spaces``, ``strategies`` or ``storage`` (an
import-linter contract checks it), and nothing heavy: ``search_spaces``, ``storage`` and the
service's light paths import it. :mod:`plumbing.modules` (torch) is imported where used.
"""

from plumbing.hashing import canonical_json, json_hash
from plumbing.imports import require
from plumbing.registry import Registry
from plumbing.text import first_line

__all__ = ["Registry", "canonical_json", "first_line", "json_hash", "require"]
