"""What every command shares: the Typer app, the consoles, common options, failing."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from rich.progress import Progress

app = typer.Typer(
    help="Find the best subnetwork of a neural network under hardware constraints.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output is not cut to 80 columns: tables keep their natural width.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, highlight=False)

RemeasureOpt = Annotated[
    bool, typer.Option(help="Measure latency again even where this device has a stored figure.")
]
StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage", help="SQLAlchemy URL [default: $NASPRUNE_STORAGE or sqlite:///nasprune.db]"
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print stable JSON instead of a table.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
LrScheduleOpt = Annotated[
    str,
    typer.Option(
        metavar="cosine|constant",
        help="The learning rate: cosine decays it to 0 at the last step, so the run ends "
        "settled rather than anywhere on its trajectory; constant keeps it.",
    ),
]


def progress_bar(label: str | None = None, *, quiet: bool = False, info: bool = False) -> Progress:
    """The command line's one progress display: on stderr, shown only on a terminal and
    without ``--quiet``; ``label`` (else each task's description), a bar, done/total, the time
    left, and with ``info`` a task's ``info`` field (a loss)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn(label or "{task.description}"), BarColumn(), MofNCompleteColumn()]
    columns.append(TextColumn("{task.fields[info]}") if info else TimeRemainingColumn())
    return Progress(*columns, console=err, disable=quiet or not err.is_terminal)


@contextmanager
def interruptible(hint: str) -> Iterator[None]:
    """Ctrl-C ends the command with status 130 and one line saying how to carry on."""
    try:
        yield
    except KeyboardInterrupt:
        err.print(f"interrupted; {hint}")
        raise typer.Exit(130) from None


def resume_hint(name: str) -> str:
    return f"`nasprune resume {name}` carries on from here"


def fail(message: str, status: int = 2) -> NoReturn:
    """One line on stderr and exit ``status`` (2: the user's mistake)."""
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    sys.exit(status)
