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
