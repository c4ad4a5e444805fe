"""The registry: names, descriptions, the factory's errors, and lazy heavy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from search_spaces.dimensions import Architecture
from strategies import Strategy, StrategyError, create_strategy, list_strategies
from strategies import registry as registry_module
from strategies.registry import register_strategy

EXPECTED = {
    "random",
    "grid",
    "optuna.tpe",
    "optuna.nsga2",
    "optuna.random",
    "optuna.qmc",
    "nni.regularized_evolution",
    "nni.tpe",
    "nni.random",
    "nni.evolution",
    "nni.grid",
}


def test_builtin_names_are_registered_with_one_line_descriptions() -> None:
    listed = list_strategies()
    assert EXPECTED <= set(listed)
    assert all(text and "\n" not in text for text in listed.values())


def test_unknown_name_lists_the_known_names(dims) -> None:
    with pytest.raises(StrategyError, match="unknown strategy 'evolution'") as info:
        create_strategy("evolution", dims, ["maximize"], seed=0)
    assert "optuna.tpe" in str(info.value) and "nni.regularized_evolution" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_decorator_registers_a_strategy_class(dims) -> None:
    @register_strategy("test.first", "Always the smallest choices")
    class First(Strategy):
        name = "test.first"

        def ask(self, seed: int) -> Architecture:
            return {d.name: d.smallest for d in self.dimensions}

    try:
        strategy = create_strategy("test.first", dims, ["maximize"], seed=0)
        assert isinstance(strategy, First)
        assert strategy.ask(0) == {d.name: d.smallest for d in dims}
    finally:
        registry_module._REGISTRY.pop("test.first")


def test_importing_and_listing_strategies_imports_neither_optuna_nor_nni(repo_root) -> None:
    code = (
        "import sys, strategies; strategies.list_strategies(); "
        "strategies.create_strategy('random', "
        "[__import__('search_spaces.dimensions').dimensions.Dimension('a', 'width', (1, 2))], "
        "['maximize'], 0).ask(0); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('optuna', 'nni')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
    assert out.stderr == ""
