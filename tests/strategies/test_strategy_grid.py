"""Grid search: every architecture once in product order, then seeded shuffled passes."""

from __future__ import annotations

import itertools

from strategies import create_strategy


def test_grid_walks_the_product_then_shuffled_passes(dims, driver) -> None:
    small = dims[:3]  # 36 architectures
    product = [
        dict(zip([d.name for d in small], row, strict=True))
        for row in itertools.product(*(d.choices for d in small))
    ]
    asked = driver(create_strategy("grid", small, ["maximize"], seed=0), lambda a: [0.0], 36 * 3)
    assert asked[:36] == product
    for start in (36, 72):
        again = asked[start : start + 36]
        assert again != product
        assert sorted(map(str, again)) == sorted(map(str, product))


def test_grid_order_ignores_seed_until_exhausted(dims, driver) -> None:
    small = dims[:2]
    runs = [
        driver(create_strategy("grid", small, ["maximize"], seed=s), lambda a: [0.0], 24)
        for s in (0, 1)
    ]
    assert runs[0][:12] == runs[1][:12]
    assert runs[0][12:] != runs[1][12:]
