"""Dimension types and architectures: the data that every room shares.

An architecture is a plain ``dict[str, int | float]`` mapping each dimension name to one of its
choices. It is JSON, never a module, and :func:`arch_hash` gives it a stable identity.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

Choice = int | float
Architecture = dict[str, Choice]


class SpaceError(ValueError):
    """An architecture or a space definition is invalid (unknown dimension, bad choice ...)."""


class DimensionKind(StrEnum):
    """What a dimension prunes; strategies may treat every kind alike."""

    WIDTH = "width"  # channels or neurons, as a count
    DEPTH = "depth"  # layers or blocks in a stage
    KERNEL = "kernel"  # convolution kernel size
    EXPAND = "expand"  # expansion ratio
    BITS = "bits"  # quantisation bit-width
    SPARSITY = "sparsity"  # share of weights set to zero (unstructured)


@dataclass(frozen=True)
class Dimension:
    """One prunable dimension: a name and a finite, ordered tuple of choices (small to large)."""

    name: str
    kind: DimensionKind
    choices: tuple[Choice, ...]

    def __post_init__(self) -> None:
        if not self.choices:
            raise SpaceError(f"dimension {self.name!r} has no choices")
        if len(set(self.choices)) != len(self.choices):
            raise SpaceError(f"dimension {self.name!r} has repeated choices: {self.choices}")

    def index(self, value: Choice) -> int:
        """Position of ``value`` among the choices; raises :class:`SpaceError` if absent."""
        try:
            return self.choices.index(value)
        except ValueError:
            raise SpaceError(
                f"{value!r} is not a choice of dimension {self.name!r}; "
                f"choices: {list(self.choices)}"
            ) from None

    @property
    def largest(self) -> Choice:
        return self.choices[-1]

    @property
    def smallest(self) -> Choice:
        return self.choices[0]


def canonical_json(arch: Mapping[str, Choice]) -> str:
    """The one JSON text of an architecture: sorted keys, no spaces, ints kept as ints."""
    return json.dumps(dict(arch), sort_keys=True, separators=(",", ":"))


def arch_hash(arch: Mapping[str, Choice]) -> str:
    """Stable identity of an architecture: sha256 of its canonical JSON (first 16 hex digits).

    The same architecture gives the same hash in every process and version, because it depends
    only on the canonical JSON text, never on Python's randomised ``hash()``.
    """
    return hashlib.sha256(canonical_json(arch).encode()).hexdigest()[:16]


def validate_arch(dimensions: Sequence[Dimension], arch: Mapping[str, object]) -> Architecture:
    """Check ``arch`` against ``dimensions`` and return a clean copy (ints as ints)."""
    names = {d.name for d in dimensions}
    unknown = sorted(set(arch) - names)
    if unknown:
        raise SpaceError(f"unknown dimension(s) {unknown}; known: {sorted(names)}")
    missing = sorted(names - set(arch))
    if missing:
        raise SpaceError(f"architecture lacks dimension(s) {missing}")
    clean: Architecture = {}
    for dim in dimensions:
        value = arch[dim.name]
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise SpaceError(f"dimension {dim.name!r} needs a number, got {value!r}")
        clean[dim.name] = dim.choices[dim.index(value)]
    return clean
