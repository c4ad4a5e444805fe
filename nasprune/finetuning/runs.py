"""`nasprune finetune`: fine-tune a chosen trial's subnet and record the run beside the trial.

A run is keyed by its settings (steps, learning rate, distillation, rewind file's checksum,
seed): the same settings again reuse a complete run, or resume an interrupted one from its
last checkpoint (every ``CHECKPOINT_EVERY`` steps and on Ctrl-C). Rewinding starts from a
state dict of the dense model or supernet (an early-training checkpoint, as the lottery-ticket
hypothesis does) instead of the search's weights: the same channels survive, with those
weights, before training. With ``sparse`` (``rigl`` or ``set``), a sparse subnet's mask moves
while it trains, its sparsity kept (:mod:`nasprune.finetuning.sparse`); the mask is saved in
each checkpoint, and the weights are saved as plain zeros.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasprune.config import stored_config
from nasprune.errors import SearchError, user_errors
from nasprune.evaluation.finetune import checked_lr_schedule, finetune
from nasprune.evaluation.metrics import accuracy_and_loss, recalibrate_bn
from nasprune.evaluation.stored import StoredSearch, open_stored
from nasprune.evaluation.supernet import file_sha256
from nasprune.finetuning.sparse import METHODS, DynamicMask
from nasprune.quantization import FakeInt8, Int8Model
from nasprune.store_access import StorageArg, find_trial, open_store
from plumbing import json_hash
from search_spaces import SearchSpace
from search_spaces.derived.loading import check_state_dict
from storage import FinetuneRecord, Store, TrialRecord

CHECKPOINT_EVERY = 100  # steps between resumable checkpoints

OnStep = Callable[[int, int, float], None]  # step, steps, loss
Ranges = dict[str, tuple[float, float]]  # a fake-quantized layer's input and output ranges


@dataclass(frozen=True)
class FinetuneResult:
    run: FinetuneRecord
    trial: TrialRecord
    reused: bool  # a complete run with these settings existed
    resumed_from: int  # the step an interrupted run carried on from (0 if fresh)


def finetune_trial(
    name: str,
    trial: int,
    *,
    steps: int = 500,
    lr: float = 1e-3,
    distill: bool = False,
    rewind: str | Path | None = None,
    storage: StorageArg = None,
    progress: OnStep | None = None,
    space: SearchSpace | None = None,
    qat: bool = False,
    sparse: str | None = None,
    sparse_interval: int = 100,
    lr_schedule: str = "cosine",
) -> FinetuneResult:
    """Fine-tune trial ``trial`` of search ``name`` and record the run in the store. With
    ``qat``, the trial's int8 layers train fake-quantized (quantization-aware training) and
    the run's accuracy is that of its int8 model under ONNX Runtime. With ``sparse``
    (``"rigl"`` or ``"set"``), a trial with weight sparsity moves its mask every
    ``sparse_interval`` steps, each layer keeping its number of non-zero weights.
    ``lr_schedule``: ``cosine`` (the rate decays from ``lr`` to 0 at the last step, so the
    run ends settled rather than anywhere on its trajectory) or ``constant``."""
    if steps < 1:
        raise SearchError(f"--steps must be at least 1, got {steps}")
    _check_sparse(sparse, sparse_interval, qat)
    if not lr > 0:
        raise SearchError(f"--lr must be positive, got {lr}")
    schedule = checked_lr_schedule(lr_schedule)
    rewind_path = None if rewind is None else Path(rewind)
    if rewind_path is not None and not rewind_path.is_file():
        raise SearchError(f"rewind checkpoint not found: {rewind_path}")
    store = open_store(storage)
    with user_errors():
        record = store.get_search(name)
        chosen = find_trial(store, record, trial)
        settings = {
            "steps": steps,
            "lr": lr,
            "distill": distill,
            "rewind": None if rewind_path is None else file_sha256(rewind_path),
            "seed": stored_config(record).seed,  # as the search's proxy and preparation
        } | ({"qat": True} if qat else {})  # the keys of earlier runs stay as they were
        if schedule != "constant":  # as constant-rate runs, from before the schedule, were
            settings["lr_schedule"] = schedule
        if sparse is not None:
            settings |= {"sparse": sparse, "sparse_interval": sparse_interval}
        key = json_hash(settings, 16)
        existing = store.get_finetune(chosen.trial_id, key)
        if existing is not None and existing.complete:
            return FinetuneResult(existing, chosen, True, 0)
        ctx = open_stored(store, record, space)
        if qat and not ctx.space.int8_layers(chosen.arch):
            raise SearchError(
                f"--qat trains int8 layers, and trial {trial} runs every layer in fp32"
            )
        if sparse is not None and not float(chosen.arch.get("sparsity", 0.0)) > 0:
            raise SearchError(
                f"--sparse moves the mask of a sparse subnet, and trial {trial} has no weight "
                "sparsity (a derived space's `sparsity` dimension adds it)"
            )
        paths = _paths(ctx, record.name, chosen.number, key)
        subnet = _starting_subnet(ctx, chosen, rewind_path)
        resume = _resume_point(existing, paths["checkpoint"], subnet)
        run = _train(store, ctx, chosen, subnet, key, settings, paths, resume, progress)
    return FinetuneResult(run, chosen, False, resume.step)


def _check_sparse(sparse: str | None, interval: int, qat: bool) -> None:
    if interval < 1:
        raise SearchError(f"--sparse-interval must be at least 1, got {interval}")
    if sparse is None:
        return
    if sparse not in METHODS:
        raise SearchError(f"unknown --sparse method {sparse!r}; known: {', '.join(METHODS)}")
    if qat:
        raise SearchError("--sparse and --qat do not combine; fine-tune with one of them")


def _paths(ctx: StoredSearch, search: str, number: int, key: str) -> dict[str, Path]:
    folder = Path(ctx.config.supernet.checkpoint_dir) / "finetunes"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{search}-trial{number}-{key}"
    return {"weights": folder / f"{stem}.pt", "checkpoint": folder / f"{stem}.resume.pt"}


def _starting_subnet(ctx: StoredSearch, trial: TrialRecord, rewind: Path | None) -> nn.Module:
    if rewind is None:
        return ctx.subnet(trial)
    state = torch.load(rewind, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise SearchError(f"rewind checkpoint {rewind} does not hold a state dict")
    rewound = copy.deepcopy(ctx.source)
    check_state_dict(rewound, state, str(rewind))
    rewound.load_state_dict(state)
    subnet = ctx.space.extract(rewound, trial.arch)
    recalibrate_bn(subnet, ctx.calibration)
    return subnet


@dataclass(frozen=True)
class ResumePoint:
    """Where a run goes on from: its step, its optimiser's state and, for a quantization-aware
    run, the int8 ranges it started with, and for a sparse-training run, its masks (nothing of
    these at step 0)."""

    step: int = 0
    optimiser: dict[str, Any] | None = None
    int8_ranges: Ranges | None = None
    sparse_masks: dict[str, torch.Tensor] | None = None


def _resume_point(
    existing: FinetuneRecord | None, checkpoint: Path, subnet: nn.Module
) -> ResumePoint:
    """The checkpoint's point, its weights loaded into ``subnet``; step 0 when there is none."""
    if existing is None or existing.steps_done == 0 or not checkpoint.is_file():
        return ResumePoint()
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    subnet.load_state_dict(saved["model"])
    ranges = saved.get("int8_ranges")
    known = None if ranges is None else {k: (float(a), float(b)) for k, (a, b) in ranges.items()}
    return ResumePoint(int(saved["step"]), saved["optimiser"], known, saved.get("sparse_masks"))


def _teacher(ctx: StoredSearch) -> nn.Module:
    """The dense model (derived spaces) or the supernet's largest subnet (built-in ones)."""
    if ctx.space.pretrained:
        return ctx.space.dense_model().eval()
    largest = ctx.space.largest()
    ctx.space.activate(ctx.source, largest)
    return ctx.space.extract(ctx.source, largest).eval()


def _dynamic_mask(
    subnet: nn.Module, settings: dict[str, Any], resume: ResumePoint
) -> DynamicMask | None:
    if "sparse" not in settings:
        return None
    return DynamicMask(
        subnet, str(settings["sparse"]), interval=int(settings["sparse_interval"]),
        steps=int(settings["steps"]), seed=int(settings["seed"]), masks=resume.sparse_masks,
    )  # fmt: skip


def _train(
    store: Store,
    ctx: StoredSearch,
    trial: TrialRecord,
    subnet: nn.Module,
    key: str,
    settings: dict[str, Any],
    paths: dict[str, Path],
    resume: ResumePoint,
    progress: OnStep | None,
) -> FinetuneRecord:
    start, optimiser_state = resume.step, resume.optimiser
    steps = int(settings["steps"])
    teacher = _teacher(ctx) if settings["distill"] else None
    layers = ctx.space.int8_layers(trial.arch) if settings.get("qat") else []
    fake = FakeInt8(subnet, layers, ctx.int8_calibration, resume.int8_ranges) if layers else None
    state = subnet.state_dict if fake is None else fake.plain_state
    extra = {} if fake is None else {"int8_ranges": {k: list(v) for k, v in fake.ranges.items()}}
    sparse = _dynamic_mask(subnet, settings, resume)
    record: dict[str, Any] = {"trial_id": trial.trial_id, "key": key, "settings": settings}
    store.put_finetune(**record, steps_done=start, complete=False, path=None, sha256=None)
    done = start
    while done < steps:
        chunk_end = min(steps, (done // CHECKPOINT_EVERY + 1) * CHECKPOINT_EVERY)
        optimiser = finetune(
            subnet, ctx.loaders.train, chunk_end, float(settings["lr"]), teacher=teacher,
            seed=int(settings["seed"]), start=done, optimiser_state=optimiser_state,
            on_step=None if progress is None else lambda s, loss: progress(s, steps, loss),
            after_step=None if sparse is None else sparse.after_step,
            lr_schedule=settings.get("lr_schedule", "constant"), horizon=steps,
        )  # fmt: skip
        done, optimiser_state = chunk_end, optimiser.state_dict()
        masks = {} if sparse is None else {"sparse_masks": sparse.state()}
        torch.save(
            {"model": state(), "optimiser": optimiser_state, "step": done} | extra | masks,
            paths["checkpoint"],
        )
        store.put_finetune(**record, steps_done=done, complete=False, path=None, sha256=None)
    scored: nn.Module = subnet
    if fake is not None:  # scored as the int8 model the export will write
        fake.remove()
        scored = Int8Model(subnet, layers, ctx.int8_calibration).deployed()
    accuracy, _ = accuracy_and_loss(scored, ctx.loaders.val)
    test = None if ctx.loaders.test is None else accuracy_and_loss(scored, ctx.loaders.test)[0]
    torch.save(subnet.state_dict(), paths["weights"])
    paths["checkpoint"].unlink(missing_ok=True)
    return store.put_finetune(
        **record,
        steps_done=steps,
        complete=True,
        path=str(paths["weights"].resolve()),
        sha256=file_sha256(paths["weights"]),
        accuracy=accuracy,
        test_accuracy=test,
    )
