"""The registry of search spaces: a config names a space by a short string.

The spaces that ship with nasprune register when their modules are imported, on the first
lookup (``builtin.mlp``, ``builtin.cnn``, ``builtin.cnn1d`` and ``derived`` import torch).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, TypeVar

from plumbing import Registry
from search_spaces.base import SearchSpace
from search_spaces.dimensions import SpaceError

S = TypeVar("S", bound=type[SearchSpace])


def _builtin() -> None:
    """Register the spaces that ship with nasprune (their modules register on import)."""
    importlib.import_module("search_spaces.cnn")
    importlib.import_module("search_spaces.cnn1d")
    importlib.import_module("search_spaces.mlp")
    importlib.import_module("search_spaces.derived.space")


SPACES: Registry[type[SearchSpace]] = Registry("search space", SpaceError, builtins=_builtin)


def register_space(cls: S) -> S:
    """Class decorator: register ``cls`` under its ``name`` class attribute."""
    SPACES.add_named(cls)
    return cls


def create_space(name: str, **params: Any) -> SearchSpace:
    """The space registered as ``name``, built from ``params``.

    Raises :class:`SpaceError` with a one-line message for an unknown name (listing the known
    ones) or for parameters that the space does not take or rejects.
    """
    cls = SPACES.get(name)
    signature = inspect.signature(cls)
    try:
        signature.bind(**params)
    except TypeError as exc:
        raise SpaceError(
            f"bad parameters for search space {name!r}: {exc}; "
            f"it takes: {', '.join(signature.parameters)}"
        ) from None
    try:
        return cls(**params)
    except SpaceError:
        raise
    except (TypeError, ValueError) as exc:
        raise SpaceError(f"bad parameters for search space {name!r}: {exc}") from None


def list_spaces() -> dict[str, str]:
    """Registered space names and their one-line descriptions, sorted by name."""
    return {name: SPACES.get(name).description for name in SPACES.names()}
