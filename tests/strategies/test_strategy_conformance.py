"""The contract of strategies.base.Strategy, checked on every registered strategy."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from search_spaces.dimensions import Architecture, arch_hash
from strategies import StrategyError, create_strategy, list_strategies

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
    for i in range(12):
        arch = strategy.ask()
        strategy.tell(arch, None if i % 3 == 0 else [float(arch["width"])])
    strategy.close()


@pytest.mark.parametrize("name", NAMES)
def test_unknown_param_is_rejected_by_name(name: str, dims) -> None:
    with pytest.raises(StrategyError, match="no_such_param"):
        create_strategy(name, dims, ["maximize"], seed=0, no_such_param=1)


@pytest.mark.parametrize("name", NAMES)
def test_tell_must_match_the_last_ask(name: str, dims) -> None:
    strategy = create_strategy(name, dims, ["maximize"], seed=0)
    arch = strategy.ask()
    other = dict(arch, width=16 if arch["width"] != 16 else 32)
    with pytest.raises(StrategyError, match="last ask"):
        strategy.tell(other, [1.0])
    with pytest.raises(StrategyError, match="value"):
        strategy.tell(arch, [1.0, 2.0])
    strategy.tell(arch, [1.0])
    with pytest.raises(StrategyError, match="pending"):
        strategy.tell(arch, [1.0])


def test_bad_directions_and_seed_are_rejected(dims) -> None:
    with pytest.raises(StrategyError, match="directions"):
        create_strategy("random", dims, ["maximise"], seed=0)
    with pytest.raises(StrategyError, match="seed"):
        create_strategy("random", dims, ["maximize"], seed="0")
