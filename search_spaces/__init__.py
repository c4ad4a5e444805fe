"""What can be pruned: dimension types, elastic modules, built-in supernets.

Importing this package registers the built-in spaces (``builtin.mlp``, ``builtin.cnn``) and
``derived`` (a space derived from the user's own model; torch-pruning loads on first use).
"""

from search_spaces.base import SearchSpace
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
from search_spaces.registry import create_space, list_spaces, register_space

# Imported for their @register_space side effect.
from search_spaces import cnn as _cnn  # noqa: E402, F401  isort: skip
from search_spaces import mlp as _mlp  # noqa: E402, F401  isort: skip
from search_spaces.derived import space as _derived  # noqa: E402, F401  isort: skip

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
