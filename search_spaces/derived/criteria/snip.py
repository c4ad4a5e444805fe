"""``snip``: SNIP's connection sensitivity (Lee et al., ICLR 2019), per channel the sum of
|weight x gradient| over every connection the channel takes away.

SNIP puts a mask c_j = 1 on every weight w_j of the convolutions and linear layers and scores
the connection by |dL/dc_j| = |w_j * dL/dw_j|, L the cross-entropy (in the paper, of one
batch; here summed over the ``importance.batches`` training batches, in eval mode). A
channel's score is the sum of the saliencies of its connections in every layer of its group:
the producers' output slices and the consumers' input slices. SNIP's normalisation by the sum
over all connections is one constant, which the per-group mean removes.

How it differs from ``taylor`` (torch-pruning's GroupTaylorImportance, on gradients summed the
same way): both sum per-weight |w * g| per channel (torch-pruning's mean over the group's
layers is one more constant per group), so where a group is made of plain convolutions and
linear layers they compute the same numbers (the zoo's resnet, densenet and cnn1d, and the
mlp and attention groups of its vit). They differ in two places. torch-pruning's Taylor skips
depthwise convolutions (their pruning function is not the convolution's), whose kernels are
connections that SNIP counts: the expanded groups of a MobileNet. And it adds a LayerNorm's
|scale x gradient| per channel, which is no connection (SNIP masks weights of convolutions and
linear layers only): a transformer's residual stream. Batch norms count in neither.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from search_spaces.derived.criteria.base import (
    Batch,
    Criterion,
    Scores,
    finite,
    register_criterion,
)
from search_spaces.derived.criteria.taylor import accumulate_gradients
from search_spaces.derived.discovery import ChannelGroup, build_graph, root_pruning_fn
from search_spaces.derived.heads import is_conv1d
from search_spaces.dimensions import SpaceError


@register_criterion
class Snip(Criterion):
    """SNIP's connection sensitivity: ``importance: {criterion: snip, batches: 4}``."""

    name = "snip"
    needs_data = True

    def __call__(
        self,
        model: nn.Module,
        input_shape: Sequence[int],
        groups: Sequence[ChannelGroup],
        batches: Sequence[Batch],
        seed: int,
    ) -> Scores:
        if not batches:
            raise SpaceError("the snip criterion needs at least one batch of training data")
        graph = build_graph(model, input_shape)
        accumulate_gradients(model, batches)
        modules = dict(model.named_modules())
        scores = {}
        for group in groups:
            score = saliency(graph, pruning_group(graph, modules, group), group.channels)
            if score is None:
                raise SpaceError(f"group {group.name!r} has no weights to score by snip")
            scores[group.name] = by_mean(score)
        return scores, []


def saliency(graph: Any, tp_group: Any, channels: int) -> Tensor | None:
    """Per root channel of ``tp_group``, the sum of |weight x gradient| over every connection it
    takes away (a weight without a gradient counts zero), in double precision; None if the
    group has no convolution or linear layer."""
    score, seen = torch.zeros(channels, dtype=torch.float64), False
    for layer, out, idxs, roots in layer_slices(graph, tp_group):
        weight = layer.weight
        grad = weight.grad if weight.grad is not None else torch.zeros_like(weight)
        values = connections(layer, (weight.detach() * grad).abs(), out).sum(dim=(1, 2))
        score.index_add_(0, torch.tensor(roots), values[idxs].double().cpu())
        seen = True
    return score if seen else None


def layer_slices(graph: Any, tp_group: Any) -> Iterator[tuple[Any, bool, list[int], list[int]]]:
    """(layer, by its outputs, its channel indices, the group's root channels they are) for
    every convolution and linear layer of ``tp_group`` (transformers' ``Conv1D`` included)."""
    for item in tp_group:
        layer = item.dep.target.module
        roots = list(item.root_idxs)
        if is_connection_layer(layer) and None not in roots:
            yield layer, graph.is_out_channel_pruning_fn(item.dep.handler), list(item.idxs), roots


def is_connection_layer(module: object) -> bool:
    """A layer of weighted connections: a convolution, a linear layer, a ``Conv1D``."""
    weighted = isinstance(module, nn.modules.conv._ConvNd | nn.Linear)
    return weighted or (isinstance(module, nn.Module) and is_conv1d(module))


def connections(layer: Any, values: Tensor, out: bool) -> Tensor:
    """``values`` (shaped like ``layer``'s weight) as (channel, connected channel, kernel
    element): by output channel if ``out``, else by input channel, each with the channels of
    the other side it connects to (grouped and depthwise convolutions included)."""
    if is_conv1d(layer):  # stored (in, out)
        values = values.t()
    groups = int(getattr(layer, "groups", 1))
    if getattr(layer, "transposed", False):  # stored (in, out / groups, *kernel)
        ins, outs = values.shape[0], values.shape[1]
        per = values.reshape(groups, ins // groups, outs, -1).transpose(1, 2)
        values = per.reshape(groups * outs, ins // groups, -1)
    kernel = values.reshape(values.shape[0], values.shape[1], -1)
    if out:
        return kernel
    outs, per_group, size = kernel.shape
    grouped = kernel.reshape(groups, outs // groups, per_group, size).transpose(1, 2)
    return grouped.reshape(groups * per_group, outs // groups, size)


def pruning_group(graph: Any, modules: dict[str, nn.Module], group: ChannelGroup) -> Any:
    """torch-pruning's group of every channel of ``group``."""
    root = modules[group.root]
    fn = root_pruning_fn(graph, root, group.root_is_input)
    return graph.get_pruning_group(root, fn, list(range(group.channels)))


def by_mean(score: Tensor) -> list[float]:
    """``score`` over its mean (as it is where the mean is not positive), finite floats."""
    mean = float(score.mean())
    values = score / mean if mean > 0 else score
    return [finite(v) for v in values.tolist()]
