"""The REINFORCE controller (``rl``) learns: its policy concentrates on the best choice, a
broken limit lowers the reward by MnasNet's factor, two objectives are rewarded by Pareto
rank, a failure counts as the worst reward seen, and one pass over the history rebuilds the
very policy that learnt incrementally."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

import pytest

from search_spaces.dimensions import Architecture, Dimension, DimensionKind
from strategies import create_strategy
from strategies.base import Result, draw_seed
from strategies.rl import Reinforce

ONE = (Dimension("width", DimensionKind.WIDTH, (16, 32, 48, 64)),)
LIMIT = 2.5  # ms
Measure = Callable[[Architecture], Mapping[str, float] | None]


def measured_like_a_search(arch: Architecture) -> dict[str, float]:
    """Accuracy grows with the width, and so does latency: 1, 2, 3, 4 ms."""
    index = ONE[0].index(arch["width"])
    return {"accuracy": 0.6 + 0.1 * index, "latency_ms": 1.0 + index}


def told(metrics: Mapping[str, float] | None, objectives: tuple[str, ...]) -> list[float] | None:
    """What the search tells: the objectives, None when failed or over the latency limit."""
    if metrics is None or metrics["latency_ms"] > LIMIT:
        return None
    return [metrics[m] for m in objectives]


def learn(
    strategy: Reinforce, measure: Measure, objectives: tuple[str, ...], n: int
) -> list[Result]:
    """Ask and tell ``n`` times as the search loop does; return the results."""
    results = []
    for i in range(n):
        arch = strategy.ask(draw_seed(strategy.seed, i, 0))
        metrics = measure(arch)
        results.append(Result(arch, told(metrics, objectives), metrics=metrics))
        strategy.add(results[-1:])
    return results


def last_choices(results: list[Result], n: int = 20) -> Counter[object]:
    return Counter(r.arch["width"] for r in results[-n:])


def rl(directions: tuple[str, ...] = ("maximize",), seed: int = 0, **params) -> Reinforce:
    """An ``rl`` strategy as the search creates it: with the latency limit and the metrics."""
    objectives = ("accuracy", "latency_ms")[: len(directions)]
    strategy = create_strategy(
        "rl",
        ONE,
        directions,
        seed,
        constraints={"latency_ms": LIMIT},
        objectives=objectives,
        **params,
    )
    assert isinstance(strategy, Reinforce)
    return strategy


def test_the_policy_concentrates_on_the_best_choice() -> None:
    best = {48: 1.0}
    for seed in range(3):
        strategy = create_strategy("rl", ONE, ["maximize"], seed)
        results = []
        for i in range(60):
            arch = strategy.ask(draw_seed(seed, i, 0))
            results.append(Result(arch, [best.get(int(arch["width"]), 0.0)]))
            strategy.add(results[-1:])
        assert last_choices(results)[48] >= 12, "random asks pick it 5 times in 20"


@pytest.mark.parametrize(("exponent", "preferred"), [(0.0, 64), (0.07, 64), (1.0, 32)])
def test_a_broken_limit_scales_the_reward_by_mnasnets_factor(exponent, preferred) -> None:
    """Rewards of 16 ... 64: 0.6, 0.7, then 0.8 and 0.9 times (latency / 2.5) ** -exponent:
    with 0.07 (MnasNet) the fastest-but-over 64 still wins, with 1.0 the feasible 32 does."""
    strategy = rl(penalty_exponent=exponent, learning_rate=0.5)
    results = learn(strategy, measured_like_a_search, ("accuracy",), 80)
    assert last_choices(results).most_common(1)[0][0] == preferred


TABLE = {16: (0.9, 5.0), 32: (0.85, 1.0), 48: (0.5, 4.0), 64: (0.4, 6.0)}  # accuracy, ms


def pareto_run(directions: tuple[str, ...], seed: int) -> Counter[object]:
    strategy = create_strategy("rl", ONE, directions, seed, learning_rate=0.5)
    results = []
    for i in range(80):
        arch = strategy.ask(draw_seed(seed, i, 0))
        results.append(Result(arch, list(TABLE[int(arch["width"])][: len(directions)])))
        strategy.add(results[-1:])
    return last_choices(results)


@pytest.mark.parametrize("seed", range(4))
def test_two_objectives_are_rewarded_by_pareto_rank(seed: int) -> None:
    """16 (0.9 accurate, 5 ms) and 32 (0.85, 1 ms) are the front; 48 and 64 are dominated.
    On accuracy alone the policy settles on 16; on both, the faster 32 earns as much."""
    both = pareto_run(("maximize", "minimize"), seed)
    assert both[16] + both[32] >= 17 and both[32] >= 5
    assert pareto_run(("maximize",), seed)[32] <= 2


def test_a_failure_gets_the_lowest_reward_seen_and_a_first_failure_teaches_nothing() -> None:
    strategy = create_strategy("rl", ONE, ["maximize"], 0, entropy_weight=0.0)
    assert isinstance(strategy, Reinforce)
    strategy.add([Result({"width": 16}, None)])
    assert strategy.logits == [[0.0] * 4]
    strategy.add([Result({"width": 32}, [0.9]), Result({"width": 48}, [0.2])])
    before = strategy.logits[0][3]
    strategy.add([Result({"width": 64}, None)])
    assert strategy.logits[0][3] < before


def test_one_pass_over_the_history_rebuilds_the_incremental_policy() -> None:
    def measure(arch: Architecture) -> dict[str, float] | None:
        return None if arch["width"] == 16 else measured_like_a_search(arch)

    strategy = rl(("maximize", "minimize"), seed=4)
    results = learn(strategy, measure, ("accuracy", "latency_ms"), 40)
    assert any(r.values is None and r.metrics for r in results), "some broke the limit"
    rebuilt = rl(("maximize", "minimize"), seed=4)
    rebuilt.add(results)
    assert rebuilt.logits == strategy.logits
    assert [rebuilt.ask(s) for s in range(5)] == [strategy.ask(s) for s in range(5)]
