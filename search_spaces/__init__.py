"""What can be pruned: dimension types, elastic modules, built-in supernets.

The dimension types load with the package (strategies, and a service that only validates a
config, need them without torch); the search space base, the registry and the spaces load on
first use of ``SearchSpace``, ``create_space``, ``list_spaces`` or ``register_space``. The
registry registers the built-in spaces (``builtin.mlp``, ``builtin.cnn``, ``builtin.cnn1d``)
and ``derived`` (a space derived from the user's own model; torch-pruning loads on first use)
before it answers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from search_spaces.dimensions import (
    Architecture,
    Choice,
    Dimension,
    DimensionKind,
    SpaceError,
    arch_hash,
    canonical_json,
    validate_arch,
)

if TYPE_CHECKING:
    from search_spaces.base import SearchSpace
    from search_spaces.registry import create_space, list_spaces, register_space

_LAZY = {
    "SearchSpace": "search_spaces.base",
    "create_space": "search_spaces.registry",
    "list_spaces": "search_spaces.registry",
    "register_space": "search_spaces.registry",
}


def __getattr__(name: str) -> Any:
    """The names that need torch, imported on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'search_spaces' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "Architecture",
    "Choice",
    "Dimension",
    "DimensionKind",
    "SearchSpace",
    "SpaceError",
    "arch_hash",
    "canonical_json",
    "create_space",
    "list_spaces",
    "register_space",
    "validate_arch",
]
