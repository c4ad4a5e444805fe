"""Uniform random search: the baseline every other strategy must beat."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, ClassVar

from search_spaces.dimensions import Architecture, Dimension

from .base import Strategy


class RandomSearch(Strategy):
    """Each ask draws every dimension uniformly from ``random.Random(seed of the ask)``.

    >>> s = RandomSearch(dims, ["maximize"], seed=0)
    >>> arch = s.ask(seed=1)
    """

    name = "random"
    param_types: ClassVar[dict[str, Any] | None] = {}

    def __init__(
        self, dimensions: Sequence[Dimension], directions: Sequence[str], seed: int, **params: Any
    ) -> None:
        super().__init__(dimensions, directions, seed)
        self.resolve_params(params, {})

    def ask(self, seed: int) -> Architecture:
        rng = random.Random(seed)
        return {d.name: rng.choice(d.choices) for d in self.dimensions}
