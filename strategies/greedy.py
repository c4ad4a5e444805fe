"""Latency-aware greedy shrinking (NetAdapt, HALP): one step smaller at a time, where it
costs the least accuracy per millisecond saved."""

from __future__ import annotations

import heapq
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from search_spaces.dimensions import Architecture, Dimension

from .base import Result, Strategy

Key = tuple[int, ...]  # the index of each dimension's choice
COSTS = ("latency_ms", "params", "macs")  # what a step saves, the first one measured
EXPLORED = 10  # once the path is walked, the neighbours of this many best feasible trials


@dataclass(frozen=True)
class _Trial:
    quality: float | None  # its accuracy; given no metrics, its first objective
    metrics: Mapping[str, float]
    score: float | None  # the first objective, higher is better; None unless feasible


class GreedyShrink(Strategy):
    """A path from the largest architecture down. At each architecture of the path, the
    asks propose its one-step-smaller neighbours (one dimension one choice smaller), the
    ones not in the history, picked with the ask's seed. Once all are in the history the path
    moves to the neighbour that loses the least quality per unit of cost saved:
    ``(quality here - quality there) / (cost here - cost there)``.

    Quality is the ``accuracy`` a trial measured, whatever the objectives and constraints
    (a strategy given results without metrics uses their first objective). Cost is the first
    of ``latency_ms``, ``params``, ``macs`` (constrained ones first) that the architecture and
    every rated neighbour measured; without any, the path moves to the best quality. A
    neighbour without quality (failed, or screened out) comes last, the one saving the most
    first, so a path that starts above a params limit still goes down.

    ``once_feasible``: ``"shrink"`` (default) walks the path on below the limits to the
    smallest architecture, the trade-off curve of NetAdapt; ``"explore"`` stops it at the
    first architecture within the limits. Then the asks propose the unevaluated neighbours
    (one step either way) of the best feasible trials, best first; when those are spent, a
    random architecture drawn from the ask's seed.

    >>> s = create_strategy("greedy", dims, ["maximize"], 0, constraints={"latency_ms": 2.0})
    >>> s.ask(seed=0)  # the largest architecture first
    """

    name = "greedy"
    defaults: ClassVar[dict[str, str]] = {"once_feasible": "shrink"}
    param_types: ClassVar[dict[str, Any] | None] = {"once_feasible": Literal["shrink", "explore"]}

    def __init__(
        self, dimensions: Sequence[Dimension], directions: Sequence[str], seed: int, **params: Any
    ) -> None:
        super().__init__(dimensions, directions, seed)
        self.once_feasible = self.resolve_params(params, self.defaults)["once_feasible"]
        self._trials: dict[Key, _Trial] = {}

    def add(self, results: Sequence[Result]) -> None:
        for result in results:
            values = self.check_values(result.values)
            score = None if values is None else self.score(values)
            quality = score if result.metrics is None else result.metrics.get("accuracy")
            self._trials[self._key(result.arch)] = _Trial(quality, result.metrics or {}, score)

    def ask(self, seed: int) -> Architecture:
        rng = random.Random(seed)
        pending = self._walk()[1]
        return self._arch(rng.choice(pending)) if pending else self._explore(rng)

    def path(self) -> list[Architecture]:
        """The architectures the path has gone through so far, from the largest."""
        return [self._arch(key) for key in self._walk()[0]]

    def _walk(self) -> tuple[list[Key], list[Key]]:
        """The path as far as the history takes it, and what to evaluate before it goes on:
        the largest architecture, or the last one's smaller neighbours still unknown (none:
        the path is done)."""
        current = self._key({d.name: d.largest for d in self.dimensions})
        if current not in self._trials:
            return [], [current]
        path = [current]
        while self.once_feasible == "shrink" or self._trials[current].score is None:
            smaller = self._neighbours(current, (-1,))
            pending = [n for n in smaller if n not in self._trials]
            if pending or not smaller:
                return path, pending
            current = self._step(current, smaller)
            path.append(current)
        return path, []

    def _step(self, here: Key, neighbours: list[Key]) -> Key:
        """The neighbour that loses the least quality per unit of cost saved."""
        at = self._trials[here]
        rated = [self._trials[n] for n in neighbours if self._trials[n].quality is not None]
        cost = self._cost([at, *rated])

        def rank(i: int) -> tuple[int, float, int]:
            there = self._trials[neighbours[i]]
            if there.quality is None:
                worst = self._cost([at, there])
                saved = 0.0 if worst is None else at.metrics[worst] - there.metrics[worst]
                return (2, -saved, i)
            saved = 0.0 if cost is None else at.metrics[cost] - there.metrics[cost]
            if at.quality is not None and saved > 0:
                return (0, (at.quality - there.quality) / saved, i)
            return (1, -there.quality, i)

        return neighbours[min(range(len(neighbours)), key=rank)]

    def _cost(self, trials: Sequence[_Trial]) -> str | None:
        """The first cost metric that every one of ``trials`` measured (constrained first)."""
        order = sorted(COSTS, key=lambda m: m not in self.constraints)
        return next((m for m in order if all(m in t.metrics for t in trials)), None)

    def _explore(self, rng: random.Random) -> Architecture:
        feasible = [(t.score, k) for k, t in self._trials.items() if t.score is not None]
        for _, key in heapq.nlargest(EXPLORED, feasible, key=lambda pair: pair[0]):
            pending = [n for n in self._neighbours(key, (-1, 1)) if n not in self._trials]
            if pending:
                return self._arch(rng.choice(pending))
        return {d.name: rng.choice(d.choices) for d in self.dimensions}

    def _neighbours(self, key: Key, steps: tuple[int, ...]) -> list[Key]:
        """The canonical architectures one choice away from ``key`` in one dimension, in the
        order of the dimensions."""
        found: list[Key] = []
        for i, dim in enumerate(self.dimensions):
            for step in steps:
                if 0 <= key[i] + step < len(dim.choices):
                    moved = self._key(self._arch(key[:i] + (key[i] + step,) + key[i + 1 :]))
                    if moved != key and moved not in found:
                        found.append(moved)
        return found

    def _key(self, arch: Architecture) -> Key:
        arch = self.canonical(dict(arch))
        return tuple(d.index(arch[d.name]) for d in self.dimensions)

    def _arch(self, key: Key) -> Architecture:
        return {d.name: d.choices[i] for d, i in zip(self.dimensions, key, strict=True)}
