"""Opening a database: engine settings per dialect, and bringing its schema to head.

SQLite gets WAL mode, foreign keys and a 30 s busy timeout on every connection; other
servers (PostgreSQL, through psycopg 3 for a plain ``postgresql://`` URL) get
``pool_pre_ping`` so that connections dropped by the server are replaced. Migrations are
Alembic scripts in ``storage/migrations``, configured in code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from plumbing import first_line
from storage.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SCHEMA_VERSION = "0007"  # the head revision in migrations/versions
SQLITE_BUSY_TIMEOUT_S = 30.0


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def one_line(exc: BaseException) -> str:
    """The first line of the driver's message (SQLAlchemy adds background links below it)."""
    orig = getattr(exc, "orig", None)
    return first_line(orig if isinstance(orig, BaseException) else exc)


def create_store_engine(url: str) -> Engine:
    """An engine for ``url``, or StoreError naming what is wrong with the URL."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(
            f"cannot parse storage URL {url!r}: expected e.g. 'sqlite:///nasprune.db' "
            "or 'postgresql://user:password@host/dbname'"
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, url)
    if parsed.drivername == "postgresql":
        # psycopg 3, whatever SQLAlchemy's default; postgresql+psycopg2:// still names psycopg2
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        return create_engine(parsed, pool_pre_ping=True)
    except NoSuchModuleError as exc:
        raise StoreError(
            f"unknown database dialect {parsed.drivername!r} in storage URL {safe_url(url)}; "
            "use 'sqlite:///<file>' or 'postgresql://...'"
        ) from exc
    except ImportError as exc:
        postgres = parsed.get_backend_name() == "postgresql"
        hint = " (pip install 'nasprune[postgres]')" if postgres else ""
        raise StoreError(
            f"the database driver {parsed.drivername!r} for {safe_url(url)} is not "
            f"installed ({exc}){hint}"
        ) from exc


def _sqlite_engine(parsed: URL, url: str) -> Engine:
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
    if in_memory:  # one shared connection, or each thread would see its own empty database
        engine = create_engine(
            parsed,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
        )
    else:
        folder = Path(database).expanduser().resolve().parent
        if not folder.is_dir():
            raise StoreError(f"cannot open {url}: the directory {str(folder)!r} does not exist")
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    event.listen(engine, "connect", _set_sqlite_pragmas)
    event.listen(engine, "begin", _begin_immediate)
    return engine


def _begin_immediate(connection: Any) -> None:
    """Begin every SQLite transaction ourselves, taking the write lock at once.

    The sqlite3 module would otherwise commit DDL implicitly (so a migration would not be
    atomic) and start transactions lazily, so that two processes reading a counter and then
    writing could deadlock on the lock upgrade instead of waiting on busy_timeout.
    """
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # transactions are begun by _begin_immediate
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
    finally:
        cursor.close()


def alembic_config() -> Config:
    """An Alembic config that points at the packaged migration scripts; no alembic.ini."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


@contextmanager
def _opening(url: str) -> Iterator[None]:
    """Driver errors while a store is opened become StoreError naming the URL."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open the store at {safe_url(url)}: {one_line(exc)}") from exc


def is_at_head(engine: Engine, url: str) -> bool:
    """Whether the database is at SCHEMA_VERSION, read with one query (Alembic not loaded)."""
    with _opening(url):
        return _current_revision(engine) == SCHEMA_VERSION


def upgrade_to_head(engine: Engine, url: str) -> None:
    """Migrate the database to SCHEMA_VERSION; a database already there is not touched.

    A database at head is recognised with one query and Alembic is not even imported, so that
    opening a store for a query stays fast.
    """
    with _opening(url):
        current = _current_revision(engine)
        if current != SCHEMA_VERSION:
            _upgrade(engine, url, current)


def _upgrade(engine: Engine, url: str, current: str | None) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = alembic_config()
    known = {rev.revision for rev in ScriptDirectory.from_config(config).walk_revisions()}
    if current is not None and current not in known:
        raise StoreError(
            f"the database {safe_url(url)} has schema revision {current!r}, which this "
            f"version of nasprune does not know (its newest is {SCHEMA_VERSION!r}); "
            "upgrade nasprune"
        )
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except (SQLAlchemyError, CommandError) as exc:
        # Another process may have migrated the same database at the same moment.
        if _current_revision(engine) != SCHEMA_VERSION:
            raise StoreError(f"cannot open the store at {safe_url(url)}: {one_line(exc)}") from exc


def _current_revision(engine: Engine) -> str | None:
    """The revision in the database's ``alembic_version`` table (None for an empty database)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return None if revision is None else str(revision)
