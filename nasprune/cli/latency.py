"""Latency on the user's devices: the known devices, re-measuring a search on this one."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from nasprune.cli.common import JsonOpt, RemeasureOpt, StorageOpt, app, err, out


@app.command()
def devices(storage: StorageOpt = None, as_json: JsonOpt = False) -> None:
    """The devices the store has latency measurements for; `best --device ID` takes the id."""
    from nasprune import queries

    found = queries.devices(storage=storage)
    if as_json:
        rows = [
            {"id": d.device_id, "device": d.fingerprint, "networks": d.networks, "units": d.units}
            for d in found
        ]
        out.print_json(json.dumps(rows))
        return
    if not found:
        out.print("no latency measurements in this store")
        return
    table = Table(title="devices")
    table.add_column("id")
    table.add_column("device fingerprint", overflow="fold")
    table.add_column("networks", justify="right")
    table.add_column("table units", justify="right")
    for d in found:
        table.add_row(d.device_id, d.fingerprint, f"{d.networks:,}", f"{d.units:,}")
    out.print(table)


@app.command()
def measure(
    name: Annotated[str, typer.Argument(help="The search.")],
    backend: Annotated[
        str | None, typer.Option(help="torch | torchscript | onnxruntime [default: the search's]")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu | cuda [default: the search's]")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Threads while timing.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Batch size to time.")] = None,
    all_trials: Annotated[
        bool, typer.Option("--all", help="Every complete trial, not only the Pareto front.")
    ] = False,
    remeasure: RemeasureOpt = False,
    storage: StorageOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Measure a finished search's subnets on this machine, so `best --device` answers here."""
    from nasprune.measuring import measure as do_measure
    from nasprune.queries import device_id

    bar = Progress(
        TextColumn("measure"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet or not err.is_terminal,
    )
    task = bar.add_task("measure", total=None)
    with bar:
        done = do_measure(
            name,
            storage=storage,
            all_trials=all_trials,
            remeasure=remeasure,
            progress=lambda n, total: bar.update(task, completed=n, total=total),
            backend=backend,
            device=device,
            threads=threads,
            batch_size=batch_size,
        )
    out.print(
        f"measured {done.trials} trials of {name} on device {device_id(done.on.device)} "
        f"({done.measured} timed now, {done.reused} already stored), batch size "
        f"{done.on.batch_size}: `nasprune best {name} --device {device_id(done.on.device)}`",
        soft_wrap=True,
    )
    out.print(f"device: {done.on.device}", soft_wrap=True)
