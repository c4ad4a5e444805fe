"""Exceptions raised by the strategies room.

:class:`StrategyError` derives from :class:`ValueError` so that callers which only know the
standard library still catch a user's mistake; nasprune turns it into one clear CLI line.
"""

from __future__ import annotations


class StrategyError(ValueError):
    """A strategy is unknown, misconfigured, misused, or needs a package that is not installed."""


class MissingDependencyError(StrategyError, ImportError):
    """A strategy needs an optional package (Optuna, NNI) that cannot be imported."""
