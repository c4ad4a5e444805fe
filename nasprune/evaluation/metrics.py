"""Evaluation of a subnet with inherited weights: batch-norm recalibration, accuracy and loss."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader


def calibration_batches(train: DataLoader[Any], count: int, batch_size: int) -> list[torch.Tensor]:
    """A fixed list of input batches from the start of the training set (never reshuffled),
    so that every recalibration of the same subnet gives the same statistics."""
    batches: list[torch.Tensor] = []
    if count == 0:
        return batches
    loader = DataLoader(train.dataset, batch_size=batch_size, shuffle=False)
    for x, _ in loader:
        batches.append(x)
        if len(batches) == count:
            break
    return batches


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Sequence[torch.Tensor]) -> None:
    """Recompute every batch-norm layer's running statistics for the active subnet."""
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    if not norms or not batches:
        model.eval()
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    model.train()
    for x in batches:
        model(x)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()


@torch.no_grad()
def accuracy_and_loss(model: nn.Module, loader: DataLoader[Any]) -> tuple[float, float]:
    """Top-1 accuracy and mean cross-entropy of ``model`` (in eval mode) over ``loader``."""
    model.eval()
    correct, total, loss = 0, 0, 0.0
    for x, y in loader:
        logits = model(x)
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(dim=1) == y).sum())
        total += len(y)
    if total == 0:
        raise ValueError("the validation data is empty")
    return correct / total, loss / total
