"""The contract of strategies.base.Strategy, checked on every registered strategy."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from search_spaces.dimensions import Architecture, arch_hash
from strategies import StrategyError, create_strategy, list_strategies
from strategies.base import Result, draw_seed

NAMES = sorted(list_strategies())
ORDERED = {"grid", "nni.grid"}  # their sequence does not depend on the seed
TWO = ("maximize", "minimize")

Run = Callable[..., list[Architecture]]


@pytest.fixture
def run(dims, driver, objectives) -> Run:
    """Drive a fresh strategy for ``n`` asks on two objectives (some candidates fail)."""

    def run_(name: str, seed: int, n: int = 25) -> list[Architecture]:
        return driver(create_strategy(name, dims, TWO, seed), objectives, n)

    return run_


@pytest.mark.parametrize("name", NAMES)
def test_asks_are_valid_architectures(name: str, run: Run, dims) -> None:
    for arch in run(name, seed=3):
        assert list(arch) == [d.name for d in dims]
        for dim in dims:
            assert arch[dim.name] in dim.choices
            assert type(arch[dim.name]) is type(dim.choices[dim.index(arch[dim.name])])


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_and_values_give_the_same_asks(name: str, run: Run) -> None:
    first = [arch_hash(a) for a in run(name, seed=7)]
    second = [arch_hash(a) for a in run(name, seed=7)]
    assert first == second


@pytest.mark.parametrize("name", sorted(set(NAMES) - ORDERED))
def test_different_seed_gives_different_asks(name: str, run: Run) -> None:
    assert run(name, seed=1) != run(name, seed=2)


@pytest.mark.parametrize("name", NAMES)
def test_single_minimised_objective_and_failures_are_accepted(name: str, dims) -> None:
    strategy = create_strategy(name, dims, ["minimize"], seed=0)
    asked = []
    for i in range(12):
        arch = strategy.ask(i)
        asked.append(arch)
        values = None if i % 3 == 0 else [float(arch["width"])]
        strategy.add([Result(arch, values, strategy.memo())])
    after = strategy.ask(12)  # still asking after failures were told
    strategy.close()
    names = {d.name for d in dims}
    for arch in [*asked, after]:
        assert set(arch) == names
        assert all(arch[d.name] in d.choices for d in dims)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_param_is_rejected_by_name(name: str, dims) -> None:
    with pytest.raises(StrategyError, match="no_such_param"):
        create_strategy(name, dims, ["maximize"], seed=0, no_such_param=1)


@pytest.mark.parametrize("name", NAMES)
def test_a_result_with_the_wrong_number_of_values_is_refused(name: str, dims) -> None:
    strategy = create_strategy(name, dims, ["maximize"], seed=0)
    arch = strategy.ask(0)
    with pytest.raises(StrategyError, match="value"):
        strategy.add([Result(arch, [1.0, 2.0], strategy.memo())])


def history(name: str, dims, objectives, n: int = 30) -> tuple[list[Result], list[Architecture]]:
    """Drive a strategy n times; return its results and its next ask (seed of trial n)."""
    strategy = create_strategy(name, dims, TWO, seed=5)
    results = []
    for i in range(n):
        arch = strategy.ask(draw_seed(5, i, 0))
        results.append(Result(arch, objectives(arch), strategy.memo()))
        strategy.add(results[-1:])
    return results, [strategy.ask(draw_seed(5, n, attempt)) for attempt in range(3)]


@pytest.mark.parametrize("name", NAMES)
def test_a_strategy_rebuilt_from_its_history_in_one_pass_asks_what_it_would_have(
    name: str, dims, objectives
) -> None:
    results, following = history(name, dims, objectives)
    for cut in (30, 11):  # one add of the whole history; or two, as a worker refreshes
        rebuilt = create_strategy(name, dims, TWO, seed=5)
        rebuilt.add(results[:cut])
        rebuilt.add(results[cut:])
        assert rebuilt.ask(draw_seed(5, 30, 0)) == following[0]


PURE = set(NAMES) - {"optuna.qmc", "nni.grid", "nni.random", "nni.tpe"}  # these move a cursor


@pytest.mark.parametrize("name", sorted(PURE))
def test_an_ask_leaves_no_trace(name: str, dims, objectives) -> None:
    results, following = history(name, dims, objectives)
    strategy = create_strategy(name, dims, TWO, seed=5)
    strategy.add(results)
    asks = [strategy.ask(draw_seed(5, 30, attempt)) for attempt in (0, 1, 2, 0, 2)]
    assert asks == following + [following[0], following[2]]
    assert asks[0] == strategy.ask(draw_seed(5, 30, 0))


def test_bad_directions_and_seed_are_rejected(dims) -> None:
    with pytest.raises(StrategyError, match="directions"):
        create_strategy("random", dims, ["maximise"], seed=0)
    with pytest.raises(StrategyError, match="seed"):
        create_strategy("random", dims, ["maximize"], seed="0")
