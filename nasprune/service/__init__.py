"""nasprune as an HTTP service: launch and query searches over JSON (``nasprune serve``).

Workers (``nasprune worker NAME``) do the work; the service writes searches' rows, answers the
read-only queries and exports subnets. FastAPI and uvicorn are the ``service`` extra and load
only here: :func:`require_fastapi` says how to install them.
"""

from __future__ import annotations

from nasprune.errors import NasPruneError

INSTALL_HINT = "the HTTP service needs FastAPI and uvicorn: pip install 'nasprune[service]'"


def require_fastapi() -> None:
    """Raise a one-line :class:`NasPruneError` unless FastAPI and uvicorn can be imported."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise NasPruneError(INSTALL_HINT) from None
