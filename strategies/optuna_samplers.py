"""Optuna samplers behind the strategy interface.

Each strategy owns an in-memory ``optuna.Study`` (exposed as :attr:`OptunaStrategy.study`)
that holds exactly the finished trials it was given: ``add`` puts them in with one
``study.add_trials`` of ``optuna.trial.create_trial`` (no ask per stored trial). ``ask(seed)``
gives the study a fresh sampler seeded by the ask's seed, calls ``study.ask()`` and one
suggestion per dimension, keeps the trial's system attributes (NSGA-II's generation, CMA-ES's
optimizer, TPE's relative params) as the proposal's memo, and takes the running trial back
out of the study, so that an unevaluated proposal leaves no trace. When the proposal is
evaluated, ``add`` puts it in as a finished trial with those attributes; so a study rebuilt
from the store is the study the uninterrupted run had. Counters the sampler keeps in the
study's attributes (QMC's sample index) travel in the memo too; caches that Optuna recomputes
from the trials (NSGA-II's parent population, keyed by in-memory trial ids) do not.

TPE, NSGA-II and random suggest each dimension as a categorical over its choices. QMC needs
numeric parameters, so it suggests the *index* of the choice (``suggest_int(name, 0, n - 1)``),
which also lets it exploit the order of the choices (small to large); its sampler keeps the
search's seed (it fixes the scrambled sequence) and moves along the sequence by the counter.

Optuna's logging is set to WARNING and its ``ExperimentalWarning`` is silenced around every call.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal

import annotated_types as at

from plumbing import require
from search_spaces.dimensions import Architecture, Dimension

from .base import Result, Strategy
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


class _Storage(optuna.storages.InMemoryStorage):
    """Optuna's in-memory storage, able to take back the trial that was just asked."""

    def drop_last_trial(self, trial_id: int) -> None:
        # Reads InMemoryStorage's private layout (optuna 4-5): one list of trials per study.
        with self._lock:
            study_id, number = self._trial_id_to_study_id_and_number.pop(trial_id)
            trials = self._studies[study_id].trials
            if number != len(trials) - 1 or trial_id != self._max_trial_id:
                raise StrategyError("only the trial asked last can be taken back")
            trials.pop()
            self._max_trial_id -= 1


_CACHES = ("parent_population",)  # study attributes Optuna recomputes from the trials


def _forward(current: Any, value: Any) -> Any:
    """A memo's study attribute: counters only move forward (workers' memos arrive in any
    order); anything else is the latest."""
    if isinstance(value, int | float) and isinstance(current, int | float):
        return max(value, current)
    return value


class OptunaStrategy(Strategy):
    """Base of the Optuna adapters: a sampler class, its defaults, and how to encode choices."""

    sampler_cls: ClassVar[Callable[..., optuna.samplers.BaseSampler]]
    sampler_defaults: ClassVar[dict[str, Any]] = {}
    # Params take the types of the sampler's annotations; ``param_types`` refines some of them.
    param_types: ClassVar[dict[str, Any] | None] = {}
    by_index: ClassVar[bool] = False  # suggest choice indices (numeric) instead of categoricals
    fixed_seed: ClassVar[bool] = False  # the sampler keeps the search's seed (QMC's sequence)

    def __init__(
        self, dimensions: Sequence[Dimension], directions: Sequence[str], seed: int, **params: Any
    ) -> None:
        super().__init__(dimensions, directions, seed)
        accepted = inspect.signature(self.sampler_cls).parameters
        defaults = {k: p.default for k, p in accepted.items() if k != "seed"}
        self.resolve_params(params, defaults)
        self._params = {**self.sampler_defaults, **params}
        try:
            sampler = self._sampler(seed)
        except (TypeError, ValueError) as exc:
            raise StrategyError(f"strategy {self.name!r}: bad params {params}: {exc}") from exc
        study_directions = [optuna.study.StudyDirection[d.upper()] for d in self.directions]
        self._storage = _Storage()
        self._study = optuna.create_study(
            storage=self._storage, directions=study_directions, sampler=sampler
        )
        self._distributions = {d.name: self._distribution(d) for d in self.dimensions}
        self._memo: dict[str, Any] | None = None

    def _sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        with _quiet():
            return self.sampler_cls(seed=seed, **self._params)

    def _distribution(self, dim: Dimension) -> optuna.distributions.BaseDistribution:
        if self.by_index:
            return optuna.distributions.IntDistribution(0, len(dim.choices) - 1)
        return optuna.distributions.CategoricalDistribution(list(dim.choices))

    @property
    def study(self) -> optuna.Study:
        """The in-memory study holding every finished trial added so far."""
        return self._study

    def _suggest(self, trial: optuna.Trial, dim: Dimension) -> Any:
        if self.by_index:
            return dim.choices[trial.suggest_int(dim.name, 0, len(dim.choices) - 1)]
        return trial.suggest_categorical(dim.name, list(dim.choices))

    def _study_attrs(self) -> dict[str, Any]:
        return self._storage.get_study_system_attrs(self._study._study_id)

    def ask(self, seed: int) -> Architecture:
        before = self._study_attrs()
        self._study.sampler = self._sampler(self.seed if self.fixed_seed else seed)
        with _quiet():
            trial = self._study.ask()
            arch = self.decode({d.name: self._suggest(trial, d) for d in self.dimensions})
        asked = self._storage.get_trial(trial._trial_id)
        self._storage.drop_last_trial(trial._trial_id)
        changed = {
            key: value
            for key, value in self._study_attrs().items()
            if before.get(key) != value and not any(c in key for c in _CACHES)
        }
        self._memo = {"trial": dict(asked.system_attrs), "study": changed}
        return dict(arch)

    def memo(self) -> dict[str, Any] | None:
        return self._memo

    def add(self, results: Sequence[Result]) -> None:
        trials = []
        counters = self._study_attrs()
        changed: dict[str, Any] = {}
        for result in results:
            values = self.check_values(result.values)
            memo = result.memo or {}
            for key, value in memo.get("study", {}).items():
                changed[key] = _forward(changed.get(key, counters.get(key)), value)
            trials.append(
                optuna.trial.create_trial(
                    params=self._params_of(result.arch),
                    distributions=self._distributions,
                    values=values,
                    state=TrialState.FAIL if values is None else TrialState.COMPLETE,
                    system_attrs=memo.get("trial", {}) if result.proposed else {},
                )
            )
        for key, value in changed.items():
            self._storage.set_study_system_attr(self._study._study_id, key, value)
        with _quiet():
            self._study.add_trials(trials)

    def _params_of(self, arch: Architecture) -> dict[str, Any]:
        if self.by_index:
            return {d.name: d.index(arch[d.name]) for d in self.dimensions}
        return {d.name: arch[d.name] for d in self.dimensions}


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
    fixed_seed = True


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
        # CmaEsSampler imports cmaes lazily, at the first ask: fail now, with the hint
        require("cmaes", "optuna.cmaes needs the 'cmaes' package", "cmaes", MissingDependencyError)
        self._objectives = len(directions)
        super().__init__(dimensions, directions[:1], seed, **params)

    def set_problem(
        self,
        constraints: Mapping[str, float] | None = None,
        objectives: Sequence[str] | None = None,
        canonical: Callable[[Architecture], Architecture] | None = None,
    ) -> None:
        """As for any strategy, with the metric of the first objective only: the one it
        optimises (the others were checked against the directions it was given)."""
        names = list(objectives or ())
        if names and len(names) != self._objectives:
            raise StrategyError(
                f"{len(names)} objective metric(s) for {self._objectives} direction(s)"
            )
        super().set_problem(constraints, names[:1] or None, canonical)

    def add(self, results: Sequence[Result]) -> None:
        firsts = []
        for result in results:
            values = result.values
            if values is not None and len(values) != self._objectives:
                raise StrategyError(
                    f"a result has {len(values)} value(s) for {self._objectives} direction(s)"
                )
            first = None if values is None else [float(values[0])]
            firsts.append(dataclasses.replace(result, values=first))
        super().add(firsts)
