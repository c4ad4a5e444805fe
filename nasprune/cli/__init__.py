"""The `nasprune` command line, one module per family of commands; heavy libraries load
inside commands, so `--help` is instant."""

from __future__ import annotations

# The order in which --help lists the commands.
# isort: off
from nasprune.cli import searching, querying, latency, models  # noqa: F401 (registers them)

# isort: on
from nasprune.cli.common import app, fail


def main() -> None:
    """Console entry point: a user's mistake is one line on stderr and exit status 2."""
    try:
        app()
    except Exception as exc:
        from nasprune.errors import is_user_error

        if is_user_error(exc):
            fail(str(exc))
        raise


__all__ = ["app", "main"]
