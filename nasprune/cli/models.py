"""Commands on one subnetwork: export it, fine-tune it, validate the accuracy proxy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nasprune.cli.common import (
    JsonOpt,
    LrScheduleOpt,
    QuietOpt,
    StorageOpt,
    app,
    interruptible,
    out,
    progress_bar,
)
from nasprune.cli.tables import SPARSITY_NOTE, num


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
    from nasprune.exporting.subnet import export as do_export

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
    if done.int8_layers:
        where = (
            "the file is ONNX Runtime's QDQ int8 model; the accuracy above is its own"
            if format == "onnx"
            else "this file is the fp32 module; --format onnx writes the int8 model"
        )
        out.print(f"{len(done.int8_layers)} layers run in int8 ({where})", soft_wrap=True)


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
    qat: Annotated[
        bool,
        typer.Option("--qat", help="Train the trial's int8 layers fake-quantized (QAT)."),
    ] = False,
    sparse: Annotated[
        str | None,
        typer.Option(
            metavar="rigl|set",
            help="Sparse training of a trial with weight sparsity: every --sparse-interval "
            "steps each layer drops its smallest weights and regrows as many connections, "
            "by gradient (rigl, Evci et al. 2020) or at random (set, Mocanu et al. 2018); "
            "the share replaced falls from 30% to 0 at 75% of the steps (RigL's cosine "
            "schedule); each layer keeps its number of non-zero weights. Dense CPU kernels "
            "do not run faster on unstructured sparsity.",
        ),
    ] = None,
    sparse_interval: Annotated[
        int, typer.Option(help="Steps between mask updates of --sparse.")
    ] = 100,
    lr_schedule: LrScheduleOpt = "cosine",
    storage: StorageOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Fine-tune a trial's subnet; export and best then use the fine-tuned weights."""
    from nasprune.finetuning.runs import finetune_trial

    bar = progress_bar("fine-tune", quiet=quiet, info=True)
    task = bar.add_task("fine-tune", total=steps, info="")

    def show(step: int, _total: int, loss: float) -> None:
        bar.update(task, completed=step, info=f"loss {loss:.3f}")

    hint = (
        f"the same `nasprune finetune {name} --trial {trial} ...` resumes from the last checkpoint"
    )
    with interruptible(hint), bar:
        result = finetune_trial(
            name, trial, steps=steps, lr=lr, distill=distill, rewind=rewind, storage=storage,
            progress=show, qat=qat, sparse=sparse, sparse_interval=sparse_interval,
            lr_schedule=lr_schedule,
        )  # fmt: skip
    run = result.run
    how = "reused a complete run" if result.reused else (
        f"resumed at step {result.resumed_from}" if result.resumed_from else "trained"
    )  # fmt: skip
    scored = " of its int8 model" if qat else ""
    if sparse is not None:
        how += f", {sparse} mask updates every {sparse_interval} steps"
    out.print(
        f"trial {trial} of {name}: fine-tuned {run.steps_done} steps ({how}); validation "
        f"accuracy{scored} {num(run.accuracy)} (search's proxy {num(result.trial.accuracy)})"
        + ("" if run.test_accuracy is None else f", test {num(run.test_accuracy)}")
        + f"; weights {run.path}",
        soft_wrap=True,
    )


@app.command()
def lottery(
    name: Annotated[str, typer.Argument(help="The search.")],
    trial: Annotated[int, typer.Option(help="Trial number to prune.")],
    rounds: Annotated[int, typer.Option(help="Rounds of pruning after the first training.")],
    rate: Annotated[float, typer.Option(help="Share of the remaining weights pruned a round.")],
    steps: Annotated[int, typer.Option(help="Training steps (batches) of each round.")] = 500,
    rewind_step: Annotated[
        int, typer.Option(help="Rewind survivors to the weights of this step of round 0.")
    ] = 0,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    storage: StorageOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Iterative magnitude pruning with weight rewinding (lottery tickets, Frankle & Carbin
    2019; Frankle et al. 2020): export and best then use the best round's weights."""
    from nasprune.finetuning.lottery import lottery_trial

    bar = progress_bar("lottery", quiet=quiet, info=True)
    task = bar.add_task("lottery", total=(rounds + 1) * steps, info="")

    def show(number: int, step: int, loss: float | None) -> None:
        info = f"round {number}" + ("" if loss is None else f", loss {loss:.3f}")
        bar.update(task, completed=number * steps + step, info=info)

    hint = f"the same `nasprune lottery {name} --trial {trial} ...` resumes where it was"
    with interruptible(hint), bar:
        result = lottery_trial(
            name, trial, rounds=rounds, rate=rate, steps=steps, rewind_step=rewind_step, lr=lr,
            storage=storage, progress=show,
        )  # fmt: skip
    tested = any(r.run.test_accuracy is not None for r in result.rounds)
    table = Table(title=f"lottery of trial {trial} of {name} ({steps} steps a round)")
    for column in ("round", "sparsity", "accuracy", *["test accuracy"] * tested, "run"):
        table.add_column(column, justify="right")
    for r in result.rounds:
        how = "reused" if r.reused else (
            f"resumed at step {r.resumed_from}" if r.resumed_from else "trained"
        )  # fmt: skip
        test = [num(r.run.test_accuracy)] * tested
        table.add_row(str(r.number), f"{r.sparsity:.1%}", num(r.run.accuracy), *test, how)
    table.caption = (
        f"rewound to the weights of step {result.rewind_step} of round 0"
        if result.rewind_step
        else "rewound to the search's weights, no early checkpoint"
    )
    out.print(table)
    best = result.best
    out.print(
        f"best round {best.number}: sparsity {best.sparsity:.1%}, validation accuracy "
        f"{num(best.run.accuracy)} (search's proxy {num(result.trial.accuracy)}); "
        f"`nasprune export {name} --trial {trial} -o FILE` writes it; weights {best.run.path}",
        soft_wrap=True,
    )


@app.command("validate-proxy")
def validate_proxy(
    name: Annotated[str, typer.Argument(help="The search.")],
    samples: Annotated[int, typer.Option(help="Trials to fine-tune, spread over the ranking.")] = 8,
    steps: Annotated[int, typer.Option(help="Fine-tuning steps per trial.")] = 200,
    variant: Annotated[
        list[str] | None,
        typer.Option(
            help="Also rank by the search's config changed so (repeatable), e.g. "
            "mode=prune or schedule=progressive,steps=300; keys: mode, finetune_steps, "
            "finetune_lr_schedule, schedule, steps, epochs, patience, lr_schedule."
        ),
    ] = None,
    repeat: Annotated[
        bool,
        typer.Option(
            "--repeat",
            help="Fine-tune each subnet again from the next seed and rank that against the "
            "first: the instrument's own repeatability, the most a proxy can be expected to reach.",
        ),
    ] = False,
    finetunes: Annotated[
        int,
        typer.Option(
            help="Fine-tune each subnet this many times, from as many seeds, and rank by the "
            "mean (--repeat: as many more): a steadier instrument, at that many times the cost.",
        ),
    ] = 1,
    lr_schedule: LrScheduleOpt = "cosine",
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Kendall tau and Spearman rho between the search's accuracy (and variants') and
    stand-alone fine-tuned accuracy."""
    from nasprune.finetuning.proxy import REPEATED, SEARCH_LOSS
    from nasprune.finetuning.proxy import validate_proxy as run_validation

    bar = progress_bar("fine-tune", quiet=quiet or as_json)
    task = bar.add_task("trials", total=samples)
    with bar:
        result = run_validation(
            name, samples=samples, steps=steps, storage=storage, variants=variant or (),
            repeat=repeat, finetunes=finetunes, lr_schedule=lr_schedule,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    if as_json:
        out.print_json(json.dumps(result.as_json()))
        return
    labels = [r.label for r in result.rankings[1:] if r.label not in (REPEATED, SEARCH_LOSS)]
    losses = [SEARCH_LOSS] if any(r.label == SEARCH_LOSS for r in result.rankings) else []
    again = [REPEATED] if repeat else []
    each = f"{steps} steps each, {result.lr_schedule} rate" + (
        f", mean of {finetunes} seeds" if finetunes > 1 else ""
    )
    table = Table(title=f"proxy validation of {name} ({result.mode} mode, {each})")
    for column in ("trial", "search accuracy", *losses, *labels, "fine-tuned accuracy", *again):
        table.add_column(column, justify="right")
    for p in result.points:
        table.add_row(str(p.trial), num(p.proxy), *(num(p.loss) for _ in losses),
                      *(num(p.variants[t]) for t in labels), num(p.finetuned),
                      *([num(p.again or 0.0)] if repeat else []))  # fmt: skip
    table.caption = "; ".join(
        f"{r.label}: Kendall tau {r.kendall_tau:+.3f} (p = {r.p_value:.3g}), "
        f"Spearman rho {r.spearman_rho:+.3f}"
        for r in result.rankings
    )
    out.print(table)
