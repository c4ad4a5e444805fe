"""A rich progress display for the search loop: supernet epochs, then trials, best so far, ETA."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from storage import TrialRecord


class RichObserver:
    """Shows progress on ``console`` (stderr) when it is a terminal and ``enabled``."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
            disable=not (enabled and console.is_terminal),
        )
        self._supernet: TaskID | None = None
        self._trials: TaskID | None = None

    def __enter__(self) -> RichObserver:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def supernet_epoch(self, epoch: int, epochs: int, loss: float) -> None:
        if self._supernet is None:
            self._supernet = self._progress.add_task("supernet", total=epochs, info="")
        self._progress.update(self._supernet, completed=epoch, info=f"loss {loss:.3f}")

    def trial_done(
        self, trial: TrialRecord, completed: int, budget: int, best: float | None
    ) -> None:
        if self._trials is None:
            self._trials = self._progress.add_task("trials", total=budget, info="")
        shown = "-" if best is None else f"{best:.4f}"
        self._progress.update(
            self._trials, completed=completed, info=f"best within constraints {shown}"
        )
