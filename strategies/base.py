"""The one extension point of this room: a strategy that proposes architectures from a history."""

from __future__ import annotations

import abc
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from search_spaces.dimensions import Architecture, Dimension

from .errors import StrategyError

DIRECTIONS = ("maximize", "minimize")

Memo = dict[str, Any]  # JSON a strategy attaches to a proposal; stored with the trial


@dataclass(frozen=True)
class Result:
    """A finished trial, as a strategy learns it.

    ``values`` holds one float per objective, or None when the trial failed, was screened out
    or broke a constraint. ``memo`` is what :meth:`Strategy.memo` returned for the proposal,
    and ``proposed`` says whether this strategy proposed ``arch`` (False: the search loop chose
    it, or another strategy did). ``metrics`` holds what the trial measured, whatever the
    objectives and constraints (``accuracy``, ``loss``, ``latency_ms``, ``params``, ``macs`` ...
    as far as it got: a trial screened out has ``params`` and ``macs`` only); None when unknown.
    """

    arch: Architecture
    values: Sequence[float] | None
    memo: Memo | None = None
    proposed: bool = True
    metrics: Mapping[str, float] | None = None


def draw_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed derived from ``seed`` and ``keys`` (the trial count, the attempt ...)."""
    text = ":".join(str(k) for k in (seed, *keys)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "big")


class Strategy(abc.ABC):
    """Proposes architectures from the finished trials it has been given.

    Lifecycle
        ``Strategy(dimensions, directions, seed, **params)``, then :meth:`set_problem`
        (optional); then any interleaving of ``add(results)`` and ``ask(seed)``; then
        ``close()``. Instances are not thread-safe.

    A function of its history
        A strategy keeps no state that the store cannot rebuild. ``add`` learns finished
        trials, in one pass and in the order given (a resumed search gives the whole stored
        history at once, in trial-number order; later calls give the trials finished since, by
        this worker or others). ``ask(seed)`` proposes from what was added and from generators
        seeded by ``seed`` alone (the search loop derives it from the search's seed, the number
        of trials and the attempt). An ask changes nothing the next ask depends on: asking
        twice with one seed gives one architecture, and a proposal the loop does not evaluate
        (a re-proposal of a known network) leaves no trace, except that an ask may move a
        counter forward (QMC's index in its sequence), which its memo carries. So a strategy
        rebuilt from the
        history asks exactly what the uninterrupted one would have asked, and any number of
        workers can share one history.

    ask
        Returns an :data:`Architecture`: one entry per dimension, each value taken from that
        dimension's ``choices`` (the very object, so ints stay ints). It never returns ``None``.

    memo
        JSON the strategy wants stored with its last proposal and handed back in
        :attr:`Result.memo` (an Optuna sampler's trial attributes, for instance); None by
        default. Keep it small: it is stored with every trial.

    add
        ``values`` hold one float per objective, aligned with ``directions`` (``"maximize"``
        or ``"minimize"``); None means failed or infeasible. A strategy that optimises a single
        objective uses the first direction and the first value.

    Problem
        :func:`~strategies.create_strategy` then calls :meth:`set_problem` with what the
        search wants beyond its directions: the limit of each constrained metric
        (``{"latency_ms": 2.0}``: at most 2 ms), the metric of each direction, and the space's
        canonical form of an architecture (one representative of those that build the same
        network). By default none is known (no limits, no metric names, each architecture its
        own form), so a strategy that needs none of them ignores them; one that uses them reads
        them in ``add`` and ``ask``. :meth:`measured_values` and :meth:`overshoot` say what a
        trial that broke a constraint scored and by how much it broke it.

    Determinism
        For given params, history and ask seed, the architecture is identical in every fresh
        process: implementations never read the wall clock, never depend on
        ``PYTHONHASHSEED`` or on set ordering, and start no threads.

    Params
        Implementations accept keyword params (defaults documented on the class); an unknown
        param raises :class:`StrategyError` naming it. Use :meth:`resolve_params`. They declare
        the type of each in ``param_types`` (see :mod:`strategies.params`), so that a config's
        params are checked when it is loaded; ``None`` leaves the checking to ``__init__``.
    """

    name: ClassVar[str]
    param_types: ClassVar[dict[str, Any] | None] = None  # param name -> type, for configs
    # The problem (see set_problem); by default nothing is known.
    constraints: Mapping[str, float] = MappingProxyType({})  # metric -> the most it may be
    objectives: tuple[str, ...] = ()  # the metric of each direction, when known
    _canonical: Callable[[Architecture], Architecture] | None = None

    def __init__(
        self,
        dimensions: Sequence[Dimension],
        directions: Sequence[str],
        seed: int,
        **params: Any,
    ) -> None:
        if not dimensions:
            raise StrategyError("a strategy needs at least one dimension")
        names = [d.name for d in dimensions]
        if len(set(names)) != len(names):
            raise StrategyError(f"dimension names must be unique, got {names}")
        if not directions:
            raise StrategyError("a strategy needs at least one direction")
        bad = [d for d in directions if d not in DIRECTIONS]
        if bad:
            raise StrategyError(f"directions must be 'maximize' or 'minimize', got {bad}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise StrategyError(f"seed must be an int, got {seed!r}")
        self.dimensions: tuple[Dimension, ...] = tuple(dimensions)
        self.directions: tuple[str, ...] = tuple(directions)
        self.seed = seed

    @abc.abstractmethod
    def ask(self, seed: int) -> Architecture:
        """A proposal drawn from the history added so far and generators seeded by ``seed``."""

    def add(self, results: Sequence[Result]) -> None:  # noqa: B027 - a stateless strategy's no-op
        """Learn finished trials, in one pass; a no-op for strategies that learn nothing."""
        for result in results:
            self.check_values(result.values)

    def set_problem(
        self,
        constraints: Mapping[str, float] | None = None,
        objectives: Sequence[str] | None = None,
        canonical: Callable[[Architecture], Architecture] | None = None,
    ) -> None:
        """Tell the strategy the limits, the objectives' metrics and the canonical form (see
        the class docstring); before the first ``add``."""
        limits = {str(m): float(v) for m, v in (constraints or {}).items()}
        bad = {m: v for m, v in limits.items() if not (math.isfinite(v) and v > 0)}
        if bad:
            raise StrategyError(f"constraint limits must be positive numbers, got {bad}")
        names = tuple(objectives or ())
        if names and len(names) != len(self.directions):
            raise StrategyError(
                f"{len(names)} objective metric(s) for {len(self.directions)} direction(s)"
            )
        self.constraints = MappingProxyType(limits)
        self.objectives = names
        self._canonical = canonical

    def memo(self) -> Memo | None:
        """What to store with the last proposal (see the class docstring); None by default."""
        return None

    def close(self) -> None:  # noqa: B027 - a deliberate no-op hook, not abstract
        """Release resources; a no-op unless an implementation holds some."""

    # Concrete helpers for implementations.

    def resolve_params(
        self, params: Mapping[str, Any], defaults: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``defaults`` updated with ``params``; an unknown param raises :class:`StrategyError`."""
        for key in params:
            if key not in defaults:
                known = ", ".join(sorted(defaults)) or "none"
                raise StrategyError(
                    f"strategy {self.name!r} has no param {key!r}; known params: {known}"
                )
        return {**defaults, **params}

    @property
    def maximize(self) -> bool:
        """Whether the first (or only) objective is maximised."""
        return self.directions[0] == "maximize"

    def check_values(self, values: Sequence[float] | None) -> list[float] | None:
        """``values`` as a list of floats, checked against the number of directions."""
        if values is None:
            return None
        out = [float(v) for v in values]
        if len(out) != len(self.directions):
            raise StrategyError(
                f"a result has {len(out)} value(s) for {len(self.directions)} direction(s)"
            )
        return out

    def score(self, values: Sequence[float]) -> float:
        """The first objective as a higher-is-better number (negated when minimised)."""
        return float(values[0]) if self.maximize else -float(values[0])

    def decode(self, values: Mapping[str, Any]) -> Architecture:
        """Map raw sampled values (maybe numpy scalars) onto the dimensions' own choices."""
        return {d.name: d.choices[d.index(values[d.name])] for d in self.dimensions}

    def canonical(self, arch: Architecture) -> Architecture:
        """The space's representative of ``arch``; ``arch`` itself when none was given."""
        return arch if self._canonical is None else self._canonical(arch)

    def measured_values(self, result: Result) -> list[float] | None:
        """The objective values of ``result`` whatever the constraints: its ``values``, else
        (a trial that broke a constraint) the metrics of :attr:`objectives` it measured; None
        when it failed, or when those metrics are not known."""
        values = self.check_values(result.values)
        metrics = result.metrics or {}
        if values is not None or not self.objectives:
            return values
        if all(m in metrics for m in self.objectives):
            return [float(metrics[m]) for m in self.objectives]
        return None

    def overshoot(self, result: Result) -> dict[str, float]:
        """Each constraint that ``result`` broke -> its value / its limit (so > 1). A metric
        not measured counts by its prediction (``predicted_latency_ms`` of a screened trial)."""
        metrics = result.metrics or {}
        found = {}
        for metric, limit in self.constraints.items():
            value = metrics.get(metric, metrics.get(f"predicted_{metric}"))
            if value is not None and value > limit:
                found[metric] = value / limit
        return found
