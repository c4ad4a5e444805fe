"""The one extension point of this room: a strategy that is asked for architectures."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from search_spaces.dimensions import Architecture, Dimension

from .errors import StrategyError

DIRECTIONS = ("maximize", "minimize")


class Strategy(abc.ABC):
    """Chooses architectures one at a time and learns from their measured objectives.

    Lifecycle
        ``Strategy(dimensions, directions, seed, **params)``, then strictly alternating
        ``ask()`` / ``tell(arch, values)`` calls, then ``close()``. ``tell`` always receives the
        architecture returned by the ``ask`` just before it; a strategy may raise
        :class:`StrategyError` otherwise. Instances are not thread-safe: one caller at a time.

    ask
        Returns an :data:`Architecture`: one entry per dimension, each value taken from that
        dimension's ``choices`` (the very object, so ints stay ints). It never returns ``None``;
        when a strategy has exhausted a small space it keeps answering (what it answers is
        documented by the implementation).

    tell
        ``values`` holds one float per objective, aligned with ``directions``
        (``"maximize"`` or ``"minimize"``). ``None`` means the candidate failed or was rejected as
        infeasible before evaluation. A strategy that optimises a single objective uses the first
        direction and the first value.

    Determinism (resuming relies on it)
        For a given ``seed``, params and sequence of told values, the sequence of asked
        architectures is identical in every fresh process. Implementations therefore own their
        random generators (seeded from ``seed``), never read the wall clock, never depend on
        ``PYTHONHASHSEED`` or on set ordering, and start no threads. A search is resumed by
        building a fresh strategy and replaying the stored trials: ``ask()`` then
        ``tell(arch, stored_values)`` for each one. The strategy keeps no other state.

    Params
        Implementations accept keyword params (defaults documented on the class); an unknown
        param raises :class:`StrategyError` naming it. Use :meth:`resolve_params`. They declare
        the type of each in ``param_types`` (see :mod:`strategies.params`), so that a config's
        params are checked when it is loaded; ``None`` leaves the checking to ``__init__``.
    """

    name: ClassVar[str]
    param_types: ClassVar[dict[str, Any] | None] = None  # param name -> type, for configs

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
    def ask(self) -> Architecture:
        """Return the next architecture to evaluate."""

    @abc.abstractmethod
    def tell(self, arch: Architecture, values: Sequence[float] | None) -> None:
        """Report the objectives of ``arch`` (the last asked one); ``None`` for a failure."""

    def observe(self, arch: Architecture, values: Sequence[float] | None) -> None:  # noqa: B027
        """Learn from an architecture this strategy did not propose (a no-op hook).

        The search loop calls it, between an answered ``tell`` and the next ``ask``, when the
        strategy keeps proposing evaluated architectures and the loop evaluates an unseen one
        instead. Implementations that can add foreign results to their history override it.
        """

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
                f"tell() got {len(out)} value(s) for {len(self.directions)} direction(s)"
            )
        return out

    def score(self, values: Sequence[float]) -> float:
        """The first objective as a higher-is-better number (negated when minimised)."""
        return float(values[0]) if self.maximize else -float(values[0])

    def check_told(self, arch: Architecture, pending: Architecture | None) -> None:
        """Raise unless ``arch`` is the architecture awaiting its result."""
        if pending is None:
            raise StrategyError("tell() called without a pending ask()")
        if dict(arch) != pending:
            raise StrategyError(f"tell() got {arch}, but the last ask() returned {pending}")

    def decode(self, values: Mapping[str, Any]) -> Architecture:
        """Map raw sampled values (maybe numpy scalars) onto the dimensions' own choices."""
        return {d.name: d.choices[d.index(values[d.name])] for d in self.dimensions}
