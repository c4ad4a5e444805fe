"""Grid search: every architecture once in product order; then random answers."""

from __future__ import annotations

import itertools

from strategies import create_strategy
from strategies.base import Result


def test_grid_walks_the_product_then_answers_at_random(dims, driver) -> None:
    small = dims[:3]  # 36 architectures
    product = [
        dict(zip([d.name for d in small], row, strict=True))
        for row in itertools.product(*(d.choices for d in small))
    ]
    asked = driver(create_strategy("grid", small, ["maximize"], seed=0), lambda a: [0.0], 40)
    assert asked[:36] == product
    assert all(arch in product for arch in asked[36:])


def test_grid_skips_what_the_history_holds(dims) -> None:
    small = dims[:2]
    strategy = create_strategy("grid", small, ["maximize"], seed=0)
    first = strategy.ask(0)
    strategy.add([Result(first, [1.0]), Result({"width": 16, "depth": 2}, None)])
    assert strategy.ask(0) == {"width": 16, "depth": 3}


def test_grid_order_ignores_seed_until_exhausted(dims, driver) -> None:
    small = dims[:2]
    runs = [
        driver(create_strategy("grid", small, ["maximize"], seed=s), lambda a: [0.0], 24)
        for s in (0, 1)
    ]
    assert runs[0][:12] == runs[1][:12]
    assert runs[0][12:] != runs[1][12:]
