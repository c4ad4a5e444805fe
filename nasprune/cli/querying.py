"""Read-only questions to the store: status, best, pareto, compare. No torch loads here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from nasprune.cli.common import JsonOpt, StorageOpt, app, err, out
from nasprune.cli.tables import num, summary_table, trial_table

if TYPE_CHECKING:
    from nasprune.queries import Comparison


@app.command()
def status(
    name: Annotated[str | None, typer.Argument(help="One search; all if omitted.")] = None,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the searches in the store and how far each has got."""
    from nasprune import queries as api

    summaries = api.status(name, storage=storage)
    if as_json:
        out.print_json(json.dumps([s.as_json() for s in summaries]))
        return
    if not summaries:
        out.print("no searches in this store")
        return
    out.print(summary_table(summaries))


@app.command()
def best(
    name: Annotated[str, typer.Argument(help="The search.")],
    max_latency_ms: Annotated[
        float | None, typer.Option(help="Latency limit (median, ms).")
    ] = None,
    max_params: Annotated[int | None, typer.Option(help="Parameter limit.")] = None,
    max_macs: Annotated[int | None, typer.Option(help="MAC limit.")] = None,
    device: Annotated[
        str | None,
        typer.Option(help="Latency as measured on this device (`nasprune devices` ids)."),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="With --device: which measured batch size.")
    ] = None,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The most accurate completed subnetwork within the search's constraints; a limit given
    here replaces the search's limit on that metric."""
    from nasprune import queries as api

    store = api.open_reader(storage)  # one connection for the three questions below
    trial = api.best(
        name,
        max_latency_ms=max_latency_ms,
        max_params=max_params,
        max_macs=max_macs,
        device=device,
        batch_size=batch_size,
        storage=store,
    )
    runs = {} if trial is None else api.finetuned(name, [trial], storage=store)
    if as_json:
        run = None if trial is None else runs.get(trial.number)
        out.print_json(json.dumps(api.best_json(name, device, trial, run)))
    elif trial is not None:
        on = "" if device is None else f" (latency measured on device {device})"
        out.print(
            trial_table(
                [trial],
                title=f"best trial of {name}{on}",
                finetuned=runs,
                # the dense model was timed on the search's device only
                reference=api.reference(name, storage=store) if device is None else None,
            )
        )
    if trial is None:
        if not as_json:
            err.print(f"no complete trial of {name!r} satisfies the limits")
        raise typer.Exit(1)


@app.command()
def pareto(
    name: Annotated[str, typer.Argument(help="The search.")],
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The Pareto front of a search on its objectives."""
    from nasprune import queries as api

    front = api.pareto(name, storage=storage)
    if as_json:
        out.print_json(json.dumps({"search": name, "trials": [api.trial_json(t) for t in front]}))
    else:
        out.print(trial_table(front, title=f"Pareto front of {name}"))


@app.command()
def compare(
    names: Annotated[list[str], typer.Argument(help="Two or more searches.")],
    max_latency_ms: Annotated[
        list[float] | None, typer.Option(help="Latency limits to compare under (repeatable).")
    ] = None,
    hypervolume: Annotated[
        bool,
        typer.Option(
            "--hypervolume",
            help="Add each front's hypervolume (metric against latency, up to the slowest "
            "trial of these searches plus 5%, latency as a share of it).",
        ),
    ] = False,
    plot: Annotated[
        Path | None, typer.Option(help="Draw the searches' fronts on one chart here (PNG).")
    ] = None,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare searches side by side: best result under latency limits, evaluations, time."""
    from nasprune import queries as api

    limits = max_latency_ms or []
    rows = api.compare(names, max_latency_ms=limits, storage=storage)
    if plot is not None:
        _fronts(rows, plot)
    if as_json:
        out.print_json(
            json.dumps(
                [
                    {
                        **row.summary.as_json(),
                        "metric": row.metric,
                        "best_under_ms": {str(k): v for k, v in row.best_under.items()},
                        **({"hypervolume": row.hypervolume} if hypervolume else {}),
                    }
                    for row in rows
                ]
            )
        )
        return
    table = Table(title="comparison")
    for column in (
        ["search", "strategy", "complete", "best"]
        + [f"best ≤{x:g} ms" for x in limits]
        + (["hypervolume"] if hypervolume else [])
        + ["eval s"]
    ):
        table.add_column(column, justify="left" if column in ("search", "strategy") else "right")
    for row in rows:
        s = row.summary
        best_value = None if s.best is None else getattr(s.best, row.metric)
        table.add_row(
            s.name,
            s.strategy,
            f"{s.complete}/{s.budget}",
            num(best_value),
            *[num(row.best_under[x]) for x in limits],
            *([num(row.hypervolume)] if hypervolume else []),
            num(s.eval_s, 1),
        )
    out.print(table)
    if plot is not None:
        out.print(f"fronts: {plot}")


def _fronts(rows: list[Comparison], path: Path) -> None:
    """Each search's front (its best metric at or below each latency) as a step line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.5, 4.5), dpi=120)
    for row in rows:
        sign = 1.0 if row.maximize else -1.0
        front: list[tuple[float, float]] = []
        for ms, value in sorted(row.points):
            if not front or sign * value > sign * front[-1][1]:
                front.append((ms, value))
        label = f"{row.summary.name} ({row.summary.strategy})"
        if row.hypervolume is not None:
            label += f", HV {row.hypervolume:.3f}"
        axes.step([p[0] for p in front], [p[1] for p in front], where="post", label=label)
        axes.scatter([p[0] for p in row.points], [p[1] for p in row.points], s=6, alpha=0.3)
    axes.set_xlabel("latency (ms)")
    axes.set_ylabel(rows[0].metric if rows else "")
    axes.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
