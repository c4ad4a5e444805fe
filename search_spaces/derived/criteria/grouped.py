"""Criteria that are torch-pruning importance classes applied to whole dependency groups:
every layer of a group contributes to its channels' scores, as DepGraph does."""

from __future__ import annotations

import abc
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from search_spaces.derived.criteria.base import Batch, Criterion, Scores, finite
from search_spaces.derived.discovery import ChannelGroup, build_graph, root_pruning_fn
from search_spaces.derived.heads import is_conv1d
from search_spaces.dimensions import SpaceError


class GroupCriterion(Criterion):
    """A torch-pruning group importance (:meth:`importance`) scores each group; scores are
    normalised by the group's mean. Transformers' ``Conv1D`` layers, which torch-pruning
    cannot score, are scored by the ``p``-norm of their weights (of |weight x gradient| where
    ``gradients``). :meth:`prepare` and :meth:`fallback` are hooks.
    """

    p: ClassVar[int] = 1
    gradients: ClassVar[bool] = False

    @abc.abstractmethod
    def importance(self) -> Any:
        """torch-pruning's importance: called on a pruning group, it gives one score per
        root channel (a tensor), or None for a group it cannot score."""

    def prepare(self, model: nn.Module, batches: Sequence[Batch]) -> None:
        """Run once the dependency graph is built, before any group is scored."""

    def fallback(self, tp_group: Any, group: ChannelGroup, notes: list[str]) -> Any:
        """Scores of a group that :meth:`importance` cannot score, or None (then ``Conv1D``)."""
        return None

    def __call__(
        self,
        model: nn.Module,
        input_shape: Sequence[int],
        groups: Sequence[ChannelGroup],
        batches: Sequence[Batch],
        seed: int,
    ) -> Scores:
        graph = build_graph(model, input_shape)
        self.prepare(model, batches)
        importance = self.importance()
        scores: dict[str, list[float]] = {}
        notes: list[str] = []
        modules = dict(model.named_modules())
        for group in groups:
            root = modules[group.root]
            fn = root_pruning_fn(graph, root, group.root_is_input)
            tp_group = graph.get_pruning_group(root, fn, list(range(group.channels)))
            values = quietly(importance, tp_group)
            if values is None:
                values = self.fallback(tp_group, group, notes)
            if values is None:  # layers torch-pruning cannot score (transformers' Conv1D)
                values = self._conv1d_magnitude(graph, tp_group, group.channels)
            if values is None:
                raise SpaceError(f"group {group.name!r} has no weights to score by {self.name}")
            scores[group.name] = [finite(v) for v in values.detach().cpu().tolist()]
        return scores, notes

    def _conv1d_magnitude(self, graph: Any, tp_group: Any, channels: int) -> torch.Tensor | None:
        """Per root channel, the magnitude (or |weight x gradient|) of the group's ``Conv1D``
        weights (stored (in, out)), normalised by the mean; None if it has none."""
        score, seen = torch.zeros(channels), False
        for item in tp_group:
            layer: Any = item.dep.target.module
            if not (isinstance(layer, nn.Module) and is_conv1d(layer)):
                continue
            param: Any = layer.weight
            weight = param.detach()
            if self.gradients:
                grad = param.grad
                weight = weight * grad if grad is not None else torch.zeros_like(weight)
            out = graph.is_out_channel_pruning_fn(item.dep.handler)
            values = weight.abs().pow(self.p).sum(dim=0 if out else 1)
            roots = torch.as_tensor(list(item.root_idxs), dtype=torch.long)
            score.index_add_(0, roots, values[list(item.idxs)].float())  # repeated roots add up
            seen = True
        if not seen:
            return None
        mean = float(score.mean())
        return score / mean if mean > 0 else score


def quietly(importance: Any, tp_group: Any) -> Any:
    """``importance(tp_group)`` with torch-pruning's warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importance(tp_group)
