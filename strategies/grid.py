"""Grid search: every architecture once, in a fixed order."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from search_spaces.dimensions import Architecture, Choice, Dimension

from .base import Result, Strategy


class GridSearch(Strategy):
    """Proposes the first architecture of ``itertools.product`` order (the last dimension
    varying fastest) that is not in the history yet.

    The order does not depend on the seed or on values. The grid is walked lazily: a cursor
    moves past the architectures already added, so an ask costs O(1) amortised and the grid
    is never materialised. Once every architecture is in the history, an ask answers a
    uniformly random one (from the ask's seed); the search loop then knows the space is spent.

    >>> s = GridSearch(dims, ["maximize"], seed=0)
    >>> s.ask(seed=0)  # the smallest choice of every dimension first
    """

    name = "grid"
    param_types: ClassVar[dict[str, Any] | None] = {}

    def __init__(
        self, dimensions: Sequence[Dimension], directions: Sequence[str], seed: int, **params: Any
    ) -> None:
        super().__init__(dimensions, directions, seed)
        self.resolve_params(params, {})
        self._seen: set[tuple[Choice, ...]] = set()
        self._order: Iterator[tuple[Choice, ...]] = itertools.product(
            *(d.choices for d in self.dimensions)
        )
        self._next: tuple[Choice, ...] | None = next(self._order)

    def add(self, results: Sequence[Result]) -> None:
        super().add(results)
        self._seen.update(tuple(r.arch[d.name] for d in self.dimensions) for r in results)

    def ask(self, seed: int) -> Architecture:
        while self._next is not None and self._next in self._seen:
            self._next = next(self._order, None)
        if self._next is None:
            rng = random.Random(seed)
            return {d.name: rng.choice(d.choices) for d in self.dimensions}
        return {d.name: value for d, value in zip(self.dimensions, self._next, strict=True)}
