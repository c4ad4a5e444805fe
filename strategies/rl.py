"""A policy-gradient controller (NAS-RL, AMC, MnasNet), small: REINFORCE on one categorical
policy per dimension, learnt from the history in order."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

import annotated_types as at

from search_spaces.dimensions import Architecture, Dimension

from .base import Result, Strategy
from .params import NonNegativeFloat, PositiveFloat


class Reinforce(Strategy):
    """Each dimension has its own logits; an ask draws every dimension from
    ``softmax(logits / temperature)`` with ``random.Random(seed of the ask)``.

    Reward. One objective: its value, higher is better (a minimised one negated). Two or more:
    ``1 - share of the feasible Pareto front so far that dominates the trial``. A trial that
    broke a constraint is measured all the same (the search gives its metrics) and its reward
    is scaled by MnasNet's soft factor ``prod (value / limit) ** -penalty_exponent`` over the
    broken limits (``acc * (lat / limit) ** -0.07`` by default); a negative reward is made
    more negative by the same share. A failed trial (nothing measured) gets the lowest reward
    seen so far; one before any reward teaches nothing.

    Learning. ``add`` takes the results in order, each one REINFORCE step: the advantage is
    the reward minus an exponential moving baseline, divided by the moving standard deviation
    of the advantages (so ``learning_rate`` does not depend on the reward's scale), and
    ``logits += learning_rate * (advantage * grad log p(choice) + entropy_weight * grad H)``.
    Every result teaches, proposed by the policy or not. So one pass over the stored history
    rebuilds the very policy that the asks came from.

    Params: ``learning_rate=0.3``, ``baseline_decay=0.9``, ``entropy_weight=0.01``,
    ``temperature=1.0``, ``penalty_exponent=0.07``.

    >>> s = create_strategy("rl", dims, ["maximize"], 0, constraints={"latency_ms": 2.0},
    ...                     objectives=["accuracy"])
    >>> arch = s.ask(seed=1)
    """

    name = "rl"
    defaults: ClassVar[dict[str, float]] = {
        "learning_rate": 0.3,
        "baseline_decay": 0.9,
        "entropy_weight": 0.01,
        "temperature": 1.0,
        "penalty_exponent": 0.07,
    }
    param_types: ClassVar[dict[str, Any] | None] = {
        "learning_rate": PositiveFloat,
        "baseline_decay": Annotated[float, at.Interval(ge=0, lt=1)],
        "entropy_weight": NonNegativeFloat,
        "temperature": PositiveFloat,
        "penalty_exponent": NonNegativeFloat,
    }

    def __init__(
        self, dimensions: Sequence[Dimension], directions: Sequence[str], seed: int, **params: Any
    ) -> None:
        super().__init__(dimensions, directions, seed)
        p = self.resolve_params(params, self.defaults)
        self.learning_rate, self.decay = p["learning_rate"], p["baseline_decay"]
        self.entropy_weight, self.temperature = p["entropy_weight"], p["temperature"]
        self.penalty_exponent = p["penalty_exponent"]
        self.logits = [[0.0] * len(d.choices) for d in self.dimensions]
        self._baseline: float | None = None
        self._variance = 0.0
        self._lowest: float | None = None
        self._front: list[list[float]] = []  # feasible, higher-is-better objective vectors

    def ask(self, seed: int) -> Architecture:
        rng = random.Random(seed)
        return {
            dim.name: rng.choices(dim.choices, weights=self.probabilities(logits))[0]
            for dim, logits in zip(self.dimensions, self.logits, strict=True)
        }

    def add(self, results: Sequence[Result]) -> None:
        for result in results:
            reward = self._reward(result)
            if reward is not None:
                self._learn([d.index(result.arch[d.name]) for d in self.dimensions], reward)

    def probabilities(self, logits: Sequence[float]) -> list[float]:
        """The policy of one dimension: ``softmax(logits / temperature)``."""
        top = max(logits)
        weights = [math.exp((z - top) / self.temperature) for z in logits]
        total = sum(weights)
        return [w / total for w in weights]

    def _reward(self, result: Result) -> float | None:
        values = self.measured_values(result)
        if values is None:
            return self._lowest
        if len(values) == 1:
            reward = self.score(values)
        else:
            reward = self._pareto(values, feasible=result.values is not None)
        factor = math.prod(r**-self.penalty_exponent for r in self.overshoot(result).values())
        reward = reward * factor if reward >= 0 else reward / factor
        self._lowest = reward if self._lowest is None else min(self._lowest, reward)
        return reward

    def _pareto(self, values: Sequence[float], feasible: bool) -> float:
        """1 - the share of the front that dominates ``values``; a feasible point joins it."""
        point = [v if d == "maximize" else -v for v, d in zip(values, self.directions, strict=True)]
        beaten = sum(_dominates(other, point) for other in self._front)
        reward = 1.0 - beaten / len(self._front) if self._front else 1.0
        if feasible and not beaten:
            self._front = [p for p in self._front if not _dominates(point, p)] + [point]
        return reward

    def _learn(self, chosen: list[int], reward: float) -> None:
        if self._baseline is None:
            self._baseline = reward
        advantage = reward - self._baseline
        self._variance = self.decay * self._variance + (1 - self.decay) * advantage**2
        self._baseline = self.decay * self._baseline + (1 - self.decay) * reward
        if self._variance > 0:
            advantage /= math.sqrt(self._variance)
        for logits, k in zip(self.logits, chosen, strict=True):
            probs = self.probabilities(logits)
            entropy = -sum(p * math.log(p) for p in probs if p > 0)
            for j, p in enumerate(probs):
                grad_log_p = ((j == k) - p) / self.temperature
                grad_entropy = -p * (math.log(p) + entropy) / self.temperature if p > 0 else 0.0
                logits[j] += self.learning_rate * (
                    advantage * grad_log_p + self.entropy_weight * grad_entropy
                )


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether ``a`` is at least as good as ``b`` everywhere and better somewhere (higher is
    better)."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True)
    )
