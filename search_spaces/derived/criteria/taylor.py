"""``taylor``: first-order Taylor importance (|gradient x weight|), the gradients of the
cross-entropy summed over the given training batches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.derived.criteria.base import Batch, register_criterion
from search_spaces.derived.criteria.grouped import GroupCriterion
from search_spaces.derived.discovery import tp
from search_spaces.dimensions import SpaceError


@register_criterion
class Taylor(GroupCriterion):
    """torch-pruning's group Taylor importance: ``importance: {criterion: taylor, batches: 4}``."""

    name = "taylor"
    needs_data = True
    gradients = True

    def importance(self) -> Any:
        return tp().importance.GroupTaylorImportance()

    def prepare(self, model: nn.Module, batches: Sequence[Batch]) -> None:
        accumulate_gradients(model, batches)


def accumulate_gradients(model: nn.Module, batches: Iterable[Batch]) -> None:
    """The gradients of the cross-entropy over ``batches``, summed in ``model``'s parameters
    (eval mode: batch-norm statistics stay as trained)."""
    model.eval()
    model.zero_grad(set_to_none=True)
    seen = 0
    with torch.enable_grad():
        for x, y in batches:
            F.cross_entropy(model(x), y).backward()
            seen += 1
    if seen == 0:
        raise SpaceError("the taylor criterion needs at least one batch of training data")
