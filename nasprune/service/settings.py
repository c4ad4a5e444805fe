"""What a running service is allowed to do, and where it keeps things."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TOKEN_ENV = "NASPRUNE_API_TOKEN"
BUILTIN_SPACES = ("builtin.mlp", "builtin.cnn")


@dataclass(frozen=True)
class ServiceSettings:
    """The service's settings; every field has a default explained in one comment.

    A config sent over HTTP may only name what is listed here: importing an arbitrary module
    (a data loader's ``entry_point``, a derived space's ``model``) stays a privilege of the CLI.
    """

    storage: str | None = None  # SQLAlchemy URL [default: $NASPRUNE_STORAGE or sqlite]
    export_dir: Path = Path(".nasprune/exports")  # exported files are written (only) here
    token: str | None = None  # bearer token of mutations; None: the service is read-only
    spaces: tuple[str, ...] = BUILTIN_SPACES  # spaces a posted config may name
    data_entry_points: tuple[str, ...] = ()  # "module:function" data loaders it may name
    models: tuple[str, ...] = ()  # "module:function" models a derived space may name
    max_body_bytes: int = 1_000_000  # larger request bodies get 413
    max_page_size: int = 100  # `limit` of a list is at most this
    poll_s: float = 1.0  # how often the event stream reads a search's progress

    @classmethod
    def from_env(cls, **overrides: object) -> ServiceSettings:
        """Settings with the token from ``$NASPRUNE_API_TOKEN`` (empty counts as unset)."""
        token = os.environ.get(TOKEN_ENV) or None
        return cls(**{"token": token, **overrides})  # type: ignore[arg-type]

    @property
    def read_only(self) -> bool:
        return self.token is None
