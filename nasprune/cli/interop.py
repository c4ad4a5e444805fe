"""Commands that hand a search to other tools: export-optuna."""

from __future__ import annotations

from typing import Annotated

import typer

from nasprune.cli.common import QuietOpt, StorageOpt, app, err, out, progress_bar


@app.command("export-optuna")
def export_optuna(
    name: Annotated[str, typer.Argument(help="The search.")],
    to: Annotated[str, typer.Option("--to", help="Optuna storage URL, e.g. sqlite:///optuna.db")],
    study_name: Annotated[
        str | None, typer.Option(help="The study's name [default: the search's].")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a study of that name in the target.")
    ] = False,
    storage: StorageOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Write a search as an Optuna study, for optuna.load_study, its plots and optuna-dashboard."""
    from nasprune.exporting.optuna import export_optuna as do_export

    bar = progress_bar("export", quiet=quiet)
    task = bar.add_task("trials", total=None)
    with bar:
        done = do_export(
            name, to, storage=storage, study_name=study_name, overwrite=overwrite,
            progress=lambda written, total: bar.update(task, completed=written, total=total),
        )  # fmt: skip
    if done.space_note is not None:
        err.print(f"note: {done.space_note}", soft_wrap=True)
    running = "" if not done.skipped_running else f" ({done.skipped_running} running, skipped)"
    out.print(
        f"wrote {done.written} trials of {name} to study {done.study_name} in {done.url}{running}",
        soft_wrap=True,
    )
