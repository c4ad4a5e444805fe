"""Greedy shrinking (``greedy``) on a synthetic table of accuracy and latency: its path takes
the step that loses the least accuracy per millisecond saved, evaluates nothing but the path's
neighbours, reaches the latency limit and keeps going below it (or explores around the best
feasible network); without latency it weighs params, and without any cost, accuracy alone."""

from __future__ import annotations

from collections.abc import Callable

from search_spaces.dimensions import Architecture, Dimension, DimensionKind
from strategies import create_strategy
from strategies.base import Result, Strategy, draw_seed
from strategies.greedy import GreedyShrink

DIMS = (
    Dimension("a", DimensionKind.WIDTH, (16, 32, 48, 64)),
    Dimension("b", DimensionKind.WIDTH, (8, 16, 32)),
    Dimension("d", DimensionKind.DEPTH, (1, 2, 3)),
)
# Additive: each choice costs these milliseconds, and loses this much accuracy from 1.0.
MS = {"a": (0.5, 1.0, 1.5, 1.7), "b": (0.2, 0.6, 1.4), "d": (0.3, 0.9, 1.5)}
LOSS = {"a": (0.09, 0.04, 0.01, 0.0), "b": (0.10, 0.02, 0.0), "d": (0.2, 0.05, 0.0)}
LIMIT = 2.2
# Accuracy lost per ms saved by each step: b 32->16 0.025, a 64->48 0.05, a 48->32 0.06,
# d 3->2 0.083, a 32->16 0.1, b 16->8 0.2, d 2->1 0.25: the path takes them in that order
# (by accuracy lost alone, a 64->48 would come first: 0.01 against 0.02).
PATH = [
    {"a": 64, "b": 32, "d": 3},  # 4.6 ms
    {"a": 64, "b": 16, "d": 3},  # 3.8
    {"a": 48, "b": 16, "d": 3},  # 3.6
    {"a": 32, "b": 16, "d": 3},  # 3.1
    {"a": 32, "b": 16, "d": 2},  # 2.5
    {"a": 16, "b": 16, "d": 2},  # 2.0: the first within the limit
    {"a": 16, "b": 8, "d": 2},  # 1.6
    {"a": 16, "b": 8, "d": 1},  # 1.0
]
WALKED = 19  # evaluations to walk it: the largest, then 3, 3, 3, 3, 3, 2 and 1 neighbours

Metrics = Callable[[Architecture], dict[str, float]]


def index(arch: Architecture, name: str) -> int:
    return next(d for d in DIMS if d.name == name).index(arch[name])


def latency_table(arch: Architecture) -> dict[str, float]:
    return {
        "accuracy": 1.0 - sum(LOSS[n][index(arch, n)] for n in MS),
        "latency_ms": sum(MS[n][index(arch, n)] for n in MS),
    }


def greedy(**params) -> GreedyShrink:
    strategy = create_strategy(
        "greedy",
        DIMS,
        ["maximize"],
        0,
        constraints={"latency_ms": LIMIT},
        objectives=["accuracy"],
        **params,
    )
    assert isinstance(strategy, GreedyShrink)
    return strategy


def drive(strategy: Strategy, metrics: Metrics, n: int) -> list[Architecture]:
    """Ask and tell as the search does: values None when screened out or over the limit,
    metrics always."""
    asked = []
    for i in range(n):
        arch = strategy.ask(draw_seed(0, i, 0))
        measured = metrics(arch)
        over = "accuracy" not in measured or measured.get("latency_ms", 0.0) > LIMIT
        strategy.add([Result(arch, None if over else [measured["accuracy"]], metrics=measured)])
        asked.append(arch)
    return asked


def smaller_neighbours(arch: Architecture) -> list[Architecture]:
    found = []
    for d in DIMS:
        i = d.index(arch[d.name])
        if i > 0:
            found.append({**arch, d.name: d.choices[i - 1]})
    return found


def test_the_path_takes_the_least_accuracy_per_ms_and_goes_on_below_the_limit() -> None:
    strategy = greedy()
    asked = drive(strategy, latency_table, WALKED)
    assert strategy.path() == PATH
    assert [latency_table(a)["latency_ms"] <= LIMIT for a in PATH[4:]] == [False] + [True] * 3
    allowed = [PATH[0]] + [n for arch in PATH for n in smaller_neighbours(arch)]
    assert all(a in allowed for a in asked), "it evaluates the path's neighbours only"
    assert len({str(a) for a in asked}) == len(asked)


def test_the_first_ask_is_the_largest_then_its_smaller_neighbours() -> None:
    strategy = greedy()
    asked = drive(strategy, latency_table, 4)
    assert asked[0] == PATH[0]
    assert sorted(asked[1:], key=str) == sorted(smaller_neighbours(PATH[0]), key=str)


def test_explore_stops_at_the_limit_and_looks_around_the_best_feasible() -> None:
    strategy = greedy(once_feasible="explore")
    asked = drive(strategy, latency_table, 16)
    assert strategy.path() == PATH[:6]
    feasible = [a for a in asked if latency_table(a)["latency_ms"] <= LIMIT]
    best = max(feasible, key=lambda a: latency_table(a)["accuracy"])
    assert best == PATH[5]
    for seed in range(5):
        nxt = strategy.ask(seed)
        moved = [d.name for d in DIMS if nxt[d.name] != best[d.name]]
        assert len(moved) == 1 and abs(index(nxt, moved[0]) - index(best, moved[0])) == 1
        assert nxt not in asked
    more = drive(strategy, latency_table, 3)
    assert strategy.path() == PATH[:6], "the path stays at the limit"
    assert {"a": 16, "b": 32, "d": 2} in more, "a step back up is explored too"


def test_without_latency_the_path_weighs_params_and_without_any_cost_accuracy() -> None:
    def params_table(arch: Architecture) -> dict[str, float]:
        measured = latency_table(arch)
        return {"accuracy": measured["accuracy"], "params": 1000 * measured["latency_ms"]}

    by_params = greedy()
    drive(by_params, params_table, WALKED)
    assert by_params.path() == PATH, "params in proportion to latency: the same path"

    by_accuracy = create_strategy("greedy", DIMS, ["maximize"], 0)
    assert isinstance(by_accuracy, GreedyShrink)
    for i in range(18):  # results without metrics: the first objective only
        arch = by_accuracy.ask(i)
        by_accuracy.add([Result(arch, [latency_table(arch)["accuracy"]])])
    # the least accuracy lost: a 64->48 (0.01), b 32->16 (0.02), a 48->32 (0.03)
    assert by_accuracy.path()[:4] == [PATH[0], {"a": 48, "b": 32, "d": 3}, PATH[2], PATH[3]]


def test_neighbours_screened_out_unmeasured_move_the_path_by_the_most_saved() -> None:
    """Over a params limit nothing is evaluated: no accuracy, only params; the path still
    goes down, the biggest saving first."""

    def screened(arch: Architecture) -> dict[str, float]:
        ms = latency_table(arch)["latency_ms"]
        return {"params": 1000 * ms} if ms > 3.0 else latency_table(arch)

    strategy = greedy()
    drive(strategy, screened, 8)
    assert strategy.path()[:3] == [PATH[0], PATH[1], {"a": 64, "b": 16, "d": 2}]  # b, then d


def test_the_path_runs_in_the_spaces_canonical_form() -> None:
    """Like an MLP's widths past its depth: with d at 1, b is unused and canonically 8."""

    def canonical(arch: Architecture) -> Architecture:
        return {**arch, "b": 8} if arch["d"] == 1 else dict(arch)

    strategy = create_strategy("greedy", DIMS, ["maximize"], 0, canonical=canonical)
    for i in range(40):
        arch = canonical(strategy.ask(i))  # the search evaluates the canonical form
        strategy.add([Result(arch, [latency_table(arch)["accuracy"]])])
    assert strategy.path()[-1] == {"a": 16, "b": 8, "d": 1}
