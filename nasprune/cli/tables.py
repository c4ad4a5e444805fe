"""Tables the command line prints (rich), and the number formatting they share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from nasprune.queries import SearchSummary
    from storage import TrialRecord

SPARSITY_NOTE = (
    "note: weight sparsity zeroes weights but keeps dense tensors; dense CPU kernels do not run "
    "faster for it (the latency shown is measured on the sparse module as it is)"
)


def list_table(title: str, entries: dict[str, str]) -> Table:
    table = Table(title=title)
    table.add_column("name")
    table.add_column("description")
    for key, text in sorted(entries.items()):
        table.add_row(key, text)
    return table


def num(value: float | int | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def trial_table(
    trials: list[TrialRecord],
    title: str,
    reference: dict[str, float] | None = None,
    finetuned: dict[int, Any] | None = None,
) -> Table:
    """Trials as a table. Held-out (test) accuracy, fine-tuned accuracy and non-zero weights
    get a column when any trial has them."""
    table = Table(title=title)
    tested = any("test_accuracy" in t.metrics for t in trials)
    sparse = any("nonzero_params" in t.metrics for t in trials)
    columns = ["trial", "val acc" if tested else "accuracy"]
    columns += ["test acc"] * tested + ["fine-tuned"] * bool(finetuned)
    columns += ["latency ms", "p90 ms", "params"] + ["non-zero"] * sparse + ["MACs"]
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("architecture", overflow="fold", min_width=16)
    for t in trials:
        accuracy, params = num(t.accuracy), num(t.params)
        if reference and t.accuracy is not None and reference.get("accuracy") is not None:
            accuracy += f" ({100 * (t.accuracy - reference['accuracy']):+.1f} pts)"
        if reference and t.params is not None and reference.get("params"):
            params += f" ({100 * t.params / reference['params']:.0f}%)"
        cells = [str(t.number), accuracy]
        cells += [num(t.metrics.get("test_accuracy"))] * tested
        if finetuned:
            run = finetuned.get(t.number)
            cells.append("-" if run is None else _finetuned_cell(run))
        cells += [num(t.latency_ms, 3), num(t.latency_p90_ms, 3), params]
        cells += [num(_int_or_none(t.metrics.get("nonzero_params")))] * sparse
        cells += [num(t.macs), " ".join(f"{k}={v}" for k, v in t.arch.items())]
        table.add_row(*cells)
    notes = []
    if reference:
        notes.append(
            f"dense (largest) model: accuracy {num(reference.get('accuracy'))}, "
            f"{num(reference.get('latency_ms'), 3)} ms, {num(reference.get('params'))} params"
        )
    if tested:
        notes.append("val acc is what the search selected on; test acc is held out")
    if sparse:
        notes.append(SPARSITY_NOTE)
    table.caption = "\n".join(notes) or None
    return table


def _finetuned_cell(run: Any) -> str:
    text = num(run.accuracy)
    if run.test_accuracy is not None:
        text += f" (test {num(run.test_accuracy)})"
    return text


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def summary_table(summaries: list[SearchSummary]) -> Table:
    table = Table(title="searches")
    for column in (
        "search",
        "status",
        "strategy",
        "space",
        "complete",
        "failed",
        "infeasible",
        "best",
    ):
        table.add_column(column)
    for s in summaries:
        table.add_row(
            s.name,
            s.status,
            s.strategy,
            s.space,
            f"{s.complete}/{s.budget}",
            str(s.failed),
            str(s.infeasible),
            num(None if s.best is None else s.best.accuracy),
        )
    return table
