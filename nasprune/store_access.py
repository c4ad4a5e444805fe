"""Which store a command uses, and opening it: --storage, then $NASPRUNE_STORAGE, then the
config's, then a SQLite file in the working directory. Light: a query opens a
:class:`storage.Reader` (SQLAlchemy Core), only a command that writes loads the ORM."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, TypeAlias

from nasprune.errors import NotFoundError, SearchError, user_errors
from storage import Reader, SearchRecord, TrialRecord, TrialState, get_reader

if TYPE_CHECKING:
    from storage import Store

DEFAULT_STORAGE = "sqlite:///nasprune.db"
STORAGE_ENV = "NASPRUNE_STORAGE"
StorageArg: TypeAlias = "str | Store | None"  # what a command that writes opens
ReaderArg = str | Reader | None  # what a query reads: a Store is a Reader too


def resolve_storage(cli_value: str | None = None, config: Any = None) -> str:
    """The storage URL: --storage, then NASPRUNE_STORAGE, then the config's, then the default."""
    return (
        cli_value
        or os.environ.get(STORAGE_ENV)
        or (getattr(config, "storage", None) if config is not None else None)
        or DEFAULT_STORAGE
    )


def open_store(storage: StorageArg = None, config: Any = None) -> Store:
    """The store that ``storage`` names: an instance, a URL, or the default resolution."""
    from storage.store import Store, get_store  # the ORM: writes only

    if isinstance(storage, Store):
        return storage
    with user_errors():
        return get_store(resolve_storage(storage, config))


def open_reader(storage: ReaderArg = None) -> Reader:
    """A reader of the store that ``storage`` names, without loading the ORM; a database not
    at the head revision is opened as a :class:`storage.Store`, which migrates it."""
    if isinstance(storage, Reader):
        return storage
    with user_errors():
        return get_reader(resolve_storage(storage))


def find_trial(store: Reader, record: SearchRecord, number: int) -> TrialRecord:
    """Complete trial ``number`` of a search, or an error that says why not."""
    trial = store.get_trial(record.search_id, number)
    if trial is None:
        raise NotFoundError(f"search {record.name!r} has no trial {number}")
    if trial.state != TrialState.COMPLETE:
        raise SearchError(f"trial {number} of {record.name!r} is {trial.state.value}, not complete")
    return trial
