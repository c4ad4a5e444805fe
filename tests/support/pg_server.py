"""A throwaway PostgreSQL server for the tests, started with initdb and pg_ctl in a temp dir.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` system user
(which Debian's package creates) through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running throwaway server that a test may stop and start again on the same port."""

    bindir: Path
    workdir: Path
    port: int
    prefix: list[str]

    @property
    def url(self) -> str:
        """The base URL, without a database: ``postgresql+psycopg://postgres@127.0.0.1:PORT``."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def start(self) -> None:
        self._pg_ctl(
            "-l",
            str(self.workdir / "server.log"),
            "-w",
            "-o",
            f"-p {self.port} -h 127.0.0.1 -k {self.workdir} -F",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-m", mode, "-w", "stop")

    def _pg_ctl(self, *args: str) -> None:
        data = str(self.workdir / "data")
        command = [*self.prefix, str(self.bindir / "pg_ctl"), "-D", data, *args]
        subprocess.run(command, check=True, capture_output=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server; yield its base URL (``postgresql+psycopg://postgres@127.0.0.1:PORT``)."""
    with running_postgres() as server:
        yield server.url


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a server in a temporary directory; stop it and delete everything afterwards."""
    bindir = pg_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (pg_ctl not found); .ci/run installs it")
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    workdir = Path(tempfile.mkdtemp(prefix="nasprune-pg-"))
    if as_root:
        shutil.chown(workdir, "postgres")
    server = PostgresServer(bindir, workdir, _free_port(), prefix)
    initdb = [str(bindir / "initdb"), "-D", str(workdir / "data"), "-U", "postgres"]
    subprocess.run([*prefix, *initdb, "-A", "trust", "--no-sync"], check=True, capture_output=True)
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # a test left it stopped
        shutil.rmtree(workdir, ignore_errors=True)


def create_database(base_url: str) -> str:
    """Create a fresh, empty database on the server and return its URL."""
    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(f"{base_url}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return f"{base_url}/{name}"
