"""What can be pruned: dimension types, elastic modules, built-in supernets."""

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

__all__ = [
    "Architecture",
    "Choice",
    "Dimension",
    "DimensionKind",
    "SpaceError",
    "arch_hash",
    "canonical_json",
    "validate_arch",
]
