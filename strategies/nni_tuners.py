"""NNI's HPO tuners (``nni.algorithms.hpo``) behind the strategy interface.

Each dimension becomes a ``{"_type": "choice", "_value": [...]}`` entry of the tuner's search
space. These tuners optimise one objective: the first value, with ``optimize_mode`` taken from
the first direction.

Rebuilt from the history in one pass, through NNI's own resume path where it has one:

* ``nni.tpe``: ``import_data`` of the trials with a value (NNI's "resume an experiment");
  failed ones only enter its deduplication history, as NNI's own failure path leaves them.
* ``nni.random``: the deduplication history.
* ``nni.grid``: ``import_data``, which marks grid points done; the grid walks past them.
* ``nni.evolution``: ``EvolutionTuner.import_data`` does nothing, so the adapter gives it a
  population at each ask: the seeded initial individuals not evaluated yet, then the last
  ``population_size`` results. NNI's tournament of two then mutates one gene, as it does.
  (NNI itself removes the loser of each tournament for good; a history-defined population
  keeps the newest results instead, as aging evolution does.)

``ask(seed)`` is ``generate_parameters`` with the tuner's generator, and private seeded
states of Python's and numpy's global generators (:class:`strategies._nni.SeededGlobals`),
drawn from the ask's seed; the caller's global generators are left untouched. The parameters
are then taken back out of the tuner's running set and its deduplication history (they come
back with their result). The traces an ask leaves are cursors that only move forward: the
grid tuner's position, and the grid NNI's deduplicator falls back on once it meets a
duplicate. When a tuner has proposed every
architecture (``NoMoreTrialError``), the adapter answers uniformly at random.
"""

from __future__ import annotations

import abc
import random
from collections import deque
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

import annotated_types as at
import numpy as np
from typing_extensions import TypedDict

from search_spaces.dimensions import Architecture, Dimension

from ._nni import SeededGlobals, import_nni, numpy_seed
from .base import Result, Strategy
from .errors import StrategyError
from .params import NonNegativeFloat, PositiveFloat, PositiveInt

(_nni, _formatting, _tpe, _random, _evolution, _grid) = import_nni(
    "nni",
    "nni.common.hpo_utils.formatting",
    "nni.algorithms.hpo.tpe_tuner",
    "nni.algorithms.hpo.random_tuner",
    "nni.algorithms.hpo.evolution_tuner",
    "nni.algorithms.hpo.gridsearch_tuner",
)


class NniTunerStrategy(Strategy):
    """Base of the NNI tuner adapters; subclasses say how to build and feed their tuner."""

    defaults: ClassVar[dict[str, Any]] = {}
    param_types: ClassVar[dict[str, Any] | None] = {}

    def __init__(
        self, dimensions: Sequence[Dimension], directions: Sequence[str], seed: int, **params: Any
    ) -> None:
        super().__init__(dimensions, directions, seed)
        kwargs = self.resolve_params(params, self.defaults)
        space = {d.name: {"_type": "choice", "_value": list(d.choices)} for d in self.dimensions}
        try:
            with SeededGlobals(seed).active():
                self._tuner = self.make_tuner(kwargs)
                self._tuner.update_search_space(space)
        except (TypeError, ValueError) as exc:
            raise StrategyError(f"strategy {self.name!r}: bad params {params}: {exc}") from exc
        self._next_id = 0

    @abc.abstractmethod
    def make_tuner(self, params: dict[str, Any]) -> Any:
        """Build the NNI tuner from the resolved params."""

    def reseed(self, seed: int) -> None:
        """Give the tuner a generator seeded by the ask (tuners that own one override it)."""

    def forget(self, parameter_id: int, raw: dict[str, Any]) -> None:
        """Drop the tuner's record of a generated, not yet evaluated, parameter set: by
        default its entry in the deduplication history (it comes back with its result)."""
        dedup = getattr(self._tuner, "dedup", None)
        if dedup is not None:
            dedup._history.discard(_nni.dump(raw, sort_keys=True))

    @property
    def optimize_mode(self) -> str:
        return self.directions[0]

    def ask(self, seed: int) -> Architecture:
        parameter_id, self._next_id = self._next_id, self._next_id + 1
        self.reseed(seed)
        try:
            with SeededGlobals(seed).active():
                raw = self._tuner.generate_parameters(parameter_id)
            self.forget(parameter_id, raw)
        except _nni.NoMoreTrialError:
            rng = random.Random(seed)
            raw = {d.name: rng.choice(d.choices) for d in self.dimensions}
        return dict(self.decode(raw))

    def _formatted(self, arch: Architecture) -> Any:
        return _formatting.format_parameters(
            {d.name: arch[d.name] for d in self.dimensions}, self._tuner.space
        )


class TpeArgs(TypedDict, total=False):
    """The fields of NNI's ``TpeArguments`` (each optional), with the values NNI's TPE runs on:
    fewer than two startup jobs, for one, break its first model-based suggestion."""

    constant_liar_type: Literal["best", "worst", "mean"] | None
    n_startup_jobs: Annotated[int, at.Ge(2)]
    n_ei_candidates: PositiveInt
    linear_forgetting: PositiveInt
    prior_weight: NonNegativeFloat
    gamma: PositiveFloat


class NniTpe(NniTunerStrategy):
    """NNI's ``TpeTuner``; ``tpe_args`` (a dict) passes NNI's TPE arguments through.

    >>> s = create_strategy("nni.tpe", dims, ["maximize"], seed=0, tpe_args={"n_startup_jobs": 10})
    """

    name = "nni.tpe"
    defaults: ClassVar[dict[str, Any]] = {"tpe_args": None}
    param_types: ClassVar[dict[str, Any] | None] = {"tpe_args": TpeArgs | None}

    def make_tuner(self, params: dict[str, Any]) -> Any:
        return _tpe.TpeTuner(optimize_mode=self.optimize_mode, seed=numpy_seed(self.seed), **params)

    def reseed(self, seed: int) -> None:
        self._tuner.rng = np.random.default_rng(seed)

    def forget(self, parameter_id: int, raw: dict[str, Any]) -> None:
        super().forget(parameter_id, raw)
        self._tuner._params.pop(parameter_id, None)
        self._tuner._running_params.pop(parameter_id, None)

    def add(self, results: Sequence[Result]) -> None:
        data = []
        for result in results:
            values = self.check_values(result.values)
            arch = {d.name: result.arch[d.name] for d in self.dimensions}
            if values is None:
                self._tuner.dedup.add_history(self._formatted(arch))
            else:
                data.append({"parameter": arch, "value": values[0]})
        with SeededGlobals(self.seed).active():
            self._tuner.import_data(data)


class NniRandom(NniTunerStrategy):
    """NNI's ``RandomTuner`` (it never proposes an architecture twice).

    >>> s = create_strategy("nni.random", dims, ["minimize"], seed=0)
    """

    name = "nni.random"

    def make_tuner(self, params: dict[str, Any]) -> Any:
        return _random.RandomTuner(seed=numpy_seed(self.seed), optimize_mode=self.optimize_mode)

    def reseed(self, seed: int) -> None:
        self._tuner.rng = np.random.default_rng(seed)

    def add(self, results: Sequence[Result]) -> None:
        super().add(results)
        for result in results:
            self._tuner.dedup.add_history(self._formatted(result.arch))


class _SeededEvolutionTuner(_evolution.EvolutionTuner):  # type: ignore[misc, name-defined]
    """``EvolutionTuner`` whose initial population comes from ``RandomState(seed)``."""

    def __init__(self, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._seed = seed

    def update_search_space(self, search_space: dict[str, Any]) -> None:
        super().update_search_space(search_space)  # draws a population from OS entropy ...
        self.random_state = _evolution.np.random.RandomState(self._seed)
        self.population: list[Any] = []  # ... which is replaced by a seeded one
        for _ in range(self.population_size):
            self._random_generate_individual()


class NniEvolution(NniTunerStrategy):
    """NNI's ``EvolutionTuner``; ``population_size`` defaults to NNI's 32.

    >>> s = create_strategy("nni.evolution", dims, ["maximize"], seed=0, population_size=16)
    """

    name = "nni.evolution"
    defaults: ClassVar[dict[str, Any]] = {"population_size": 32}
    param_types: ClassVar[dict[str, Any] | None] = {"population_size": PositiveInt}

    def __init__(
        self, dimensions: Sequence[Dimension], directions: Sequence[str], seed: int, **params: Any
    ) -> None:
        super().__init__(dimensions, directions, seed, **params)
        self._initial = [individual.config for individual in self._tuner.population]
        self._seen: set[tuple[Any, ...]] = set()
        self._results: deque[Any] = deque(maxlen=self._tuner.population_size)

    def make_tuner(self, params: dict[str, Any]) -> Any:
        return _SeededEvolutionTuner(
            numpy_seed(self.seed), optimize_mode=self.optimize_mode, **params
        )

    def _key(self, config: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(config[d.name]["_index"] for d in self.dimensions)

    def _config(self, arch: Architecture) -> dict[str, Any]:
        return {
            d.name: {"_index": d.index(arch[d.name]), "_value": arch[d.name]}
            for d in self.dimensions
        }

    def add(self, results: Sequence[Result]) -> None:
        for result in results:
            values = self.check_values(result.values)
            config = self._config(result.arch)
            self._seen.add(self._key(config))
            if values is not None:
                self._results.append(
                    _evolution.Individual(config=config, result=self.score(values))
                )

    def reseed(self, seed: int) -> None:
        tuner = self._tuner
        tuner.random_state = np.random.RandomState(numpy_seed(seed))
        fresh = [c for c in self._initial if self._key(c) not in self._seen]
        tuner.population = [_evolution.Individual(config=c) for c in fresh] + [
            _evolution.Individual(config=i.config, result=i.result) for i in self._results
        ]
        tuner.running_trials.clear()
        tuner.num_running_trials = 0


class NniGrid(NniTunerStrategy):
    """NNI's ``GridSearchTuner``: the seed only matters once the grid is exhausted.

    >>> s = create_strategy("nni.grid", dims, ["maximize"], seed=0)
    """

    name = "nni.grid"

    def make_tuner(self, params: dict[str, Any]) -> Any:
        return _grid.GridSearchTuner(optimize_mode=self.optimize_mode)

    def add(self, results: Sequence[Result]) -> None:
        super().add(results)
        self._tuner.import_data([{"parameter": dict(r.arch)} for r in results])
