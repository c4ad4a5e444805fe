"""Latency on the user's devices: the known devices, re-measuring a search on this one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from nasprune.cli.common import (
    JsonOpt,
    QuietOpt,
    RemeasureOpt,
    StorageOpt,
    app,
    interruptible,
    out,
    progress_bar,
)

if TYPE_CHECKING:
    from rich.progress import TaskID


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
        str | None,
        typer.Option(help="torch | torchscript | onnxruntime | tensorrt [default: the search's]"),
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu | cuda [default: the search's]")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Threads while timing.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Batch size to time.")] = None,
    all_trials: Annotated[
        bool, typer.Option("--all", help="Every complete trial, not only the Pareto front.")
    ] = False,
    remeasure: RemeasureOpt = False,
    storage: StorageOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Measure a finished search's subnets on this machine, so `best --device` answers here."""
    from nasprune.latency.measure import measure as do_measure
    from nasprune.queries import device_id

    bar = progress_bar(quiet=quiet)
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
    if done.measured:
        out.print(done.drift.sentence(), soft_wrap=True)


@app.command()
def calibrate(
    config: Annotated[Path, typer.Argument(help="The search config whose space to calibrate.")],
    samples: Annotated[
        int, typer.Option(min=0, help="Random architectures whose units fill the table.")
    ] = 64,
    networks: Annotated[
        int, typer.Option(min=5, help="Whole subnetworks timed to fit the correction.")
    ] = 24,
    remeasure: RemeasureOpt = False,
    storage: StorageOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Time the units of a space on this machine: a lookup table and a latency predictor."""
    from nasprune.config import load_config
    from nasprune.latency.calibrate import calibrate as do_calibrate
    from nasprune.queries import device_id

    cfg = load_config(config)
    bar = progress_bar(quiet=quiet)
    tasks: dict[str, TaskID] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    with interruptible("`nasprune calibrate` again carries on from here"), bar:
        done = do_calibrate(
            cfg,
            storage=storage,
            samples=samples,
            networks=networks,
            remeasure=remeasure,
            progress=progress,
        )
    errors = ", ".join(f"{kind} {error:.1%}" for kind, error in done.errors.items())
    out.print(
        f"calibrated {done.space} on device {device_id(done.on.device)} (batch size "
        f"{done.on.batch_size}) in {done.seconds:.1f} s: {done.units} units "
        f"({done.units_timed} timed now), {done.networks} whole networks "
        f"({done.networks_timed} timed now); predictor: {done.model} (cross-validated median "
        f"error: {errors})",
        soft_wrap=True,
    )
    out.print(done.drift.sentence(), soft_wrap=True)


@app.command("latency-report")
def latency_report(
    name: Annotated[str, typer.Argument(help="The search.")],
    device: Annotated[
        str | None, typer.Option(help="A device id [default: this machine, the search's settings]")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Write the scatter plot here (PNG).")] = None,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Predicted against measured latency of a search's trials: share within +-10%, errors."""
    from nasprune.latency.report import latency_report as build_report
    from nasprune.queries import device_id

    report = build_report(name, device=device, plot=plot, storage=storage)
    summary = {
        "search": name,
        "device": report.device,
        "model": report.model,
        "trials": len(report.points),
        "unpredicted": report.unpredicted,
        "share_within_10pct": report.share_within,
        "median_error": report.median_error,
        "p90_error": report.p90_error,
        "int8_trials": 0 if report.int8_share_within is None else report.int8_share_within[1],
        "int8_share_within_10pct": (
            None if report.int8_share_within is None else report.int8_share_within[0]
        ),
        "speed_drift": report.drift.as_json(),
        "calibration_speed_drift": report.calibration_drift.as_json(),
        "plot": None if plot is None else str(plot),
    }
    if as_json:
        out.print_json(json.dumps(summary))
        return
    out.print(
        f"{name} on device {device_id(report.device)}: {len(report.points)} measured trials, "
        f"{report.share_within:.0%} predicted within +-10%, median error "
        f"{report.median_error:.1%}, 90th percentile {report.p90_error:.1%} (predictor: "
        f"{report.model})" + ("" if plot is None else f"; plot: {plot}"),
        soft_wrap=True,
    )
    if report.int8_share_within is not None:
        share, count = report.int8_share_within
        out.print(f"int8 trials: {count}, {share:.0%} predicted within +-10%", soft_wrap=True)
    out.print(f"trials: {report.drift.sentence()}", soft_wrap=True)
    out.print(f"calibration: {report.calibration_drift.sentence()}", soft_wrap=True)
