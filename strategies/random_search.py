"""Uniform random search: the baseline every other strategy must beat."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, ClassVar

from search_spaces.dimensions import Architecture, Dimension

from .base import Strategy


class RandomSearch(Strategy):
    """Each ask draws every dimension uniformly, from its own ``random.Random(seed)``.

    >>> s = RandomSearch(dims, ["maximize"], seed=0)
    >>> arch = s.ask(); s.tell(arch, [0.9])
    """

    name = "random"
    param_types: ClassVar[dict[str, Any] | None] = {}

    def __init__(
        self, dimensions: Sequence[Dimension], directions: Sequence[str], seed: int, **params: Any
    ) -> None:
        super().__init__(dimensions, directions, seed)
        self.resolve_params(params, {})
        self._rng = random.Random(seed)
        self._pending: Architecture | None = None

    def ask(self) -> Architecture:
        self._pending = {d.name: self._rng.choice(d.choices) for d in self.dimensions}
        return dict(self._pending)

    def tell(self, arch: Architecture, values: Sequence[float] | None) -> None:
        self.check_told(arch, self._pending)
        self.check_values(values)
        self._pending = None
