"""A rich progress display for the search loop: deriving the space (its steps, as the logger
``search_spaces.derived`` reports them), the supernet's training, then trials, best so far."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from nasprune.evaluation.supernet import Progress as SupernetProgress


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
        self._derive: TaskID | None = None
        self._console = console
        self._lines = _DeriveLines(self)
        self._derive_log = logging.getLogger("search_spaces.derived")
        self._derive_level = self._derive_log.level

    def __enter__(self) -> RichObserver:
        self._progress.start()
        self._derive_log.addHandler(self._lines)
        self._derive_log.setLevel(logging.INFO)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._derive_log.removeHandler(self._lines)
        self._derive_log.setLevel(self._derive_level)
        self._progress.stop()

    def derive_step(self, step: str) -> None:
        """Deriving the space from the user's model: the step it is in (a pulsing bar)."""
        if self._derive is None:
            self._derive = self._progress.add_task("space", total=None, info="")
        self._progress.update(self._derive, info=step.removeprefix("derive: "))

    def say(self, line: str) -> None:
        """A line above the bars (or alone, where there are none): warnings, refusals."""
        self._console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _derived(self) -> None:
        if self._derive is not None:
            self._progress.remove_task(self._derive)
            self._derive = None

    def supernet_progress(self, progress: SupernetProgress) -> None:
        """The supernet's training: steps, loss, and the validation accuracy of its largest
        and smallest subnets at the last evaluation (a resumed training says where from)."""
        self._derived()
        if self._supernet is None:
            label = "supernet" if not progress.resumed_at else "supernet (resumed)"
            self._supernet = self._progress.add_task(label, total=progress.steps, info="")
        accuracy = progress.accuracy
        shown = "" if not accuracy else (
            f", largest {accuracy['largest']:.1%}, smallest {accuracy['smallest']:.1%}"
        )  # fmt: skip
        self._progress.update(
            self._supernet, completed=progress.step, info=f"loss {progress.loss:.3f}{shown}"
        )

    def trial_done(
        self, trial: TrialRecord, completed: int, budget: int, best: float | None
    ) -> None:
        self._derived()
        if self._trials is None:
            self._trials = self._progress.add_task("trials", total=budget, info="")
        shown = "-" if best is None else f"{best:.4f}"
        self._progress.update(
            self._trials, completed=completed, info=f"best within constraints {shown}"
        )


class _DeriveLines(logging.Handler):
    """The derived space's log records: steps update the progress line, warnings are said."""

    def __init__(self, observer: RichObserver) -> None:
        super().__init__(logging.INFO)
        self.observer = observer

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            self.observer.say(message)
        else:
            self.observer.derive_step(message)
