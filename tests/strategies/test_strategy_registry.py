"""The registry: names, descriptions, the factory's errors, lazy heavy imports, and the
refusal of a second strategy under a taken name (while the same one again changes nothing)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from search_spaces.dimensions import Architecture
from strategies import Strategy, StrategyError, create_strategy, list_strategies
from strategies import registry as registry_module
from strategies.random_search import RandomSearch
from strategies.registry import lazy, register_strategy, strategy_class

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


def test_a_loader_registers_a_strategy_imported_when_first_created(dims) -> None:
    register_strategy(
        "test.lazy_random",
        "Random, loaded lazily",
        lazy("strategies.random_search", "RandomSearch"),
    )
    try:
        assert list_strategies()["test.lazy_random"] == "Random, loaded lazily"
        assert type(create_strategy("test.lazy_random", dims, ["maximize"], seed=0)) is RandomSearch
    finally:
        registry_module._REGISTRY.pop("test.lazy_random")


def test_another_strategy_under_a_taken_name_is_refused_naming_the_holder() -> None:
    class Impostor(Strategy):
        name = "random"

        def ask(self) -> Architecture:
            return {d.name: d.smallest for d in self.dimensions}

    with pytest.raises(StrategyError) as info:
        register_strategy("random", "Not the uniform one")(Impostor)
    assert str(info.value) == (
        "strategy 'random' is already registered (by strategies.random_search.RandomSearch)"
    )
    with pytest.raises(StrategyError, match="'random' is already registered"):
        register_strategy("random", "Not the uniform one", lazy("strategies.grid", "GridSearch"))
    assert strategy_class("random") is RandomSearch
    assert list_strategies()["random"] == "Uniform random sampling"


def test_the_builtins_registered_again_change_nothing() -> None:
    before = list_strategies()
    registry_module._register_builtins()  # what importing the module a second time does
    register_strategy(
        "random", "Uniform random sampling", lazy("strategies.random_search", "RandomSearch")
    )
    assert list_strategies() == before and strategy_class("random") is RandomSearch


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A user's module that registers a strategy when imported, removed after."""
    (tmp_path / "nasprune_test_plugin.py").write_text(
        textwrap.dedent(
            """
            from strategies import Strategy, register_strategy

            @register_strategy("test.plugin", "Always the smallest choices")
            class Smallest(Strategy):
                def ask(self):
                    return {d.name: d.smallest for d in self.dimensions}
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "nasprune_test_plugin"
    sys.modules.pop("nasprune_test_plugin", None)
    registry_module._REGISTRY.pop("test.plugin")


def test_a_plugin_module_imported_again_registers_its_strategy_again(plugin: str, dims) -> None:
    module = importlib.import_module(plugin)
    first = module.Smallest
    importlib.reload(module)  # a new class object with the same qualified name
    assert module.Smallest is not first
    assert strategy_class("test.plugin") is module.Smallest
    assert create_strategy("test.plugin", dims, ["maximize"], seed=0).ask() == {
        d.name: d.smallest for d in dims
    }


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
