"""The `nasprune` command line, one module per family of commands; heavy libraries load
inside commands, so `--help` is instant."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

# The order in which --help lists the commands.
# isort: off
from nasprune.cli import (  # noqa: F401 (registers them)
    searching,
    querying,
    latency,
    models,
    interop,
    service,
)

# isort: on
from nasprune.cli.common import app, fail

# Commands that only read the store: short-lived, and run by deployment scripts in loops.
_READ_ONLY = frozenset({"best", "pareto", "status", "compare", "devices"})


def main() -> None:
    """Console entry point: a user's mistake is one line on stderr and exit status 2."""
    with _collector_paused_for_reads(sys.argv[1:2]):
        try:
            app()
        except Exception as exc:
            from nasprune.errors import is_user_error

            if is_user_error(exc):
                fail(str(exc), getattr(exc, "exit_status", 2))
            raise


@contextmanager
def _collector_paused_for_reads(command: Sequence[str]) -> Iterator[None]:
    """Pause the cyclic garbage collector while a read-only command runs: loading SQLAlchemy
    and pydantic (for Typer) makes tens of thousands of objects and no garbage, and
    collecting as they came took a tenth of such a command's time."""
    pause = bool(command) and command[0] in _READ_ONLY and gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if pause:
            gc.enable()


__all__ = ["app", "main"]
