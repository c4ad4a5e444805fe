"""Supernet training on a budget: steps (sized to the data and the model unless the config
says), a time limit, early stopping, and a checkpoint at every evaluation that a killed run
resumes from.

Each step trains the subnets of the schedule (:mod:`nasprune.evaluation.schedules`): the first
on the labels, the others on its soft labels (in-place distillation), gradients accumulated
into the shared weights before one optimiser step. About five times per training, and at least
once per epoch, the largest, a middle and the smallest subnet are evaluated on the validation
data (batch norms recalibrated, in a copy of the random state, so training goes on exactly as
it would have); training stops early once neither the smallest nor the middle subnet gained
``MIN_GAIN`` over ``supernet.patience`` evaluations, and not before ``NO_STOP_BEFORE`` of the
budget (a few noisy evaluations of a tiny validation set prove nothing) nor, for a sized
budget, before its floor (the fewest steps found to rank well).

The state at each evaluation (weights, optimiser, step, the random states of the schedule, of
torch and of the data order, the evaluations so far, the seconds spent) is written to a file
whose checksum the store keeps; training started again with the same recipe resumes from it
and ends with the weights an uninterrupted run would have (a time limit aside).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasprune.config import SearchConfig
from nasprune.errors import SearchError
from nasprune.evaluation.data import Loaders
from nasprune.evaluation.finetune import lr_factor
from nasprune.evaluation.metrics import accuracy_and_loss, recalibrate_bn
from nasprune.evaluation.schedules import Sampler
from search_spaces import Architecture, SearchSpace

PRETRAINED_EPOCHS = 3  # a supernet derived from a trained model starts from its weights
SCRATCH_EPOCHS = 10  # a built-in supernet starts from random weights
# The sized budget's bounds. From random weights ten epochs of a few hundred samples are too
# few steps: at 100 steps the built-in 1-d CNN's largest subnet scored below its smallest on
# PLAID (537 series) and the search ranked its subnets at tau -0.20; at 1,500 at +0.76.
MIN_PRETRAINED_STEPS, MIN_SCRATCH_STEPS, MAX_STEPS = 100, 1000, 3000
EVALUATIONS = 5  # about this many per training, at least one per epoch ...
MAX_EVALUATIONS = 10  # ... but no more than this many (a tiny dataset's epochs are steps)
MIN_GAIN = 0.001  # validation accuracy a subnet must gain to count as improving
NO_STOP_BEFORE = 0.3  # early stopping waits for this share of the budget, and for a sized
# budget's floor (the fewest steps found to rank well): on PLAID (seed 2) a plateau ended the
# built-in 1-d CNN's supernet at 700 of its 1,000 steps with its largest subnet scoring below
# its middle one; trained the 1,000 steps, the three are in order.


@dataclass(frozen=True)
class Budget:
    """How long a supernet trains, and why that long."""

    steps: int
    seconds: float | None
    steps_per_epoch: int
    every: int  # steps between evaluations (and checkpoints)
    why: str  # "supernet.steps", "supernet.epochs", or the sizing rule
    no_stop_before: int  # early stopping waits for this step


def budget_of(config: SearchConfig, space: SearchSpace, steps_per_epoch: int) -> Budget:
    """The step budget the config asks for, else one sized to the data and the model."""
    settings, per_epoch = config.supernet, max(1, steps_per_epoch)
    least = 0  # a budget the config gives has no floor
    if settings.steps is not None:
        steps, why = settings.steps, "supernet.steps"
    elif settings.epochs is not None:
        steps, why = settings.epochs * per_epoch, f"supernet.epochs ({settings.epochs})"
    else:
        if space.pretrained:
            epochs, least, start = PRETRAINED_EPOCHS, MIN_PRETRAINED_STEPS, "trained weights"
        else:
            epochs, least, start = SCRATCH_EPOCHS, MIN_SCRATCH_STEPS, "random weights"
        steps = min(MAX_STEPS, max(least, epochs * per_epoch))
        why = f"sized: {epochs} epochs of {per_epoch} steps from {start}, within {least}-3000"
    once_an_epoch = min(per_epoch, math.ceil(steps / EVALUATIONS))
    every = max(1, once_an_epoch, math.ceil(steps / MAX_EVALUATIONS))
    no_stop_before = max(least, math.ceil(NO_STOP_BEFORE * steps))
    return Budget(steps, settings.time, per_epoch, every, why, no_stop_before)


@dataclass
class Progress:
    """What the training reports at each evaluation (and keeps in its checkpoint)."""

    step: int
    steps: int
    loss: float  # mean training loss since the last evaluation
    accuracy: dict[str, float] = field(default_factory=dict)  # largest, middle, smallest
    seconds: float = 0.0
    resumed_at: int = 0  # the step a killed training resumed from (0: started fresh)


@dataclass
class Outcome:
    """How a training ended: its last progress, why it stopped, the evaluations it made."""

    progress: Progress
    stopped_because: str  # "budget", "time", "plateau"
    history: list[dict[str, float]] = field(default_factory=list)


Report = Callable[[Progress], None]
Save = Callable[[dict[str, Any]], None]  # writes the resumable state (and records it)


def supernet_lr(config: SearchConfig, space: SearchSpace) -> float:
    """The config's learning rate, else 0.001 for a supernet that starts from a trained model
    (a derived space) and 0.01 for one trained from scratch."""
    if config.supernet.lr is not None:
        return config.supernet.lr
    return 1e-3 if space.pretrained else 1e-2


def train_supernet(
    space: SearchSpace,
    loaders: Loaders,
    calibration: list[torch.Tensor],
    config: SearchConfig,
    save: Save,
    resume: dict[str, Any] | None = None,
    report: Report | None = None,
) -> tuple[nn.Module, Outcome]:
    """Train a supernet (from ``resume``, a saved state, when given), seeded by
    ``config.seed``; returns it in eval mode and how the training ended."""
    settings = config.supernet
    if len(loaders.train) == 0:
        raise SearchError("the training data is empty: there is nothing to train the supernet on")
    budget = budget_of(config, space, len(loaders.train))
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    supernet = space.build_supernet()
    lr = supernet_lr(config, space)
    optimiser = torch.optim.Adam(supernet.parameters(), lr=lr, weight_decay=settings.weight_decay)
    sampler = Sampler(settings.schedule, space, budget.steps, settings.random_subnets)
    run = _Run(budget, history=[], step=0, seconds=0.0, resumed_at=0)
    if resume is not None:
        run.restore(resume, supernet, optimiser, rng, loaders)
    batches = _batches(loaders, run)
    started, total, count = time.monotonic() - run.seconds, 0.0, 0
    stopped = "budget"
    while run.step < budget.steps:
        if budget.seconds is not None and time.monotonic() - started >= budget.seconds:
            stopped, run.seconds = "time", time.monotonic() - started
            break
        x, y = next(batches)
        for group in optimiser.param_groups:
            group["lr"] = lr * lr_factor(settings.lr_schedule, run.step, budget.steps)
        total += _step(space, supernet, optimiser, sampler.archs(run.step, rng), x, y, settings)
        count += 1
        run.step += 1
        run.seconds = time.monotonic() - started
        if run.step % budget.every == 0 or run.step == budget.steps:
            run.loss, total, count = total / count, 0.0, 0
            run.evaluate(space, supernet, loaders, calibration)
            save(run.state(supernet, optimiser, rng, loaders))
        if report is not None:
            report(run.progress(total / count if count else run.loss))
        late = budget.no_stop_before <= run.step < budget.steps  # the budget's end is no plateau
        if run.step % budget.every == 0 and late and run.plateaued(settings.patience):
            stopped = "plateau"
            break
    supernet.eval()
    return supernet, Outcome(run.progress(run.loss), stopped, run.history)


def _step(
    space: SearchSpace,
    supernet: nn.Module,
    optimiser: torch.optim.Optimizer,
    archs: list[Architecture],
    x: torch.Tensor,
    y: torch.Tensor,
    settings: Any,
) -> float:
    """One optimiser step over ``archs``; returns the summed loss."""
    supernet.train()
    optimiser.zero_grad()
    teacher: torch.Tensor | None = None
    total = 0.0
    for arch in archs:
        space.activate(supernet, arch)
        logits = supernet(x)
        if teacher is None or not settings.distill:
            loss = F.cross_entropy(logits, y)
            teacher = logits.detach().softmax(dim=1)
        else:
            loss = F.kl_div(logits.log_softmax(dim=1), teacher, reduction="batchmean")
        loss.backward()
        total += float(loss.detach())
    optimiser.step()
    return total


def _batches(loaders: Loaders, run: _Run) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Training batches, epoch after epoch, from where ``run`` is (a resumed run skips the
    batches of its epoch that it trained on before)."""
    skip = run.step % run.budget.steps_per_epoch
    while True:
        run.epoch_order = _order_state(loaders)
        yield from islice(iter(loaders.train), skip, None)
        skip = 0


def _order_state(loaders: Loaders) -> torch.Tensor | None:
    generator = getattr(loaders.train, "generator", None)
    return None if generator is None else generator.get_state()


@dataclass
class _Run:
    """A training's position: steps done, evaluations, seconds; saved and restored whole."""

    budget: Budget
    history: list[dict[str, float]]
    step: int
    seconds: float
    resumed_at: int
    epoch_order: torch.Tensor | None = None  # the data order's random state at epoch start
    loss: float = 0.0  # mean training loss between the last two evaluations

    def evaluate(
        self,
        space: SearchSpace,
        supernet: nn.Module,
        loaders: Loaders,
        calibration: list[torch.Tensor],
    ) -> None:
        accuracy = _validation(space, supernet, loaders, calibration)
        self.history.append({"step": float(self.step), "loss": self.loss, **accuracy})

    def progress(self, loss: float) -> Progress:
        return Progress(self.step, self.budget.steps, loss, self.last_accuracy(), self.seconds,
                        self.resumed_at)  # fmt: skip

    def last_accuracy(self) -> dict[str, float]:
        last = self.history[-1] if self.history else {}
        return {k: v for k, v in last.items() if k not in ("step", "loss")}

    def plateaued(self, patience: int) -> bool:
        """Whether the smallest and the middle subnet gained nothing over ``patience``
        evaluations (MIN_GAIN over their best before them)."""
        if patience == 0 or len(self.history) <= patience:
            return False
        before, recent = self.history[:-patience], self.history[-patience:]
        return all(
            max(h[name] for h in recent) < max(h[name] for h in before) + MIN_GAIN
            for name in ("smallest", "middle")
        )

    def state(
        self, supernet: nn.Module, optimiser: torch.optim.Optimizer, rng: random.Random,
        loaders: Loaders,
    ) -> dict[str, Any]:  # fmt: skip
        version, internal, gauss = rng.getstate()
        per_epoch = self.budget.steps_per_epoch
        return {
            "model": supernet.state_dict(),
            "optimiser": optimiser.state_dict(),
            "step": self.step,
            "seconds": self.seconds,
            "history": self.history,
            "rng": [version, list(internal), gauss],
            "torch_rng": torch.get_rng_state(),
            # where the next batch's epoch starts: a finished epoch's end is the next start
            "order": _order_state(loaders) if self.step % per_epoch == 0 else self.epoch_order,
        }

    def restore(
        self, saved: dict[str, Any], supernet: nn.Module, optimiser: torch.optim.Optimizer,
        rng: random.Random, loaders: Loaders,
    ) -> None:  # fmt: skip
        supernet.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        self.step = self.resumed_at = int(saved["step"])
        self.seconds, self.history = float(saved["seconds"]), list(saved["history"])
        self.loss = self.history[-1]["loss"] if self.history else 0.0
        version, internal, gauss = saved["rng"]
        rng.setstate((version, tuple(internal), gauss))
        torch.set_rng_state(saved["torch_rng"])
        generator = getattr(loaders.train, "generator", None)
        if generator is not None and saved["order"] is not None:
            generator.set_state(saved["order"])


def middle(space: SearchSpace) -> Architecture:
    """The subnet at every dimension's middle choice."""
    return {d.name: d.choices[(len(d.choices) - 1) // 2] for d in space.dimensions()}


def _validation(
    space: SearchSpace, supernet: nn.Module, loaders: Loaders, calibration: list[torch.Tensor]
) -> dict[str, float]:
    """Validation accuracy of the largest, middle and smallest subnets, each with its batch
    norms recalibrated, leaving the training's random state and the supernet's batch-norm
    statistics as they were."""
    buffers = copy.deepcopy({k: v for k, v in supernet.state_dict().items() if "running" in k
                             or "num_batches" in k})  # fmt: skip
    found = {}
    with torch.random.fork_rng(devices=[]):
        for name, arch in (("largest", space.largest()), ("middle", middle(space)),
                           ("smallest", space.smallest())):  # fmt: skip
            space.activate(supernet, arch)
            recalibrate_bn(supernet, calibration)
            found[name] = accuracy_and_loss(supernet, loaders.val)[0]
    supernet.load_state_dict(buffers, strict=False)
    return found
