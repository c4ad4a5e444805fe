"""How candidates are chosen: one ask/tell interface and its implementations.

Importing this package loads neither Optuna nor NNI; an adapter imports its library when a
strategy that needs it is created (see :mod:`strategies.registry`).
"""

from __future__ import annotations

from .base import Strategy
from .errors import MissingDependencyError, StrategyError
from .registry import create_strategy, list_strategies, register_strategy

__all__ = [
    "MissingDependencyError",
    "Strategy",
    "StrategyError",
    "create_strategy",
    "list_strategies",
    "register_strategy",
]
