"""One exception root for everything a user of nasprune may catch.

The rooms below the application (``storage``, ``search_spaces``, ``strategies``) import nothing
from ``nasprune``, so they raise their own errors; :func:`user_errors` is the one place where
those become :class:`NasPruneError` subclasses, at the edge of the public API.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class NasPruneError(Exception):
    """Root of every error nasprune raises for a user's mistake or a broken environment."""


class ConfigError(NasPruneError):
    """A config file is missing, unreadable or invalid."""


class StoreError(NasPruneError):
    """The store cannot be opened or queried, or a search or trial is not there."""


class SpaceError(NasPruneError):
    """An unknown space, bad space parameters, or an architecture that is not in the space."""


class StrategyError(NasPruneError):
    """An unknown strategy or bad strategy parameters."""


class SearchError(NasPruneError):
    """A search cannot be launched, resumed or exported in the state it is in."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Re-raise the rooms' own errors as :class:`NasPruneError` subclasses."""
    import search_spaces
    import storage
    import strategies

    try:
        yield
    except storage.StoreError as exc:
        raise StoreError(str(exc)) from exc
    except search_spaces.SpaceError as exc:
        raise SpaceError(str(exc)) from exc
    except strategies.StrategyError as exc:
        raise StrategyError(str(exc)) from exc
