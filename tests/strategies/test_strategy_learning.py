"""Model-based strategies learn: they beat their own random start, and random search does not.

The space has 6 dimensions of 6 choices (46,656 architectures), so 60 random asks rarely come
near the optimum; the objective (in [0, 1]) prefers the largest choices. Seeded, so the
outcome is deterministic, not flaky; each bar is the mean over four seeds.
"""

from __future__ import annotations

import pytest

from search_spaces.dimensions import Dimension, DimensionKind
from strategies import create_strategy
from strategies.base import Result, draw_seed

SPACE = [Dimension(f"x{i}", DimensionKind.WIDTH, (8, 16, 24, 32, 48, 64)) for i in range(6)]


def scores(name: str, seed: int, score) -> list[float]:
    strategy = create_strategy(name, SPACE, ["maximize"], seed=seed)
    values = []
    for i in range(60):
        arch = strategy.ask(draw_seed(seed, i, 0))
        values.append(score(arch, SPACE))
        strategy.add([Result(arch, [values[-1]], strategy.memo())])
    strategy.close()
    return values


def gain(values: list[float]) -> float:
    """Mean of the last 20 asks minus the mean of the first 10 (the random start)."""
    return sum(values[-20:]) / 20 - sum(values[:10]) / 10


SEEDS = range(4)  # one seed's start can be lucky; the mean over four is not


@pytest.mark.parametrize("name", ["optuna.tpe", "nni.regularized_evolution"])
def test_learns_to_prefer_the_largest_choices(name: str, score) -> None:
    runs = [scores(name, seed, score) for seed in SEEDS]
    assert all(max(values) > max(values[:10]) for values in runs)
    assert sum(gain(values) for values in runs) / len(runs) > 0.15


def test_random_search_does_not_pass_the_learning_bar(score) -> None:
    runs = [scores("random", seed, score) for seed in SEEDS]
    assert sum(gain(values) for values in runs) / len(runs) < 0.15
