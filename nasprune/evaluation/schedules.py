"""Which subnets a supernet trains on at each step.

``sandwich`` (BigNAS, the default): every step trains the largest subnet on the labels, then
the smallest and ``random_subnets`` random ones on the largest one's soft labels.

``progressive`` (Once-for-All's progressive shrinking): the step budget is cut into phases
that make the network elastic one kind of dimension at a time, from the kinds that disturb
the shared weights least to those that disturb them most: the largest subnet alone first (for
a supernet trained from scratch; a derived one starts from trained weights), then kernel
sizes, then depth (blocks), then widths (channels, expansion ratios), then the rest (weight
sparsity). In a phase, the sandwich rule runs over the dimensions made elastic so far; the
others stay at their largest choice.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from search_spaces import Architecture, SearchSpace
from search_spaces.dimensions import Dimension, DimensionKind

Schedule = Literal["sandwich", "progressive"]
# The progressive phases, in order: the kinds of dimension each one makes elastic.
PHASES: tuple[tuple[str, frozenset[DimensionKind]], ...] = (
    ("kernel", frozenset({DimensionKind.KERNEL})),
    ("depth", frozenset({DimensionKind.DEPTH})),
    ("width", frozenset({DimensionKind.WIDTH, DimensionKind.EXPAND})),
    ("rest", frozenset(DimensionKind) - {
        DimensionKind.KERNEL, DimensionKind.DEPTH, DimensionKind.WIDTH, DimensionKind.EXPAND
    }),
)  # fmt: skip


@dataclass(frozen=True)
class Phase:
    """A stretch of training: its name, the step it starts at, the dimensions it samples."""

    name: str
    start: int
    elastic: tuple[Dimension, ...]  # sampled; every other dimension stays at its largest


class Sampler:
    """The subnets of each training step; the first one of a step is the teacher."""

    def __init__(
        self, schedule: Schedule, space: SearchSpace, steps: int, random_subnets: int
    ) -> None:
        self.space, self.random_subnets = space, random_subnets
        self.phases = _phases(space, steps) if schedule == "progressive" else None

    def archs(self, step: int, rng: random.Random) -> list[Architecture]:
        """The subnets of step ``step`` (counted from 0), drawing from ``rng``."""
        space = self.space
        if self.phases is None:
            samples = [space.sample(rng) for _ in range(self.random_subnets)]
            return [space.largest(), space.smallest(), *samples]
        phase = self.phase(step)
        if not phase.elastic:
            return [space.largest()]
        smallest = space.largest() | {d.name: d.smallest for d in phase.elastic}
        samples = [
            space.largest() | {d.name: rng.choice(d.choices) for d in phase.elastic}
            for _ in range(self.random_subnets)
        ]
        return [space.largest(), smallest, *samples]

    def phase(self, step: int) -> Phase:
        """The phase step ``step`` belongs to (progressive only)."""
        assert self.phases is not None
        return [p for p in self.phases if p.start <= step][-1]


def _phases(space: SearchSpace, steps: int) -> list[Phase]:
    """The progressive phases that have dimensions (and the largest-only warm-up of a
    supernet trained from scratch), sharing the steps evenly; each makes its own kinds
    elastic on top of the earlier phases'."""
    dims = space.dimensions()
    stages: list[tuple[str, Sequence[Dimension]]] = [] if space.pretrained else [("largest", [])]
    elastic: list[Dimension] = []
    for name, kinds in PHASES:
        mine = [d for d in dims if d.kind in kinds and len(d.choices) > 1]
        if mine:
            elastic = elastic + mine
            stages.append((name, list(elastic)))
    share = steps / max(1, len(stages))
    return [
        Phase(name, round(i * share), tuple(elastic)) for i, (name, elastic) in enumerate(stages)
    ]
