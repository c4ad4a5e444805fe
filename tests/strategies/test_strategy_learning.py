"""Model-based strategies learn: they beat their own random start, and random search does not.

The space has 6 dimensions of 6 choices (46,656 architectures), so 60 random asks rarely come
near the optimum; the objective (in [0, 1]) prefers the largest choices. Seeded, so the
outcome is deterministic, not flaky.
"""

from __future__ import annotations

import pytest

from search_spaces.dimensions import Dimension, DimensionKind
from strategies import create_strategy

SPACE = [Dimension(f"x{i}", DimensionKind.WIDTH, (8, 16, 24, 32, 48, 64)) for i in range(6)]


def scores(name: str, seed: int, score) -> list[float]:
    strategy = create_strategy(name, SPACE, ["maximize"], seed=seed)
    values = []
    for _ in range(60):
        arch = strategy.ask()
        values.append(score(arch, SPACE))
        strategy.tell(arch, [values[-1]])
    strategy.close()
    return values


def gain(values: list[float]) -> float:
    """Mean of the last 20 asks minus the mean of the first 10 (the random start)."""
    return sum(values[-20:]) / 20 - sum(values[:10]) / 10


@pytest.mark.parametrize("name", ["optuna.tpe", "nni.regularized_evolution"])
@pytest.mark.parametrize("seed", [0, 1])
def test_learns_to_prefer_the_largest_choices(name: str, seed: int, score) -> None:
    values = scores(name, seed, score)
    assert max(values) > max(values[:10])
    assert gain(values) > 0.15


@pytest.mark.parametrize("seed", [0, 1])
def test_random_search_does_not_pass_the_learning_bar(seed: int, score) -> None:
    assert gain(scores("random", seed, score)) < 0.15
