"""Commands that launch and continue searches, and list what can be searched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from nasprune.cli.common import (
    QuietOpt,
    RemeasureOpt,
    StorageOpt,
    app,
    err,
    fail,
    interruptible,
    out,
    resume_hint,
)
from nasprune.cli.tables import list_table, trial_table


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="YAML or TOML search config.")],
    storage: StorageOpt = None,
    quiet: QuietOpt = False,
    resume_if_exists: Annotated[
        bool, typer.Option(help="Resume a search of the same name and config instead of failing.")
    ] = False,
    remeasure: RemeasureOpt = False,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Local worker processes, this one included [default: execution.workers]."
        ),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(help="local | ray: where the workers run [default: execution.executor]."),
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray: the cluster to join [default: a local one].")
    ] = None,
) -> None:
    """Launch a new search from a config file."""
    from nasprune import api
    from nasprune.cli.progress import RichObserver
    from nasprune.config import load_config

    cfg = load_config(config)
    with interruptible(resume_hint(cfg.name)), RichObserver(err, enabled=not quiet) as observer:
        result = api.run(
            cfg,
            storage=storage,
            observer=observer,
            resume_if_exists=resume_if_exists,
            remeasure=remeasure,
            workers=workers,
            executor=executor,
            address=address,
        )
    _print_result(result)


@app.command()
def resume(
    name: Annotated[str, typer.Argument(help="The search to continue.")],
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials",
            min=1,
            help="New total budget: the search ends with N complete trials in all, not N more. "
            "Lower than the budget shortens the search; lower than the trials already "
            "complete is refused.",
        ),
    ] = None,
    storage: StorageOpt = None,
    quiet: QuietOpt = False,
    remeasure: RemeasureOpt = False,
) -> None:
    """Continue an interrupted search to its total budget (or to a new one, with --trials)."""
    from nasprune import api
    from nasprune.cli.progress import RichObserver

    with interruptible(resume_hint(name)), RichObserver(err, enabled=not quiet) as observer:
        result = api.resume(
            name, trials=trials, storage=storage, observer=observer, remeasure=remeasure
        )
    _print_result(result)


@app.command()
def worker(
    name: Annotated[
        str | None, typer.Argument(help="The search to work on (or --any).", show_default=False)
    ] = None,
    storage: StorageOpt = None,
    max_trials: Annotated[
        int | None, typer.Option(min=1, help="Stop after evaluating this many trials.")
    ] = None,
    any_search: Annotated[
        bool,
        typer.Option(
            "--any", help="Work on every search that has work left, oldest first, and wait."
        ),
    ] = False,
    until_idle: Annotated[
        bool, typer.Option(help="With --any: stop when no search has work left.")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Join a search from any machine that reaches its store, and evaluate its trials."""
    from nasprune import api
    from nasprune.cli.progress import RichObserver

    if (name is None) == (not any_search):
        fail("give a search NAME or --any (not both)")
    if any_search:
        with interruptible("`nasprune worker --any` starts again"):
            with RichObserver(err, enabled=not quiet) as observer:
                count = api.work_on_any(
                    storage=storage, observer=observer, until_idle=until_idle, say=err.print
                )
        out.print(f"no search has work left; this worker evaluated {count} trials")
        return
    assert name is not None
    hint = f"`nasprune worker {name}` joins again; other workers carry on"
    with interruptible(hint), RichObserver(err, enabled=not quiet) as observer:
        result = api.worker(name, storage=storage, observer=observer, max_trials=max_trials)
    _print_result(result)


def _print_result(result: Any) -> None:
    why = {
        "budget": "budget reached",
        "time": "time limit reached; resume to go on",
        "exhausted": "the strategy proposes nothing new",
        "max-trials": "this worker's --max-trials reached",
        "cancelled": "the search was cancelled",
    }[result.stopped_because]
    supernet = "" if not result.supernet else (
        f"; supernet {'reused' if result.reused_supernet else 'trained'}"
    )  # fmt: skip
    out.print(
        f"search {result.name}: {result.completed}/{result.budget} trials complete "
        f"({result.new_trials} new, {why}){supernet}",
        soft_wrap=True,
    )
    for note in result.importance:  # how the channels were ranked, said once per search
        out.print(f"importance: {escape(note)}", soft_wrap=True, highlight=False)
    for warning in result.warnings:
        err.print(f"[bold yellow]warning:[/] {escape(warning)}", soft_wrap=True, highlight=False)
    if result.best is not None:
        out.print(trial_table([result.best], title="best trial within the constraints"))


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
