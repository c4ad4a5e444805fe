"""NNI's HPO tuners (``nni.algorithms.hpo``) behind the strategy interface.

Each dimension becomes a ``{"_type": "choice", "_value": [...]}`` entry of the tuner's search
space. ``ask`` is ``generate_parameters(parameter_id)`` with ids 0, 1, 2 ...; ``tell`` is
``receive_trial_result(parameter_id, params, values[0])`` followed by
``trial_end(parameter_id, True)``. These tuners optimise one objective: the first value, with
``optimize_mode`` taken from the first direction.

Failures (``tell(arch, None)``) use NNI's own failure path, ``trial_end(parameter_id, False)``
without a result: TPE forgets the candidate (its deduplicator still never proposes it again),
the evolution tuner replaces it with a fresh random individual, random and grid ignore it.

Determinism: TPE and random get ``seed`` directly. ``EvolutionTuner`` takes no seed, builds its
``RandomState`` from OS entropy and shuffles with Python's global ``random``; the adapter
re-seeds its ``RandomState`` and runs every tuner call with private, seeded states of the global
generators (:class:`strategies._nni.SeededGlobals`), leaving the caller's global RNGs untouched.

When a tuner has proposed every architecture it raises ``NoMoreTrialError``; the adapter then
answers uniformly at random (from ``random.Random(seed)``) and does not tell the tuner about
those extra candidates.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

import annotated_types as at
from typing_extensions import TypedDict

from search_spaces.dimensions import Architecture, Dimension

from ._nni import SeededGlobals, import_nni, numpy_seed
from .base import Strategy
from .errors import StrategyError
from .params import NonNegativeFloat, PositiveFloat, PositiveInt

(_nni, _tpe, _random, _evolution, _grid) = import_nni(
    "nni",
    "nni.algorithms.hpo.tpe_tuner",
    "nni.algorithms.hpo.random_tuner",
    "nni.algorithms.hpo.evolution_tuner",
    "nni.algorithms.hpo.gridsearch_tuner",
)


class NniTunerStrategy(Strategy):
    """Base of the NNI tuner adapters; subclasses say how to build their tuner."""

    defaults: ClassVar[dict[str, Any]] = {}
    param_types: ClassVar[dict[str, Any] | None] = {}

    def __init__(
        self, dimensions: Sequence[Dimension], directions: Sequence[str], seed: int, **params: Any
    ) -> None:
        super().__init__(dimensions, directions, seed)
        kwargs = self.resolve_params(params, self.defaults)
        self._globals = SeededGlobals(seed)
        self._fallback = random.Random(seed)
        space = {d.name: {"_type": "choice", "_value": list(d.choices)} for d in self.dimensions}
        try:
            with self._globals.active():
                self._tuner = self.make_tuner(kwargs)
                self._tuner.update_search_space(space)
        except (TypeError, ValueError) as exc:
            raise StrategyError(f"strategy {self.name!r}: bad params {params}: {exc}") from exc
        self._next_id = 0
        # (parameter id or None when the tuner was exhausted, raw params, architecture)
        self._pending: tuple[int | None, Any, Architecture] | None = None

    @abc.abstractmethod
    def make_tuner(self, params: dict[str, Any]) -> Any:
        """Build the NNI tuner from the resolved params."""

    @property
    def optimize_mode(self) -> str:
        return self.directions[0]

    def ask(self) -> Architecture:
        parameter_id: int | None = self._next_id
        self._next_id += 1
        try:
            with self._globals.active():
                raw = self._tuner.generate_parameters(parameter_id)
        except _nni.NoMoreTrialError:
            parameter_id = None
            raw = {d.name: self._fallback.choice(d.choices) for d in self.dimensions}
        arch = self.decode(raw)
        self._pending = (parameter_id, raw, arch)
        return dict(arch)

    def tell(self, arch: Architecture, values: Sequence[float] | None) -> None:
        self.check_told(arch, self._pending[2] if self._pending else None)
        assert self._pending is not None
        parameter_id, raw, _ = self._pending
        checked = self.check_values(values)
        self._pending = None
        if parameter_id is None:
            return
        with self._globals.active():
            if checked is not None:
                self._tuner.receive_trial_result(parameter_id, raw, checked[0])
            self._tuner.trial_end(parameter_id, checked is not None)


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


class NniRandom(NniTunerStrategy):
    """NNI's ``RandomTuner`` (it never proposes an architecture twice).

    >>> s = create_strategy("nni.random", dims, ["minimize"], seed=0)
    """

    name = "nni.random"

    def make_tuner(self, params: dict[str, Any]) -> Any:
        return _random.RandomTuner(seed=numpy_seed(self.seed), optimize_mode=self.optimize_mode)


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

    def make_tuner(self, params: dict[str, Any]) -> Any:
        return _SeededEvolutionTuner(
            numpy_seed(self.seed), optimize_mode=self.optimize_mode, **params
        )


class NniGrid(NniTunerStrategy):
    """NNI's ``GridSearchTuner``: the seed only matters once the grid is exhausted.

    >>> s = create_strategy("nni.grid", dims, ["maximize"], seed=0)
    """

    name = "nni.grid"

    def make_tuner(self, params: dict[str, Any]) -> Any:
        return _grid.GridSearchTuner(optimize_mode=self.optimize_mode)
