"""Surviving a lost database connection: what counts as one, and retrying a transaction.

A PostgreSQL server that restarts (a failover, an upgrade, ``pg_ctl restart``) kills every
connection, and refuses new ones until it is back. A store call that meets that waits with
exponential backoff and runs its whole transaction again, for up to ``reconnect_s`` seconds,
so that a worker neither dies nor loses a finished trial. SQLite is a local file: it never
loses a connection, and its busy errors are handled by its busy timeout, so it is never
retried here.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from storage.engine import one_line, safe_url
from storage.errors import ConnectionLostError

RECONNECT_S = 120.0  # how long a store call keeps trying to reach a lost server
FIRST_DELAY_S = 0.2  # the first wait; it doubles on each retry, up to MAX_DELAY_S
MAX_DELAY_S = 5.0

# SQLSTATEs of a lost server: class 08 (connection exception), and a server that shuts down,
# crashed, or is starting up (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now)
_LOST_SQLSTATES = ("08", "57P01", "57P02", "57P03")

_T = TypeVar("_T")
log = logging.getLogger(__name__)


def is_disconnect(exc: BaseException, engine: Engine) -> bool:
    """Whether ``exc`` means the connection to the server was lost or cannot be made.

    True when SQLAlchemy invalidated the connection (the dialect recognised a disconnect),
    or for an OperationalError or InterfaceError of the driver that carries no SQLSTATE (the
    client could not connect or lost the socket) or a lost-server SQLSTATE. False for every
    other error (a syntax error, a constraint violation, a cancelled query), and on SQLite.
    """
    if engine.dialect.name == "sqlite" or not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    # psycopg 3 names it sqlstate, psycopg2 pgcode; None when the error is the client's own
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code is None or str(code).startswith(_LOST_SQLSTATES)


def retry_disconnects(
    run: Callable[[], _T], engine: Engine, url: str, reconnect_s: float = RECONNECT_S
) -> _T:
    """``run()``, called again after a ConnectionLostError until it succeeds or ``reconnect_s``
    seconds have passed.

    ``run`` must be one whole transaction: a retry starts it from the beginning on a new
    connection. Before each retry the pool's connections are dropped, and the wait doubles
    from 0.2 s to 5 s, with jitter so that many workers do not reconnect in step. Each retry
    logs a warning; when the time is up, ConnectionLostError says so in one line.
    """
    deadline = time.monotonic() + reconnect_s
    delay = FIRST_DELAY_S
    while True:
        try:
            return run()
        except ConnectionLostError as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectionLostError(
                    f"{exc}; not back within {reconnect_s:g} s (Store(reconnect_s=...))"
                ) from exc.__cause__
            wait = min(left, delay * random.uniform(0.5, 1.5))
            log.warning("%s; retrying in %.1f s", exc, wait)
            engine.dispose()  # the pool's other connections died with this one
            time.sleep(wait)
            delay = min(delay * 2, MAX_DELAY_S)


def lost_connection(url: str, exc: BaseException) -> ConnectionLostError:
    """The error that :func:`retry_disconnects` retries, for a disconnect ``exc``."""
    return ConnectionLostError(
        f"store {safe_url(url)}: lost the connection to the database: {one_line(exc)}"
    )
