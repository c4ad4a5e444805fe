"""The registry of search spaces: a config names a space by a short string."""

from __future__ import annotations

import importlib
import inspect
from typing import Any, TypeVar

from search_spaces.base import SearchSpace
from search_spaces.dimensions import SpaceError

_SPACES: dict[str, type[SearchSpace]] = {}

S = TypeVar("S", bound=type[SearchSpace])


def register_space(cls: S) -> S:
    """Class decorator: register ``cls`` under its ``name`` class attribute."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise SpaceError(f"{cls.__name__} needs a class attribute `name` to be registered")
    known = _SPACES.get(name)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise SpaceError(f"search space {name!r} is already registered by {known.__qualname__}")
    _SPACES[name] = cls
    return cls


def _builtin() -> None:
    """Register the spaces that ship with nasprune (their modules register on import)."""
    importlib.import_module("search_spaces.cnn")
    importlib.import_module("search_spaces.mlp")
    importlib.import_module("search_spaces.derived.space")


def create_space(name: str, **params: Any) -> SearchSpace:
    """The space registered as ``name``, built from ``params``.

    Raises :class:`SpaceError` with a one-line message for an unknown name (listing the known
    ones) or for parameters that the space does not take or rejects.
    """
    _builtin()
    cls = _SPACES.get(name)
    if cls is None:
        raise SpaceError(f"unknown search space {name!r}; known: {', '.join(sorted(_SPACES))}")
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
    _builtin()
    return {name: _SPACES[name].description for name in sorted(_SPACES)}
