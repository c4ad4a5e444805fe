"""Fixtures of the strategy tests: a small space, deterministic objectives, a driver.

It also puts the repository root on ``sys.path``: the editable install in the shared venv was
built before the packages had ``__init__.py`` files, so its finder maps them as namespace
packages and ``from strategies import X`` fails under ``--import-mode=importlib`` otherwise.
Harmless once the install is rebuilt (or ``pythonpath = ["."]`` is set in pytest's config).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from search_spaces.dimensions import Architecture, Dimension, DimensionKind  # noqa: E402
from strategies import Strategy  # noqa: E402
from strategies.base import Result, draw_seed  # noqa: E402

Objective = Callable[[Architecture], Sequence[float] | None]

DIMS = (
    Dimension("width", DimensionKind.WIDTH, (16, 32, 48, 64)),
    Dimension("depth", DimensionKind.DEPTH, (1, 2, 3)),
    Dimension("kernel", DimensionKind.KERNEL, (3, 5, 7)),
    Dimension("expand", DimensionKind.EXPAND, (0.5, 1.0, 2.0, 4.0)),
)
TWO_OBJECTIVES = ("maximize", "minimize")


def size_score(arch: Architecture, dims: Sequence[Dimension] = DIMS) -> float:
    """In [0, 1]: mean position of the chosen values, 1 when every choice is the largest."""
    return sum(d.index(arch[d.name]) / (len(d.choices) - 1) for d in dims) / len(dims)


def two_objectives(arch: Architecture) -> list[float] | None:
    """A deterministic (score, cost) pair; a few architectures 'fail' (None)."""
    if arch["kernel"] == 7 and arch["depth"] == 1:
        return None
    return [size_score(arch), float(arch["width"]) * float(arch["expand"])]


def drive(strategy: Strategy, objective: Objective, n: int) -> list[Architecture]:
    """Run the search loop's protocol n times: ask with the i-th derived seed, then add that
    arch's result with the strategy's memo; return the asks."""
    asked = []
    for i in range(n):
        arch = strategy.ask(draw_seed(strategy.seed, i, 0))
        strategy.add([Result(arch, objective(arch), strategy.memo())])
        asked.append(arch)
    strategy.close()
    return asked


@pytest.fixture
def repo_root() -> str:
    """The repository root, the working directory of subprocess checks."""
    return ROOT


@pytest.fixture
def dims() -> tuple[Dimension, ...]:
    return DIMS


@pytest.fixture
def driver() -> Callable[[Strategy, Objective, int], list[Architecture]]:
    return drive


@pytest.fixture
def objectives() -> Objective:
    """Two deterministic objectives (score to maximise, cost to minimise) with failures."""
    return two_objectives


@pytest.fixture
def score() -> Callable[[Architecture], float]:
    """One objective in [0, 1] that prefers the largest choices."""
    return size_score
