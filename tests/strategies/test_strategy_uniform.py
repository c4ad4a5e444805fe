"""The width multiplier baseline (``uniform``): its asks are exactly one keep ratio for every
width, coarse to fine, with blocks, kernels and sparsity kept at their largest; then seeded
random architectures, so it never runs dry."""

from __future__ import annotations

from search_spaces.dimensions import Architecture, Dimension, DimensionKind
from strategies import create_strategy
from strategies.base import Result, Strategy, draw_seed

DIMS = (
    Dimension("stage1", DimensionKind.WIDTH, (16, 32, 48, 64)),
    Dimension("blocks", DimensionKind.DEPTH, (1, 2, 3)),
    Dimension("stage2", DimensionKind.WIDTH, (8, 16, 24, 32)),
    Dimension("kernel", DimensionKind.KERNEL, (3, 5, 7)),
    Dimension("sparsity", DimensionKind.SPARSITY, (0.9, 0.5, 0.0)),  # small to large: 0.0 dense
)
KEPT = {"blocks": 3, "kernel": 7, "sparsity": 0.0}


def asks(strategy: Strategy, n: int) -> list[Architecture]:
    found = []
    for i in range(n):
        arch = strategy.ask(draw_seed(strategy.seed, i, 0))
        strategy.add([Result(arch, [float(i)])])
        found.append(arch)
    return found


def test_asks_are_the_width_multipliers_coarse_to_fine_with_the_rest_kept() -> None:
    swept = asks(create_strategy("uniform", DIMS, ["maximize"], seed=0), 4)
    assert swept == [
        {"stage1": 64, "stage2": 32, **KEPT},  # ratio 1
        {"stage1": 16, "stage2": 8, **KEPT},  # 0
        {"stage1": 48, "stage2": 24, **KEPT},  # 2/3
        {"stage1": 32, "stage2": 16, **KEPT},  # 1/3
    ]


def test_widths_of_different_lengths_share_one_ratio_to_the_nearest_choice() -> None:
    dims = (
        Dimension("a", DimensionKind.WIDTH, (16, 32, 48, 64, 80)),  # positions 0, 1/4 ... 1
        Dimension("b", DimensionKind.WIDTH, (8, 16, 32)),  # 0, 1/2, 1
        Dimension("blocks", DimensionKind.DEPTH, (1, 2)),
    )
    strategy = create_strategy("uniform", dims, ["maximize"], seed=0)
    swept = asks(strategy, 5)
    assert swept == [
        {"a": 80, "b": 32, "blocks": 2},  # 1
        {"a": 16, "b": 8, "blocks": 2},  # 0
        {"a": 48, "b": 16, "blocks": 2},  # 1/2
        {"a": 64, "b": 32, "blocks": 2},  # 3/4: b's 1.5 rounds half up
        {"a": 32, "b": 16, "blocks": 2},  # 1/4: b's 0.5 rounds up too
    ]
    assert strategy.ask(5) not in swept, "then the sweep is spent: random architectures"


def test_the_sweep_is_the_same_for_every_seed_then_asks_differ_by_seed() -> None:
    first = asks(create_strategy("uniform", DIMS, ["maximize"], seed=1), 12)
    second = asks(create_strategy("uniform", DIMS, ["maximize"], seed=2), 12)
    assert first[:4] == second[:4]
    assert first[4:] != second[4:]
    assert all(set(a) == {d.name for d in DIMS} for a in first + second)


def test_an_architecture_the_search_evaluated_already_is_skipped() -> None:
    strategy = create_strategy("uniform", DIMS, ["maximize"], seed=0)
    strategy.add([Result({"stage1": 16, "stage2": 8, **KEPT}, None)])  # failed, still known
    assert strategy.ask(0) == {"stage1": 64, "stage2": 32, **KEPT}
    strategy.add([Result(strategy.ask(0), [1.0])])
    assert strategy.ask(0) == {"stage1": 48, "stage2": 24, **KEPT}
