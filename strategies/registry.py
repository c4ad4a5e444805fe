"""Registry of strategies by short name, and the one factory :func:`create_strategy`.

Entries hold a *loader*: a zero-argument callable that returns the strategy class. Loaders of
the adapters import their module (and so Optuna or NNI) only when such a strategy is created,
so listing the strategies, or importing :mod:`strategies`, stays instant.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, overload

from search_spaces.dimensions import Dimension

from .base import Strategy
from .errors import StrategyError

Loader = Callable[[], type[Strategy]]


@dataclass(frozen=True)
class _Entry:
    description: str
    loader: Loader


_REGISTRY: dict[str, _Entry] = {}


@overload
def register_strategy(name: str, description: str, loader: Loader) -> Loader: ...


@overload
def register_strategy(
    name: str, description: str, loader: None = None
) -> Callable[[type[Strategy]], type[Strategy]]: ...


def register_strategy(
    name: str, description: str, loader: Loader | None = None
) -> Loader | Callable[[type[Strategy]], type[Strategy]]:
    """Register a strategy under ``name`` with a one-line ``description``.

    Either pass a ``loader`` (a callable returning the class, for lazy imports) or use it as a
    class decorator::

        @register_strategy("mine.greedy", "Greedy search over the largest choices first")
        class Greedy(Strategy): ...
    """
    if loader is not None:
        _REGISTRY[name] = _Entry(description, loader)
        return loader

    def decorate(cls: type[Strategy]) -> type[Strategy]:
        _REGISTRY[name] = _Entry(description, lambda: cls)
        return cls

    return decorate


def lazy(module: str, attr: str) -> Loader:
    """A loader that imports ``module`` and returns its ``attr`` when called."""

    def load() -> type[Strategy]:
        cls: type[Strategy] = getattr(importlib.import_module(module), attr)
        return cls

    return load


def list_strategies() -> dict[str, str]:
    """Registered names mapped to their one-line descriptions, sorted by name."""
    return {name: _REGISTRY[name].description for name in sorted(_REGISTRY)}


def strategy_class(name: str) -> type[Strategy]:
    """The class registered as ``name`` (importing its library); unknown names list the known
    ones."""
    entry = _REGISTRY.get(name)
    if entry is None:
        raise StrategyError(f"unknown strategy {name!r}; known: {', '.join(list_strategies())}")
    return entry.loader()


def create_strategy(
    name: str,
    dimensions: Sequence[Dimension],
    directions: Sequence[str],
    seed: int,
    **params: Any,
) -> Strategy:
    """Build the strategy registered as ``name``; unknown names list the known ones."""
    return strategy_class(name)(dimensions, directions, seed, **params)


_BUILTINS = [
    ("random", "Uniform random sampling", "strategies.random_search", "RandomSearch"),
    (
        "grid",
        "Every architecture in a fixed order, then seeded shuffles",
        "strategies.grid",
        "GridSearch",
    ),
    (
        "optuna.tpe",
        "Optuna's Tree-structured Parzen Estimator (TPESampler)",
        "strategies.optuna_samplers",
        "OptunaTPE",
    ),
    (
        "optuna.nsga2",
        "Optuna's NSGA-II genetic algorithm, multi-objective (NSGAIISampler)",
        "strategies.optuna_samplers",
        "OptunaNSGA2",
    ),
    ("optuna.random", "Optuna's RandomSampler", "strategies.optuna_samplers", "OptunaRandom"),
    (
        "optuna.qmc",
        "Optuna's scrambled Sobol quasi-Monte Carlo (QMCSampler) over choice indices",
        "strategies.optuna_samplers",
        "OptunaQMC",
    ),
    (
        "optuna.cmaes",
        "Optuna's CMA-ES (CmaEsSampler) over choice indices, single objective",
        "strategies.optuna_samplers",
        "OptunaCMAES",
    ),
    (
        "nni.regularized_evolution",
        "NNI's RegularizedEvolution (aging evolution) NAS strategy",
        "strategies.nni_strategies",
        "NniRegularizedEvolution",
    ),
    ("nni.tpe", "NNI's TpeTuner", "strategies.nni_tuners", "NniTpe"),
    ("nni.random", "NNI's RandomTuner", "strategies.nni_tuners", "NniRandom"),
    (
        "nni.evolution",
        "NNI's EvolutionTuner (tournament of two, one-gene mutation)",
        "strategies.nni_tuners",
        "NniEvolution",
    ),
    (
        "nni.grid",
        "NNI's GridSearchTuner, then seeded random once exhausted",
        "strategies.nni_tuners",
        "NniGrid",
    ),
]

for _name, _description, _module, _attr in _BUILTINS:
    register_strategy(_name, _description, lazy(_module, _attr))
