"""Which store a command uses: --storage, then $NASPRUNE_STORAGE, then the config's, then a
SQLite file in the working directory. No imports: every command resolves it first."""

from __future__ import annotations

import os
from typing import Any

DEFAULT_STORAGE = "sqlite:///nasprune.db"
STORAGE_ENV = "NASPRUNE_STORAGE"


def resolve_storage(cli_value: str | None = None, config: Any = None) -> str:
    """The storage URL: --storage, then NASPRUNE_STORAGE, then the config's, then the default."""
    return (
        cli_value
        or os.environ.get(STORAGE_ENV)
        or (getattr(config, "storage", None) if config is not None else None)
        or DEFAULT_STORAGE
    )
