"""The `nasprune` command line. Heavy libraries load inside commands, so `--help` is instant."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nasprune.tables import SPARSITY_NOTE, list_table, num, summary_table, trial_table

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


@contextmanager
def _interruptible(hint: str) -> Iterator[None]:
    """Ctrl-C ends the command with status 130 and one line saying how to carry on."""
    try:
        yield
    except KeyboardInterrupt:
        err.print(f"interrupted; {hint}")
        raise typer.Exit(130) from None


def _resume_hint(name: str) -> str:
    return f"`nasprune resume {name}` carries on from here"


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="YAML or TOML search config.")],
    storage: StorageOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    resume_if_exists: Annotated[
        bool, typer.Option(help="Resume a search of the same name and config instead of failing.")
    ] = False,
    remeasure: RemeasureOpt = False,
) -> None:
    """Launch a new search from a config file."""
    from nasprune import api
    from nasprune.config import load_config
    from nasprune.progress import RichObserver

    cfg = load_config(config)
    with _interruptible(_resume_hint(cfg.name)), RichObserver(err, enabled=not quiet) as observer:
        result = api.run(
            cfg,
            storage=storage,
            observer=observer,
            resume_if_exists=resume_if_exists,
            remeasure=remeasure,
        )
    _print_result(result)


@app.command()
def resume(
    name: Annotated[str, typer.Argument(help="The search to continue.")],
    storage: StorageOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    remeasure: RemeasureOpt = False,
) -> None:
    """Continue an interrupted search to its total budget."""
    from nasprune import api
    from nasprune.progress import RichObserver

    with _interruptible(_resume_hint(name)), RichObserver(err, enabled=not quiet) as observer:
        result = api.resume(name, storage=storage, observer=observer, remeasure=remeasure)
    _print_result(result)


def _print_result(result: Any) -> None:
    why = {
        "budget": "budget reached",
        "time": "time limit reached; resume to go on",
        "exhausted": "the strategy proposes nothing new",
    }[result.stopped_because]
    out.print(
        f"search {result.name}: {result.completed}/{result.budget} trials complete "
        f"({result.new_trials} new, {why}); supernet "
        f"{'reused' if result.reused_supernet else 'trained'}",
        soft_wrap=True,
    )
    if result.best is not None:
        out.print(trial_table([result.best], title="best trial within the constraints"))


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
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The most accurate completed subnetwork within the limits."""
    from nasprune import queries as api

    store = api.open_store(storage)  # one connection for the three questions below
    trial = api.best(
        name,
        max_latency_ms=max_latency_ms,
        max_params=max_params,
        max_macs=max_macs,
        storage=store,
    )
    runs = {} if trial is None else api.finetuned(name, [trial], storage=store)
    if as_json:
        found = None if trial is None else api.trial_json(trial)
        if found is not None:
            run = runs.get(trial.number)  # type: ignore[union-attr]
            found["finetuned"] = None if run is None else _finetune_json(run)
        out.print_json(json.dumps({"search": name, "trial": found}))
    elif trial is not None:
        out.print(
            trial_table(
                [trial],
                title=f"best trial of {name}",
                finetuned=runs,
                reference=api.reference(name, storage=store),
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
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare searches side by side: best result under latency limits, evaluations, time."""
    from nasprune import queries as api

    limits = max_latency_ms or []
    rows = api.compare(names, max_latency_ms=limits, storage=storage)
    if as_json:
        out.print_json(
            json.dumps(
                [
                    {
                        **row.summary.as_json(),
                        "metric": row.metric,
                        "best_under_ms": {str(k): v for k, v in row.best_under.items()},
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
            num(s.eval_s, 1),
        )
    out.print(table)


@app.command()
def devices(storage: StorageOpt = None, as_json: JsonOpt = False) -> None:
    """The devices (fingerprints) the store has latency measurements for."""
    from nasprune import queries

    found = queries.devices(storage=storage)
    if as_json:
        out.print_json(json.dumps([{"device": d, "measurements": n} for d, n in found]))
        return
    if not found:
        out.print("no latency measurements in this store")
        return
    table = Table(title="devices")
    table.add_column("device fingerprint", overflow="fold")
    table.add_column("measurements", justify="right")
    for device, count in found:
        table.add_row(device, f"{count:,}")
    out.print(table)


@app.command()
def export(
    name: Annotated[str, typer.Argument(help="The search.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    trial: Annotated[int | None, typer.Option(help="Trial number to export.")] = None,
    max_latency_ms: Annotated[
        float | None, typer.Option(help="Export the best under this.")
    ] = None,
    format: Annotated[
        str, typer.Option("--format", help="state (weights + plan) | torchscript | onnx")
    ] = "state",
    inherited: Annotated[
        bool, typer.Option(help="Export the search's weights even if the trial was fine-tuned.")
    ] = False,
    storage: StorageOpt = None,
) -> None:
    """Write a subnetwork as a standalone model, with its pruning plan as JSON beside it."""
    from nasprune.exporter import export as do_export

    done = do_export(
        name,
        output,
        trial=trial,
        max_latency_ms=max_latency_ms,
        storage=storage,
        format=format,  # type: ignore[arg-type]
        inherited=inherited,
    )
    weights = "fine-tuned" if done.finetuned is not None else "inherited"
    out.print(
        f"wrote {done.path} ({format}, {weights} weights) and {done.plan_path}: trial "
        f"{done.trial.number}, {done.params:,} parameters, validation accuracy "
        f"{done.accuracy:.4f} (stored {num(done.trial.accuracy)})",
        soft_wrap=True,
    )
    if "sparsity" in done.trial.arch and float(done.trial.arch["sparsity"]) > 0:
        out.print(SPARSITY_NOTE, soft_wrap=True)


@app.command()
def finetune(
    name: Annotated[str, typer.Argument(help="The search.")],
    trial: Annotated[int, typer.Option(help="Trial number to fine-tune.")],
    steps: Annotated[int, typer.Option(help="Training steps (batches).")] = 500,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    distill: Annotated[
        bool, typer.Option("--distill", help="Also learn the dense model's soft labels.")
    ] = False,
    rewind: Annotated[
        Path | None,
        typer.Option(help="Start from this dense-model state dict (e.g. an early checkpoint)."),
    ] = None,
    storage: StorageOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Fine-tune a trial's subnet; export and best then use the fine-tuned weights."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from nasprune.finetune_runs import finetune_trial

    columns = (BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"))
    bar = Progress(
        TextColumn("fine-tune"), *columns, console=err, disable=quiet or not err.is_terminal
    )
    task = bar.add_task("fine-tune", total=steps, info="")

    def show(step: int, _total: int, loss: float) -> None:
        bar.update(task, completed=step, info=f"loss {loss:.3f}")

    hint = (
        f"the same `nasprune finetune {name} --trial {trial} ...` resumes "
        "from the last checkpoint"
    )
    with _interruptible(hint), bar:
        result = finetune_trial(
            name, trial, steps=steps, lr=lr, distill=distill, rewind=rewind, storage=storage,
            progress=show,
        )  # fmt: skip
    run = result.run
    how = "reused a complete run" if result.reused else (
        f"resumed at step {result.resumed_from}" if result.resumed_from else "trained"
    )  # fmt: skip
    out.print(
        f"trial {trial} of {name}: fine-tuned {run.steps_done} steps ({how}); validation "
        f"accuracy {num(run.accuracy)} (search's proxy {num(result.trial.accuracy)})"
        + ("" if run.test_accuracy is None else f", test {num(run.test_accuracy)}")
        + f"; weights {run.path}",
        soft_wrap=True,
    )


@app.command("validate-proxy")
def validate_proxy(
    name: Annotated[str, typer.Argument(help="The search.")],
    samples: Annotated[int, typer.Option(help="Trials to fine-tune, spread over the ranking.")] = 8,
    steps: Annotated[int, typer.Option(help="Fine-tuning steps per trial.")] = 200,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Kendall tau between the search's accuracy and stand-alone fine-tuned accuracy."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from nasprune.proxy import validate_proxy as run_validation

    bar = Progress(TextColumn("fine-tune"), BarColumn(), MofNCompleteColumn(), console=err,
                   disable=as_json or not err.is_terminal)  # fmt: skip
    task = bar.add_task("trials", total=samples)
    with bar:
        result = run_validation(
            name, samples=samples, steps=steps, storage=storage,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    if as_json:
        payload = {
            "search": name, "mode": result.mode, "steps": steps,
            "kendall_tau": result.kendall_tau, "p_value": result.p_value,
            "points": [p.__dict__ for p in result.points],
        }  # fmt: skip
        out.print_json(json.dumps(payload))
        return
    table = Table(title=f"proxy validation of {name} ({result.mode} mode, {steps} steps each)")
    for column in ("trial", "search accuracy", "fine-tuned accuracy"):
        table.add_column(column, justify="right")
    for p in result.points:
        table.add_row(str(p.trial), num(p.proxy), num(p.finetuned))
    table.caption = f"Kendall tau {result.kendall_tau:+.3f} (p = {result.p_value:.3g})"
    out.print(table)


def _finetune_json(run: Any) -> dict[str, Any]:
    return {
        "accuracy": run.accuracy,
        "test_accuracy": run.test_accuracy,
        "steps": run.steps_done,
        "settings": run.settings,
        "path": run.path,
    }


@app.command()
def spaces() -> None:
    """List the registered search spaces."""
    from search_spaces import list_spaces

    _print_list("search spaces", list_spaces())


@app.command()
def strategies() -> None:
    """List the registered search strategies."""
    from strategies import list_strategies

    _print_list("strategies", list_strategies())


@app.command()
def schema() -> None:
    """Print the JSON schema of the search config."""
    from nasprune.config import json_schema

    out.print_json(json.dumps(json_schema()))


def _print_list(title: str, entries: dict[str, str]) -> None:
    out.print(list_table(title, entries))


def main() -> None:
    """Console entry point: a user's mistake is one line on stderr and exit status 2."""
    try:
        app()
    except Exception as exc:
        from nasprune.errors import is_user_error

        if is_user_error(exc):
            _fail(str(exc))
        raise


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    sys.exit(2)
