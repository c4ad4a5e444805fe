"""Grid search: every architecture once, in a fixed order."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from search_spaces.dimensions import Architecture, Choice, Dimension

from .base import Strategy


class GridSearch(Strategy):
    """Enumerates ``itertools.product`` of the choices, the last dimension varying fastest.

    The order does not depend on the seed or on told values. Once every architecture has been
    asked, the search does not stop (the loop owns the budget): it walks the whole grid again in
    a fresh shuffled order, shuffled by ``random.Random(seed)``, pass after pass. The grid is only
    materialised at that point, when it has proved small enough to enumerate.

    >>> s = GridSearch(dims, ["maximize"], seed=0)
    >>> s.ask()  # the smallest choice of every dimension first
    """

    name = "grid"
    param_types: ClassVar[dict[str, Any] | None] = {}

    def __init__(
        self, dimensions: Sequence[Dimension], directions: Sequence[str], seed: int, **params: Any
    ) -> None:
        super().__init__(dimensions, directions, seed)
        self.resolve_params(params, {})
        self._rng = random.Random(seed)
        self._order: Iterator[tuple[Choice, ...]] = self._product()
        self._pending: Architecture | None = None

    def _product(self) -> Iterator[tuple[Choice, ...]]:
        return itertools.product(*(d.choices for d in self.dimensions))

    def _next(self) -> tuple[Choice, ...]:
        row = next(self._order, None)
        if row is None:
            grid = list(self._product())
            self._rng.shuffle(grid)
            self._order = iter(grid)
            row = next(self._order)
        return row

    def ask(self) -> Architecture:
        row = self._next()
        self._pending = {d.name: value for d, value in zip(self.dimensions, row, strict=True)}
        return dict(self._pending)

    def tell(self, arch: Architecture, values: Sequence[float] | None) -> None:
        self.check_told(arch, self._pending)
        self.check_values(values)
        self._pending = None
