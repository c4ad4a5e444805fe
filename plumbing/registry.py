"""Named entries (spaces, strategies, latency backends, importance criteria) and the one way
to register and find them: a decorator that refuses a name taken by another entry, and a
lookup whose error lists the known names.

>>> BACKENDS = Registry("latency backend", ValueError)
>>> @BACKENDS.register("mine")
... class Mine: ...
>>> BACKENDS.get("mine") is Mine
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one ``kind`` by name; errors are raised as ``error`` (the room's own)."""

    def __init__(
        self, kind: str, error: type[Exception], builtins: Callable[[], None] | None = None
    ) -> None:
        self.kind, self.error = kind, error
        self._entries: dict[str, T] = {}
        self._builtins = builtins  # registers the entries that ship with nasprune, on first use

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator that registers what it decorates under ``name`` (see :meth:`add`)."""
        return lambda entry: self.add(name, entry)

    def add_named(self, entry: T) -> T:
        """Register ``entry`` (a class) under its ``name`` class attribute (see :meth:`add`)."""
        name = getattr(entry, "name", None)
        if not isinstance(name, str) or not name:
            title = getattr(entry, "__name__", repr(entry))
            raise self.error(f"{title} needs a class attribute `name` to be registered")
        return self.add(name, entry)

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name`` and return it. The same entry again (or its
        module imported again) is a no-op; another entry under a taken name is an error that
        names the holder. Entries are the same when they are one object or share a label: a
        class's or module-level function's qualified name, else the entry's ``repr`` (a room
        whose entries are instances gives them a ``repr`` naming what they hold)."""
        if not isinstance(name, str) or not name:
            raise self.error(f"{self.kind} names are non-empty strings, not {name!r}")
        held = self._entries.get(name)
        if held is not None and held is not entry and _label(held) != _label(entry):
            raise self.error(f"{self.kind} {name!r} is already registered (by {_label(held)})")
        self._entries[name] = entry
        return entry

    def get(self, name: object) -> T:
        """The entry registered as ``name`` (a config's value, so of any type); an unknown name
        is an error listing the known."""
        self._load()
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        raise self.error(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")

    def pop(self, name: str) -> T:
        """Remove the entry registered as ``name`` and return it (tests clean up with it)."""
        entry = self.get(name)
        del self._entries[name]
        return entry

    def names(self) -> list[str]:
        """The registered names, sorted."""
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _load(self) -> None:
        if self._builtins is not None:
            builtins, self._builtins = self._builtins, None
            builtins()


def _label(entry: object) -> str:
    """What an entry is, for an error: its qualified name where it has one (a class or a
    module-level function), else its repr (unique to the object)."""
    qualname = getattr(entry, "__qualname__", None)
    module = getattr(entry, "__module__", None)
    if qualname and module and "<locals>" not in qualname:
        return f"{module}.{qualname}"
    return repr(entry)
