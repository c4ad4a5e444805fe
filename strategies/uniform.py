"""The width multiplier baseline (MobileNet's alpha): one keep ratio for every width."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from fractions import Fraction
from typing import Any, ClassVar

from search_spaces.dimensions import Architecture, Dimension, DimensionKind

from .base import Result, Strategy


class UniformWidth(Strategy):
    """Every width dimension takes the choice at one relative position ``r`` of its choices
    (index ``round(r * (len(choices) - 1))``, halves up; choices run small to large); every
    other dimension (depth, kernel, expansion, bits, sparsity) stays at its largest.

    The positions are all the distinct ``i / (n - 1)`` of the width dimensions, asked
    coarse to fine: 1 (the largest network), 0 (the thinnest), then each time the position
    farthest from those asked (the larger on a tie): 1/2, then 3/4 and 1/4 ... So a small
    budget still spans the range. The order depends on the dimensions only, not on the seed
    or the values. Once every ratio is in the history, an ask answers a uniformly random
    architecture drawn from the ask's seed, as grid search does.

    >>> s = UniformWidth(dims, ["maximize"], seed=0)
    >>> s.ask(seed=0)  # every dimension at its largest
    """

    name = "uniform"
    param_types: ClassVar[dict[str, Any] | None] = {}

    def __init__(
        self, dimensions: Sequence[Dimension], directions: Sequence[str], seed: int, **params: Any
    ) -> None:
        super().__init__(dimensions, directions, seed)
        self.resolve_params(params, {})
        self.sweep: list[Architecture] = []  # one per ratio, coarse to fine, without repeats
        for ratio in _coarse_to_fine(_positions(self.dimensions)):
            arch = self.at_ratio(ratio)
            if arch not in self.sweep:
                self.sweep.append(arch)
        self._seen: set[tuple[Any, ...]] = set()

    def add(self, results: Sequence[Result]) -> None:
        super().add(results)
        self._seen.update(self._key(r.arch) for r in results)

    def ask(self, seed: int) -> Architecture:
        for arch in self.sweep:
            if self._key(self.canonical(arch)) not in self._seen:
                return dict(arch)
        rng = random.Random(seed)
        return {d.name: rng.choice(d.choices) for d in self.dimensions}

    def at_ratio(self, ratio: Fraction) -> Architecture:
        """The architecture whose widths all sit at relative position ``ratio``."""
        arch: Architecture = {}
        for d in self.dimensions:
            last = len(d.choices) - 1
            index = math.floor(ratio * last + Fraction(1, 2)) if _is_width(d) else last
            arch[d.name] = d.choices[index]
        return arch

    def _key(self, arch: Architecture) -> tuple[Any, ...]:
        return tuple(arch[d.name] for d in self.dimensions)


def _is_width(dim: Dimension) -> bool:
    return dim.kind == DimensionKind.WIDTH


def _positions(dimensions: Sequence[Dimension]) -> set[Fraction]:
    """Every relative position ``i / (n - 1)`` of a width dimension's choices (1: the largest)."""
    found = {Fraction(1)}
    for d in filter(_is_width, dimensions):
        last = len(d.choices) - 1
        found.update(Fraction(i, last) for i in range(last))
    return found


def _coarse_to_fine(positions: set[Fraction]) -> list[Fraction]:
    """``positions`` from 1 down: next, always the one farthest from those taken (the larger
    one on a tie)."""
    left, taken = set(positions), [Fraction(1)]
    left.discard(Fraction(1))
    while left:
        best = max(left, key=lambda p: (min(abs(p - t) for t in taken), p))
        taken.append(best)
        left.remove(best)
    return taken
