"""The registry of latency backends: a config's ``latency.backend`` names one.

>>> from nasprune.latency import LatencyBackend, register_backend
>>> @register_backend
... class Mine(LatencyBackend):
...     name = "mine"
...     def fingerprint(self) -> str: ...
...     def prepare(self, module, example): ...
>>> BACKENDS.pop("mine") is Mine
True
"""

from __future__ import annotations

from typing import TypeVar

from nasprune.config import LatencyConfig
from nasprune.errors import ConfigError
from nasprune.latency.base import LatencyBackend
from plumbing import Registry

B = TypeVar("B", bound=type[LatencyBackend])

BACKENDS: Registry[type[LatencyBackend]] = Registry("latency backend", ConfigError)


def register_backend(cls: B) -> B:
    """Class decorator: register a :class:`LatencyBackend` under its ``name`` class attribute.
    A name taken by another class is refused with a :class:`ConfigError` naming it."""
    BACKENDS.add_named(cls)
    return cls


def create_backend(settings: LatencyConfig) -> LatencyBackend:
    """The backend that ``settings.backend`` names; unknown names list the known ones."""
    return BACKENDS.get(settings.backend)(settings)
