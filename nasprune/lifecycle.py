"""A search's life in the store, without the deep-learning stack: its row written with the
versions it ran under, and its stored config read back.

The service's ``POST /searches`` writes rows through here, so the server never loads torch to
create a search; workers (``nasprune.search``) take it from there.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING

from nasprune.config import SearchConfig, parse_config
from storage import SearchRecord

if TYPE_CHECKING:
    from storage import Store


def versions() -> dict[str, str]:
    """The versions of nasprune and the libraries a search depends on, as stored with it."""
    found = {}
    for package in ("nasprune", "torch", "optuna", "nni", "sqlalchemy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "absent"
    return found


def record_search(store: Store, cfg: SearchConfig) -> SearchRecord:
    """Write a new search's row (DuplicateSearchError if the name is taken); nothing runs
    until a worker joins it (``run`` does, or ``nasprune worker NAME``)."""
    return store.create_search(
        cfg.name,
        cfg.model_dump(mode="json"),
        cfg.config_hash(),
        cfg.space.name,
        cfg.strategy.name,
        cfg.budget.trials,
        versions(),
    )


def stored_config(record: SearchRecord) -> SearchConfig:
    """The config a search was created with (its strategy params were checked then)."""
    return parse_config(
        record.config, source=f"stored config of search {record.name!r}", check_strategy=False
    )
