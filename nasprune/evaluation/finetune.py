"""Short training of a pruned subnet: cross-entropy, optionally distilled from the dense model.

Weights that weight sparsity set to zero stay zero (the zeros are re-applied after every
step), so a sparse subnet stays exactly as sparse as its plan says; a caller that moves the
zeros instead (dynamic sparse training) passes ``after_step`` and keeps them itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from nasprune.config import LrSchedule
from nasprune.errors import SearchError
from search_spaces.derived.plan import prunable_weights

AfterStep = Callable[[int, torch.optim.Optimizer], None]  # step (1-based), the optimiser
LR_SCHEDULES: tuple[LrSchedule, ...] = ("constant", "cosine")  # nasprune.config.LrSchedule


def checked_lr_schedule(name: str) -> LrSchedule:
    """``name`` as a learning-rate schedule; an unknown one is a ``SearchError`` naming both."""
    for schedule in LR_SCHEDULES:
        if name == schedule:
            return schedule
    raise SearchError(f"unknown --lr-schedule {name!r}; known: {', '.join(LR_SCHEDULES)}")


def lr_factor(schedule: LrSchedule, step: int, steps: int) -> float:
    """The share of the learning rate at ``step`` (from 0) of ``steps``: 1 throughout for
    ``constant``; for ``cosine``, a half cosine from 1 to 0 over the budget (a supernet's
    training and a fine-tuning alike): a cosine run ends on a settled point of its trajectory
    rather than a random one."""
    if schedule == "constant" or steps <= 0:
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / steps))


def zero_masks(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight, mask of its non-zeros) for every conv and linear weight that holds zeros."""
    masks = []
    for module, name in prunable_weights(model):  # the weights weight sparsity prunes
        weight = getattr(module, name)
        nonzero = weight.detach() != 0
        if not bool(nonzero.all()):
            masks.append((weight, nonzero))
    return masks


def batches(
    dataset: Any, batch_size: int, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless seeded shuffled batches of ``dataset``."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        yield from DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=gen)


def finetune(
    model: nn.Module,
    train: DataLoader[Any],
    steps: int,
    lr: float,
    *,
    teacher: nn.Module | None = None,
    seed: int = 0,
    on_step: Callable[[int, float], None] | None = None,
    start: int = 0,
    optimiser_state: dict[str, Any] | None = None,
    after_step: AfterStep | None = None,
    lr_schedule: LrSchedule = "constant",
    horizon: int | None = None,
) -> torch.optim.Optimizer:
    """Train ``model`` in place for ``steps - start`` Adam steps (it ends in eval mode), at
    ``lr`` or, with ``lr_schedule="cosine"``, from ``lr`` decaying to 0 at step ``horizon``
    (``steps`` unless a caller trains a run in chunks).

    With a ``teacher``, the loss adds the KL divergence to the teacher's soft labels. The data
    order depends on ``seed`` and the step, so a run resumed at ``start`` continues the same
    sequence. Returns the optimiser (its state lets a caller checkpoint and resume).
    ``after_step(step, optimiser)`` runs after each optimiser step, the step's gradients still
    in ``.grad``; with it, the weights' zeros are the caller's to keep (none are re-applied).
    """
    with torch.random.fork_rng(devices=[]):  # dropout draws are seeded, the caller's RNG kept
        torch.manual_seed(seed + start)
        return _train(
            model, train, steps, lr, teacher, seed, on_step, start, optimiser_state, after_step,
            lr_schedule, steps if horizon is None else horizon,
        )  # fmt: skip


def _train(
    model: nn.Module,
    train: DataLoader[Any],
    steps: int,
    lr: float,
    teacher: nn.Module | None,
    seed: int,
    on_step: Callable[[int, float], None] | None,
    start: int,
    optimiser_state: dict[str, Any] | None,
    after_step: AfterStep | None,
    lr_schedule: LrSchedule,
    horizon: int,
) -> torch.optim.Optimizer:
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    if optimiser_state is not None:
        optimiser.load_state_dict(optimiser_state)
    masks = zero_masks(model) if after_step is None else []
    if teacher is not None:
        teacher.eval()
    stream = batches(train.dataset, train.batch_size or 64, seed)
    for _ in range(start):
        next(stream)
    model.train()
    for step in range(start, steps):
        x, y = next(stream)
        optimiser.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        if teacher is not None:
            with torch.no_grad():
                soft = teacher(x).softmax(dim=1)
            loss = loss + F.kl_div(logits.log_softmax(dim=1), soft, reduction="batchmean")
        loss.backward()
        if lr_schedule != "constant":  # set each step: a resumed run takes the same rates
            for group in optimiser.param_groups:
                group["lr"] = lr * lr_factor(lr_schedule, step, horizon)
        optimiser.step()
        with torch.no_grad():
            for weight, mask in masks:
                weight.mul_(mask)
        if after_step is not None:
            after_step(step + 1, optimiser)
        if on_step is not None:
            on_step(step + 1, float(loss.detach()))
    model.eval()
    return optimiser
