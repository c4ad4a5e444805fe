"""What a strategy is told beyond its directions (``create_strategy``'s constraints,
objectives and canonical form), and the helpers that read a trial that broke a limit."""

from __future__ import annotations

import pytest

from strategies import StrategyError, create_strategy
from strategies.base import Result


def test_by_default_a_strategy_knows_no_limits_metrics_or_canonical_form(dims) -> None:
    strategy = create_strategy("random", dims, ["maximize"], 0)
    assert dict(strategy.constraints) == {} and strategy.objectives == ()
    arch = strategy.ask(0)
    assert strategy.canonical(arch) is arch


def test_create_strategy_hands_the_problem_to_any_strategy(dims) -> None:
    strategy = create_strategy(
        "grid",
        dims,
        ["maximize", "minimize"],
        0,
        constraints={"latency_ms": 2},
        objectives=["accuracy", "params"],
        canonical=lambda arch: {**arch, "kernel": 3},
    )
    assert dict(strategy.constraints) == {"latency_ms": 2.0}
    assert strategy.objectives == ("accuracy", "params")
    assert strategy.canonical({"width": 16, "depth": 1, "kernel": 7, "expand": 1.0})["kernel"] == 3


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ({"constraints": {"latency_ms": 0}}, "positive"),
        ({"constraints": {"params": float("nan")}}, "positive"),
        ({"objectives": ["accuracy", "params"]}, "2 objective metric"),
    ],
)
def test_a_problem_that_does_not_fit_is_refused(dims, problem, message) -> None:
    with pytest.raises(StrategyError, match=message):
        create_strategy("random", dims, ["maximize"], 0, **problem)


def test_a_trial_over_a_limit_is_read_with_what_it_measured(dims) -> None:
    strategy = create_strategy(
        "random",
        dims,
        ["maximize"],
        0,
        constraints={"latency_ms": 2.0, "params": 1000},
        objectives=["accuracy"],
    )
    arch = strategy.ask(0)
    over = Result(arch, None, metrics={"accuracy": 0.8, "latency_ms": 3.0, "params": 900})
    assert strategy.measured_values(over) == [0.8]
    assert strategy.overshoot(over) == {"latency_ms": 1.5}
    screened = Result(arch, None, metrics={"params": 1100, "predicted_latency_ms": 5.0})
    assert strategy.measured_values(screened) is None
    assert strategy.overshoot(screened) == {"latency_ms": 2.5, "params": 1.1}
    assert strategy.measured_values(Result(arch, [0.7], metrics={"accuracy": 0.8})) == [0.7]
