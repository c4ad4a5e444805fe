"""One exception root for everything a user of nasprune may catch.

The rooms below the application (``storage``, ``search_spaces``, ``strategies``) import nothing
from ``nasprune``, so they raise their own errors; :func:`user_errors` is the one place where
those become :class:`NasPruneError` subclasses, at the edge of the public API.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from plumbing import first_line  # noqa: F401  (re-exported: the CLI and the service use it)


class NasPruneError(Exception):
    """Root of every error nasprune raises for a user's mistake or a broken environment."""

    exit_status = 2  # of the CLI: 2 says "your mistake"


class ConfigError(NasPruneError):
    """A config file is missing, unreadable or invalid."""


class StoreError(NasPruneError):
    """The store cannot be opened or queried, or a search or trial is not there."""


class NotFoundError(StoreError):
    """A search or trial that is not in the store (the service answers 404)."""


class NameTakenError(StoreError):
    """A search of that name exists already (the service answers 409)."""


class SpaceError(NasPruneError):
    """An unknown space, bad space parameters, or an architecture that is not in the space."""


class StrategyError(NasPruneError):
    """An unknown strategy or bad strategy parameters."""


class SearchError(NasPruneError):
    """A search cannot be launched, resumed or exported in the state it is in."""


class StateError(SearchError):
    """The search's status or its trials do not allow it: cancelling a completed search, a
    budget below the trials already complete (the service answers 409)."""


class WorkersFailedError(NasPruneError):
    """Worker processes of ``run --workers N`` failed and the search did not reach its budget
    (no mistake of the user's: the CLI exits 1)."""

    exit_status = 1


# The rooms' own errors, and what each becomes at the edge of the public API (the first that
# matches: the particular before the root of its room).
_ROOM_ERRORS = (
    ("storage", "SearchNotFoundError", NotFoundError),
    ("storage", "DuplicateSearchError", NameTakenError),
    ("storage", "StoreError", StoreError),
    ("search_spaces", "SpaceError", SpaceError),
    ("strategies", "StrategyError", StrategyError),
)


def _room_errors() -> list[tuple[type[Exception], type[NasPruneError]]]:
    """The room error classes among the modules loaded so far (importing none)."""
    return [
        (getattr(sys.modules[module], name), ours)
        for module, name, ours in _ROOM_ERRORS
        if module in sys.modules
    ]


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` reports a user's mistake (ours or a room's), not a bug."""
    return isinstance(exc, NasPruneError) or any(
        isinstance(exc, theirs) for theirs, _ in _room_errors()
    )


@contextmanager
def user_errors() -> Iterator[None]:
    """Re-raise the rooms' own errors as :class:`NasPruneError` subclasses.

    Only the rooms already imported are considered (a room that is not loaded cannot have
    raised), so a query does not load torch through ``search_spaces`` just to map errors.
    """
    try:
        yield
    except Exception as exc:
        for theirs, ours in _room_errors():
            if isinstance(exc, theirs):
                raise ours(str(exc)) from exc
        raise
