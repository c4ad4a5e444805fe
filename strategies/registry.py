"""Registry of strategies by short name, and the one factory :func:`create_strategy`.

Entries hold a *loader*: a zero-argument callable that returns the strategy class. Loaders of
the adapters import their module (and so Optuna or NNI) only when such a strategy is created,
so listing the strategies, or importing :mod:`strategies`, stays instant. The registry is a
:class:`plumbing.Registry`: a name taken by another class is refused, naming the holder.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

from plumbing import Registry
from search_spaces.dimensions import Architecture, Dimension

from .base import Strategy
from .errors import StrategyError

Loader = Callable[[], type[Strategy]]


@dataclass(frozen=True)
class _Entry:
    """A registered strategy: its one-line description and how to load its class."""

    description: str
    loader: Loader
    source: str  # the class the loader returns, "module.Class"

    def __repr__(self) -> str:  # the registry's label: one source is one strategy
        return self.source


@dataclass(frozen=True)
class _Lazy:
    """A loader that imports ``module`` and returns its ``attr``."""

    module: str
    attr: str

    def __call__(self) -> type[Strategy]:
        cls: type[Strategy] = getattr(importlib.import_module(self.module), self.attr)
        return cls


_REGISTRY: Registry[_Entry] = Registry("strategy", StrategyError)


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

    A name already taken by another class is refused with a :class:`StrategyError` naming it;
    registering the same class again (its module imported twice) changes nothing.
    """
    if loader is not None:
        _REGISTRY.add(name, _Entry(description, loader, _source(loader)))
        return loader

    def decorate(cls: type[Strategy]) -> type[Strategy]:
        _REGISTRY.add(name, _Entry(description, lambda: cls, _source(cls)))
        return cls

    return decorate


def lazy(module: str, attr: str) -> Loader:
    """A loader that imports ``module`` and returns its ``attr`` when called."""
    return _Lazy(module, attr)


def _source(loaded: object) -> str:
    """What a strategy entry holds, "module.Name": a lazy loader's target, else the class's or
    loader function's qualified name (a lambda's or a local one's repr)."""
    if isinstance(loaded, _Lazy):
        return f"{loaded.module}.{loaded.attr}"
    module, qualname = getattr(loaded, "__module__", None), getattr(loaded, "__qualname__", "")
    if module and qualname and "<lambda>" not in qualname and "<locals>" not in qualname:
        return f"{module}.{qualname}"
    return repr(loaded)


def list_strategies() -> dict[str, str]:
    """Registered names mapped to their one-line descriptions, sorted by name."""
    return {name: _REGISTRY.get(name).description for name in _REGISTRY.names()}


def strategy_class(name: str) -> type[Strategy]:
    """The class registered as ``name`` (importing its library); unknown names list the known
    ones."""
    return _REGISTRY.get(name).loader()


def create_strategy(
    name: str,
    dimensions: Sequence[Dimension],
    directions: Sequence[str],
    seed: int,
    *,
    constraints: Mapping[str, float] | None = None,
    objectives: Sequence[str] | None = None,
    canonical: Callable[[Architecture], Architecture] | None = None,
    **params: Any,
) -> Strategy:
    """Build the strategy registered as ``name``; unknown names list the known ones.

    ``constraints`` (metric -> the most it may be), ``objectives`` (the metric of each
    direction) and ``canonical`` go to :meth:`Strategy.set_problem`; ``params`` to the class.
    """
    strategy = strategy_class(name)(dimensions, directions, seed, **params)
    try:
        strategy.set_problem(constraints, objectives, canonical)
    except StrategyError:
        strategy.close()
        raise
    return strategy


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
    (
        "rl",
        "REINFORCE controller: a categorical policy per dimension, rewarded under the limits",
        "strategies.rl",
        "Reinforce",
    ),
    (
        "uniform",
        "Width multiplier baseline: one keep ratio for every width, the rest at its largest",
        "strategies.uniform",
        "UniformWidth",
    ),
    (
        "greedy",
        "NetAdapt-style greedy shrinking: the least accuracy lost per millisecond saved",
        "strategies.greedy",
        "GreedyShrink",
    ),
]


def _register_builtins() -> None:
    """Register the strategies that ship with nasprune (names only: nothing heavy loads)."""
    for name, description, module, attr in _BUILTINS:
        register_strategy(name, description, lazy(module, attr))


_register_builtins()
