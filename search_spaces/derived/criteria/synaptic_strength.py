"""``synaptic_strength``: Synaptic Strength (Lin et al., NeurIPS 2018), summed per channel.

The paper's synapse is the connection from an input feature map i to an output feature map j
of a convolution, the kernel K_ji; its strength is |gamma_i| * ||K_ji||_F, gamma_i the scale of
the batch norm that normalised map i before the convolution reads it (a normalised map
carries information in proportion to its scale and to the kernel's norm). A channel of a group
is such an input map for every layer that reads it, so its score is the sum of the strengths
of every connection it feeds: per consumer (a convolution, linear or ``Conv1D`` layer reading
the group's channels, or a depthwise convolution, whose kernel reads one channel), the sum
over its outputs j of ||K_jc||_F, times the |scale| of the group's norm layers (batch or
layer norms) met on the way back from that consumer to the layers that produce the channel.
Where several are met (a residual sum adds branches that each end in a norm), their |scales|
add; a consumer that meets none counts its kernels unscaled. A group without a norm layer in
front of any consumer is scored by the kernel norms alone, and says so in a note.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from search_spaces.derived.criteria.base import Batch, Criterion, Scores, register_criterion
from search_spaces.derived.criteria.snip import (
    by_mean,
    connections,
    is_connection_layer,
    pruning_group,
)
from search_spaces.derived.discovery import ChannelGroup, build_graph
from search_spaces.dimensions import SpaceError

NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)


@register_criterion
class SynapticStrength(Criterion):
    """|norm scale| x kernel norm of every connection: ``importance: {criterion:
    synaptic_strength}``."""

    name = "synaptic_strength"

    def __call__(
        self,
        model: nn.Module,
        input_shape: Sequence[int],
        groups: Sequence[ChannelGroup],
        batches: Sequence[Batch],
        seed: int,
    ) -> Scores:
        graph = build_graph(model, input_shape)
        modules = dict(model.named_modules())
        scores, notes = {}, []
        for group in groups:
            tp_group = pruning_group(graph, modules, group)
            score, scaled = strength(graph, tp_group, group.channels)
            if score is None:
                raise SpaceError(f"group {group.name!r}: no layer reads its channels")
            if not scaled:
                notes.append(f"{group.name}: no norm layer, scored by kernel norm")
            scores[group.name] = by_mean(score)
        return scores, notes


def strength(graph: Any, tp_group: Any, channels: int) -> tuple[Tensor | None, bool]:
    """Per root channel, the summed strength of the connections it feeds (None if no layer
    reads it), and whether any consumer met a norm layer of the group."""
    scales = _norm_scales(tp_group, channels)
    score, seen, scaled = torch.zeros(channels, dtype=torch.float64), False, False
    for node, layer, out, idxs, roots in _consumers(graph, tp_group):
        kernels = connections(layer, layer.weight.detach(), out).norm(dim=2).sum(dim=1)
        met = [scales[norm] for norm in _norms_before(node) if norm in scales]
        gamma = torch.stack(met).sum(dim=0)[roots] if met else torch.ones(len(roots))
        score.index_add_(0, torch.tensor(roots), gamma.double() * kernels[idxs].double().cpu())
        seen, scaled = True, scaled or bool(met)
    return (score if seen else None), scaled


def _norm_scales(tp_group: Any, channels: int) -> dict[nn.Module, Tensor]:
    """|scale| per root channel of every norm layer of the group (1 where it has none)."""
    scales: dict[nn.Module, Tensor] = {}
    for item in tp_group:
        norm = item.dep.target.module
        if isinstance(norm, NORMS) and None not in item.root_idxs:
            scale = torch.ones(channels)
            if norm.weight is not None:
                scale[list(item.root_idxs)] = norm.weight.detach().abs().cpu()[list(item.idxs)]
            scales[norm] = scale
    return scales


def _consumers(graph: Any, tp_group: Any) -> Iterator[tuple[Any, Any, bool, list[int], list[int]]]:
    """(node, layer, by its outputs, its channel indices, their root channels) of every layer
    that reads the group's channels: by their inputs, or a depthwise convolution."""
    for item in tp_group:
        layer, roots = item.dep.target.module, list(item.root_idxs)
        if not is_connection_layer(layer) or None in roots:
            continue
        out = graph.is_out_channel_pruning_fn(item.dep.handler)
        if not out or _depthwise(layer):
            yield item.dep.target, layer, out, list(item.idxs), roots


def _depthwise(layer: Any) -> bool:
    groups = int(getattr(layer, "groups", 1))
    return groups > 1 and groups == getattr(layer, "in_channels", 0)


def _norms_before(node: Any) -> set[nn.Module]:
    """The norm layers met going back from ``node`` along every input path, each path
    stopping at the first norm layer or layer of connections."""
    found: set[nn.Module] = set()
    stack, seen = list(node.inputs), set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current.module, NORMS):
            found.add(current.module)
        elif not is_connection_layer(current.module):
            stack.extend(current.inputs)
    return found
