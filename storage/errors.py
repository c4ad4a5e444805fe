"""The errors the store raises; callers catch :class:`StoreError` or one of its subclasses."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The store cannot be opened or queried, or a record is not there.

    The message is one line that names the database URL (password hidden) and the problem.
    """


class SearchNotFoundError(StoreError):
    """No search of that name exists in the store."""


class DuplicateSearchError(StoreError):
    """A search of that name already exists in the store."""


class LostLeaseError(StoreError):
    """A worker tried to finish a trial that is no longer its own: its lease expired and the
    trial was reclaimed by another worker, or given up as failed."""


class ArchTakenError(StoreError):
    """A worker tried to create a trial of a network another worker runs or has finished."""


class ConnectionLostError(StoreError):
    """The connection to the database server was lost and did not come back in time.

    A store call retries a lost connection for ``reconnect_s`` seconds (a Store keyword)
    before it raises this.
    """
