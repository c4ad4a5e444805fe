"""nasprune as an HTTP service: launch and query searches over JSON (``nasprune serve``).

Workers (``nasprune worker NAME``) do the work; the service writes searches' rows, answers the
read-only queries and exports subnets. FastAPI and uvicorn are the ``service`` extra and load
only here: :func:`require_fastapi` says how to install them.
"""

from __future__ import annotations

from nasprune.errors import NasPruneError
from plumbing import require


def require_fastapi() -> None:
    """Raise a one-line :class:`NasPruneError` unless FastAPI and uvicorn can be imported."""
    for module in ("fastapi", "uvicorn"):
        require(module, "the HTTP service needs FastAPI and uvicorn", "'nasprune[service]'",
                NasPruneError)  # fmt: skip
