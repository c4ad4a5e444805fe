"""Optuna samplers behind the strategy interface.

Each strategy owns an in-memory ``optuna.Study`` (exposed as :attr:`OptunaStrategy.study`, so
nasprune can copy it into an RDB storage for optuna-dashboard). ``ask`` is ``study.ask()``
followed by one suggestion per dimension; ``tell`` is ``study.tell`` with the values, or with
``TrialState.FAIL`` for ``None``. Params pass through to the sampler's constructor; the seed is
always the strategy's seed.

TPE, NSGA-II and random suggest each dimension as a categorical over its choices. QMC needs
numeric parameters, so it suggests the *index* of the choice (``suggest_int(name, 0, n - 1)``),
which also lets it exploit the order of the choices (small to large).
CMA-ES is not offered: Optuna's ``CmaEsSampler`` needs the ``cmaes`` package, which nasprune
does not depend on.

Optuna's logging is set to WARNING and its ``ExperimentalWarning`` is silenced around every call.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, ClassVar, Literal

import annotated_types as at

from search_spaces.dimensions import Architecture, Dimension

from .base import Strategy
from .errors import MissingDependencyError, StrategyError
from .params import NonNegativeInt, PositiveFloat, PositiveInt, Probability

try:
    import optuna
    from optuna.trial import TrialState
except ImportError as exc:  # pragma: no cover - optuna is a dependency of nasprune
    raise MissingDependencyError("Optuna strategies need optuna: pip install 'optuna>=4'") from exc

optuna.logging.set_verbosity(optuna.logging.WARNING)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


class OptunaStrategy(Strategy):
    """Base of the Optuna adapters: a sampler class, its defaults, and how to encode choices."""

    sampler_cls: ClassVar[Callable[..., optuna.samplers.BaseSampler]]
    sampler_defaults: ClassVar[dict[str, Any]] = {}
    # Params take the types of the sampler's annotations; ``param_types`` refines some of them.
    param_types: ClassVar[dict[str, Any] | None] = {}
    by_index: ClassVar[bool] = False  # suggest choice indices (numeric) instead of categoricals

    def __init__(
        self, dimensions: Sequence[Dimension], directions: Sequence[str], seed: int, **params: Any
    ) -> None:
        super().__init__(dimensions, directions, seed)
        accepted = inspect.signature(self.sampler_cls).parameters
        defaults = {k: p.default for k, p in accepted.items() if k != "seed"}
        self.resolve_params(params, defaults)
        try:
            with _quiet():
                sampler = self.sampler_cls(seed=seed, **{**self.sampler_defaults, **params})
        except (TypeError, ValueError) as exc:
            raise StrategyError(f"strategy {self.name!r}: bad params {params}: {exc}") from exc
        study_directions = [optuna.study.StudyDirection[d.upper()] for d in self.directions]
        self._study = optuna.create_study(directions=study_directions, sampler=sampler)
        self._pending: tuple[optuna.Trial, Architecture] | None = None

    @property
    def study(self) -> optuna.Study:
        """The in-memory study holding every asked and told trial."""
        return self._study

    def _suggest(self, trial: optuna.Trial, dim: Dimension) -> Any:
        if self.by_index:
            return dim.choices[trial.suggest_int(dim.name, 0, len(dim.choices) - 1)]
        return trial.suggest_categorical(dim.name, list(dim.choices))

    def ask(self) -> Architecture:
        with _quiet():
            trial = self._study.ask()
            arch = self.decode({d.name: self._suggest(trial, d) for d in self.dimensions})
        self._pending = (trial, arch)
        return dict(arch)

    def tell(self, arch: Architecture, values: Sequence[float] | None) -> None:
        self.check_told(arch, self._pending[1] if self._pending else None)
        assert self._pending is not None
        trial = self._pending[0]
        checked = self.check_values(values)
        with _quiet():
            if checked is None:
                self._study.tell(trial, state=TrialState.FAIL)
            else:
                self._study.tell(trial, checked)
        self._pending = None

    def observe(self, arch: Architecture, values: Sequence[float] | None) -> None:
        """Add ``arch`` and its result to the study as a finished trial."""
        checked = self.check_values(values)
        params: dict[str, Any] = {}
        distributions: dict[str, optuna.distributions.BaseDistribution] = {}
        for dim in self.dimensions:
            if self.by_index:
                params[dim.name] = dim.index(arch[dim.name])
                distributions[dim.name] = optuna.distributions.IntDistribution(
                    0, len(dim.choices) - 1
                )
            else:
                params[dim.name] = arch[dim.name]
                distributions[dim.name] = optuna.distributions.CategoricalDistribution(
                    list(dim.choices)
                )
        state = TrialState.FAIL if checked is None else TrialState.COMPLETE
        with _quiet():
            self._study.add_trial(
                optuna.trial.create_trial(
                    params=params, distributions=distributions, values=checked, state=state
                )
            )


class OptunaTPE(OptunaStrategy):
    """``optuna.samplers.TPESampler`` with Optuna's defaults (``n_startup_trials=10`` ...).

    >>> s = create_strategy("optuna.tpe", dims, ["maximize"], seed=0, n_startup_trials=5)
    """

    name = "optuna.tpe"
    sampler_cls = optuna.samplers.TPESampler
    param_types: ClassVar[dict[str, Any] | None] = {
        "n_startup_trials": NonNegativeInt,
        "n_ei_candidates": PositiveInt,
    }


class OptunaNSGA2(OptunaStrategy):
    """``optuna.samplers.NSGAIISampler``; ``population_size`` defaults to Optuna's 50.

    >>> s = create_strategy("optuna.nsga2", dims, ["maximize", "minimize"], 0, population_size=20)
    """

    name = "optuna.nsga2"
    sampler_cls = optuna.samplers.NSGAIISampler
    param_types: ClassVar[dict[str, Any] | None] = {
        "population_size": Annotated[int, at.Ge(2)],
        "mutation_prob": Probability | None,
        "crossover_prob": Probability,
        "swapping_prob": Probability,
    }


class OptunaRandom(OptunaStrategy):
    """``optuna.samplers.RandomSampler``: Optuna's uniform baseline.

    >>> s = create_strategy("optuna.random", dims, ["minimize"], seed=0)
    """

    name = "optuna.random"
    sampler_cls = optuna.samplers.RandomSampler


class OptunaQMC(OptunaStrategy):
    """``optuna.samplers.QMCSampler`` (Sobol, ``scramble=True``) over choice indices.

    Its first trial is drawn by the seeded independent sampler, as Optuna does; the warning
    Optuna would log about it is off (``warn_independent_sampling=False``).

    >>> s = create_strategy("optuna.qmc", dims, ["maximize"], seed=0, qmc_type="halton")
    """

    name = "optuna.qmc"
    sampler_cls = optuna.samplers.QMCSampler
    param_types: ClassVar[dict[str, Any] | None] = {"qmc_type": Literal["sobol", "halton"]}
    sampler_defaults: ClassVar[dict[str, Any]] = {
        "scramble": True,
        "warn_independent_sampling": False,
    }
    by_index = True


class OptunaCMAES(OptunaStrategy):
    """``optuna.samplers.CmaEsSampler`` over choice indices (needs the ``cmaes`` package).

    CMA-ES models one objective: with several, it optimises the first. Until it has seen
    ``n_startup_trials`` (default 1) trials it samples independently, seeded, with the warning
    Optuna would log about it turned off.

    >>> s = create_strategy("optuna.cmaes", dims, ["maximize"], seed=0, n_startup_trials=5)
    """

    name = "optuna.cmaes"
    sampler_cls = optuna.samplers.CmaEsSampler
    param_types: ClassVar[dict[str, Any] | None] = {
        "n_startup_trials": NonNegativeInt,
        "sigma0": PositiveFloat | None,
        "popsize": Annotated[int, at.Ge(2)] | None,
    }
    sampler_defaults: ClassVar[dict[str, Any]] = {"warn_independent_sampling": False}
    by_index = True

    def __init__(
        self, dimensions: Sequence[Dimension], directions: Sequence[str], seed: int, **params: Any
    ) -> None:
        try:
            import cmaes  # noqa: F401  (CmaEsSampler imports it lazily, at the first ask)
        except ImportError as exc:
            raise MissingDependencyError(
                "optuna.cmaes needs the 'cmaes' package: pip install cmaes"
            ) from exc
        self._objectives = len(directions)
        super().__init__(dimensions, directions[:1], seed, **params)

    def _first(self, values: Sequence[float] | None) -> list[float] | None:
        if values is None:
            return None
        if len(values) != self._objectives:
            raise StrategyError(
                f"tell() got {len(values)} value(s) for {self._objectives} direction(s)"
            )
        return [float(values[0])]

    def tell(self, arch: Architecture, values: Sequence[float] | None) -> None:
        super().tell(arch, self._first(values))

    def observe(self, arch: Architecture, values: Sequence[float] | None) -> None:
        super().observe(arch, self._first(values))
