"""Pareto fronts by sorting: the sweep against a brute-force dominance check, and the store's
front against the NOT EXISTS query it replaced (same trials, same order, on every backend)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import Select, and_, exists, or_, select

from storage import Store, TrialState
from storage import reader as reader_module
from storage.pareto import non_dominated
from storage.queries import maximize, metric_column, trial_filter
from storage.tables import trials

Point = tuple[Any, ...]  # (id, objective values...)
Draw = Callable[[random.Random], dict[str, float]]


def _dominates(a: Point, b: Point, ups: Sequence[bool]) -> bool:
    """``a`` at least as good as ``b`` on every objective and strictly better on one."""
    pairs = [(x, y) if up else (y, x) for x, y, up in zip(a[1:], b[1:], ups, strict=True)]
    return all(x >= y for x, y in pairs) and any(x > y for x, y in pairs)


def _brute_force(rows: list[Point], ups: Sequence[bool]) -> set[Any]:
    """The front by the definition: O(n^2) dominance checks."""
    return {p[0] for p in rows if not any(_dominates(q, p, ups) for q in rows)}


def _best_first(rows: list[Point], ups: Sequence[bool], rng: random.Random) -> list[Point]:
    """``rows`` sorted best first on each objective in turn, ties in random order."""
    shuffled = rows[:]
    rng.shuffle(shuffled)
    signs = [-1 if up else 1 for up in ups]
    return sorted(shuffled, key=lambda p: [s * v for s, v in zip(signs, p[1:], strict=True)])


def _random_rows(rng: random.Random, objectives: int) -> list[Point]:
    """Up to 40 points on a coarse grid (many ties and exact copies), ints or floats."""
    grid = rng.choice([1, 2, 4, 50])
    ints = [rng.random() < 0.3 for _ in range(objectives)]
    return [
        (number, *(rng.randint(0, grid) if i else rng.randint(0, grid) / 4 for i in ints))
        for number in range(rng.randint(0, 40))
    ]


@pytest.mark.parametrize("objectives", [1, 2, 3, 4])
def test_non_dominated_finds_the_brute_force_front_of_random_points_with_ties(
    objectives: int,
) -> None:
    rng = random.Random(objectives)
    for _ in range(400):
        ups = [rng.random() < 0.5 for _ in range(objectives)]
        rows = _best_first(_random_rows(rng, objectives), ups, rng)
        front = non_dominated(rows, ups)
        expected = _brute_force(rows, ups)
        assert set(front) == expected
        assert front == [p[0] for p in rows if p[0] in expected]  # in the order given


def test_equal_points_are_all_on_the_front_and_dominate_nothing_equal() -> None:
    rows = [(1, 0.9, 1.0), (2, 0.9, 1.0), (3, 0.9, 2.0), (4, 0.8, 0.5), (5, 0.8, 0.5)]
    assert non_dominated(rows, [True, False]) == [1, 2, 4, 5]
    assert non_dominated([(1, 0.9), (2, 0.9), (3, 0.8)], [True]) == [1, 2]
    three = [(1, 1, 1, 1), (2, 1, 1, 1), (3, 1, 1, 2), (4, 1, 2, 0)]
    assert non_dominated(three, [False, False, False]) == [1, 2, 4]
    assert non_dominated([], [True, False]) == []


def _not_exists_front(search_id: int, objectives: Sequence[tuple[str, str]]) -> Select[Any]:
    """The query the sweep replaced (quadratic when the front is large): the reference."""
    other = trials.alias("other")
    as_good, better, not_null = [], [], []
    for metric, direction in objectives:
        mine, theirs = metric_column(trials, metric), metric_column(other, metric)
        up = maximize(direction)
        as_good.append(theirs >= mine if up else theirs <= mine)
        better.append(theirs > mine if up else theirs < mine)
        not_null.append(mine.is_not(None))
    dominated = exists().where(
        other.c.search_id == search_id,
        other.c.state == TrialState.COMPLETE.value,
        and_(*as_good),
        or_(*better),
    )
    first = metric_column(trials, objectives[0][0])
    order = first.desc() if maximize(objectives[0][1]) else first.asc()
    return (
        select(trials.c.number)
        .where(*trial_filter(search_id, [TrialState.COMPLETE]), *not_null, ~dominated)
        .order_by(order, trials.c.number)
    )


def _coarse(rng: random.Random) -> dict[str, float]:
    """Metrics on a coarse grid: few front points, many ties and copies."""
    return {
        "accuracy": rng.choice([0.25, 0.5, 0.75, 1.0]),
        "loss": rng.choice([0.1, 0.2, 0.3]),
        "latency_ms": rng.choice([1.0, 1.5, 2.0, 3.0]),
        "params": rng.choice([10, 20, 30]),
        "macs": rng.choice([100, 200]),
    }


def _trade_off(rng: random.Random) -> dict[str, float]:
    """Accuracy, loss and size rising with latency, with ties: large fronts."""
    latency = rng.randint(2, 24) / 4
    return {
        "accuracy": round(latency / 6 + rng.choice([-0.1, 0.0, 0.05]), 2),
        "loss": round(1 / latency + rng.choice([0.0, 0.05]), 2),
        "latency_ms": latency,
        "params": int(latency) * 10 + rng.randint(0, 2),
        "macs": rng.choice([100, 200, 300]),
    }


def _mixed(rng: random.Random) -> dict[str, float]:
    """Mostly a trade-off, sometimes the coarse grid."""
    return (_coarse if rng.random() < 0.3 else _trade_off)(rng)


def _fill(store: Store, name: str, draw: Draw, rng: random.Random, count: int) -> int:
    """A search of trials with drawn metrics, some null, some trials failed or running."""
    search_id = store.create_search(name, {}, "h", "space", "random", count, {}).search_id
    for _ in range(count):
        trial = store.create_trial(search_id, {}, "h", "w")
        metrics = {m: value for m, value in draw(rng).items() if rng.random() > 0.1}
        state = TrialState.FAILED if rng.random() < 0.1 else TrialState.COMPLETE
        if rng.random() > 0.05:  # the others stay running
            store.finish_trial(trial.trial_id, state, metrics)
    return search_id


UP, DOWN = "maximize", "minimize"
OBJECTIVE_SETS = [
    [("accuracy", UP), ("latency_ms", DOWN)],
    [("latency_ms", DOWN), ("accuracy", UP)],
    [("accuracy", DOWN), ("latency_ms", UP)],
    [("loss", DOWN), ("params", DOWN)],
    [("params", UP), ("macs", DOWN)],
    [("accuracy", UP)],
    [("latency_ms", DOWN)],
    [("accuracy", UP), ("latency_ms", DOWN), ("params", DOWN)],
    [("loss", UP), ("accuracy", UP), ("macs", DOWN)],
    [("accuracy", UP), ("loss", DOWN), ("latency_ms", DOWN), ("macs", UP)],
    [("accuracy", UP), ("accuracy", DOWN)],
]


def test_pareto_front_returns_what_the_not_exists_query_returned_in_the_same_order(
    store: Store,
) -> None:
    rng = random.Random(11)
    searches = [_fill(store, "a", _coarse, rng, 60), _fill(store, "b", _trade_off, rng, 60)]
    for search_id in searches:
        for objectives in OBJECTIVE_SETS:
            with store._connection() as connection:
                reference = connection.scalars(_not_exists_front(search_id, objectives)).all()
            front = store.pareto_front(search_id, objectives)
            assert [t.number for t in front] == reference, objectives
            assert all(t.search_id == search_id for t in front)


def test_pareto_front_is_the_brute_force_front_of_complete_trials_without_nulls(
    store: Store,
) -> None:
    rng = random.Random(12)
    search_id = _fill(store, "a", _mixed, rng, 80)
    complete = store.trials(search_id, [TrialState.COMPLETE])
    for objectives in OBJECTIVE_SETS:
        metrics = [metric for metric, _ in objectives]
        points = [(t.number, *(getattr(t, m) for m in metrics)) for t in complete]
        points = [p for p in points if None not in p]
        ups = [maximize(direction) for _, direction in objectives]
        front = store.pareto_front(search_id, objectives)
        assert {t.number for t in front} == _brute_force(points, ups), objectives


def test_pareto_front_reads_a_front_larger_than_one_in_clause_in_chunks(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader_module, "IN_CHUNK", 7)
    search_id = store.create_search("big", {}, "h", "space", "random", 30, {}).search_id
    for i in range(30):  # every trial is on the front: accuracy rises with latency
        trial = store.create_trial(search_id, {}, "h", "w")
        metrics = {"accuracy": i / 30, "latency_ms": 1.0 + i}
        store.finish_trial(trial.trial_id, TrialState.COMPLETE, metrics)
    front = store.pareto_front(search_id, [("accuracy", "maximize"), ("latency_ms", "minimize")])
    assert [t.number for t in front] == list(range(29, -1, -1))
