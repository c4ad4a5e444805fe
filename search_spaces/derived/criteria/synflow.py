"""``synflow``: Iterative Synaptic Flow Pruning (Tanaka et al., NeurIPS 2020), data-free.

As the paper's code does, a copy of the model is linearised: double precision, eval mode (batch
norms use their running statistics), every parameter and buffer replaced by its absolute value.
Its ``ReLU6`` modules become ``ReLU``: on all-positive weights the activations grow past 6, and
a saturated ReLU6 passes no gradient, which would leave a MobileNet's groups all at zero (the
paper's networks use ReLU; a bounded activation called as a function is not replaced).
An all-ones input of the model's input shape (batch 1) gives R, the sum of the output; a
weight's synaptic saliency is |w * dR/dw|, and a channel's score the sum of the saliencies of
every connection of its group (the producers' output slices, the consumers' input slices, as
for ``snip``).

Iterative, as in the paper: ``importance.rounds`` rounds (default 10; the paper prunes
weights in 100). Each round scores the channels still present, then masks (zeroes the
connections of) the lowest-scoring ones so that ``n ** (1 - k / rounds)`` of a group's ``n``
channels remain after round ``k``: the paper's exponential schedule, towards one channel per
group; the last round ranks those that remain. The paper masks all weights against one global
threshold; here each group follows the schedule, so that no group loses all its channels
(which would cut every path through the network) and every channel gets a rank. A channel's
final score is the round it was masked in plus half its saliency over the largest saliency of
its group in that round: ranked by the round first, then by its score, every score finite.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from plumbing import first_line
from plumbing.modules import device_of
from search_spaces.base import positive_int
from search_spaces.derived.criteria.base import Batch, Criterion, Scores, register_criterion
from search_spaces.derived.criteria.snip import (
    by_mean,
    connections,
    layer_slices,
    pruning_group,
    saliency,
)
from search_spaces.derived.discovery import ChannelGroup, build_graph
from search_spaces.dimensions import SpaceError

ROUNDS = 10  # each round keeps n ** -(1 / rounds) of a group: 64 channels lose a third a round


@register_criterion
class Synflow(Criterion):
    """Iterative synaptic flow: ``importance: {criterion: synflow, rounds: 10}``."""

    name = "synflow"

    def __init__(self, rounds: int = ROUNDS) -> None:
        self.rounds = positive_int("importance.rounds", rounds)

    def __call__(
        self,
        model: nn.Module,
        input_shape: Sequence[int],
        groups: Sequence[ChannelGroup],
        batches: Sequence[Batch],
        seed: int,
    ) -> Scores:
        net = copy.deepcopy(model)  # linearised and masked here; the caller's stays as it was
        graph = build_graph(net, input_shape)
        linearise(net)
        modules = dict(net.named_modules())
        tp_groups = [pruning_group(graph, modules, g) for g in groups]
        ones = torch.ones((1, *input_shape), dtype=torch.float64, device=device_of(net))
        alive = [torch.ones(g.channels, dtype=torch.bool) for g in groups]
        ranks = [torch.zeros(g.channels, dtype=torch.float64) for g in groups]
        for step in range(1, self.rounds + 1):
            flow(net, ones)
            found = [_saliency(graph, tp, g) for g, tp in zip(groups, tp_groups, strict=True)]
            for tp_group, score, live, rank in zip(tp_groups, found, alive, ranks, strict=True):
                gone = _lowest(score, live, self._to_remove(step, len(live), int(live.sum())))
                _rank(rank, score, live, gone, step)
                live &= ~gone
                mask(graph, tp_group, gone)
        return {g.name: by_mean(rank) for g, rank in zip(groups, ranks, strict=True)}, []

    def _to_remove(self, step: int, channels: int, live: int) -> int:
        """How many of a group's ``live`` channels round ``step`` masks (-1: all, the last)."""
        if step == self.rounds:
            return -1
        return live - max(1, round(channels ** (1 - step / self.rounds)))


def linearise(net: nn.Module) -> None:
    """``net`` in double precision and eval mode, every parameter and buffer made positive,
    every ``ReLU6`` module a ``ReLU``."""
    for module in list(net.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.ReLU6):
                setattr(module, name, nn.ReLU())
    net.double().eval()
    with torch.no_grad():
        for tensor in net.state_dict().values():
            tensor.abs_()
    for param in net.parameters():
        param.requires_grad_(True)


def flow(net: nn.Module, ones: Tensor) -> None:
    """The gradients of R, the sum of ``net``'s output on ``ones``, in ``net``'s parameters."""
    net.zero_grad(set_to_none=True)
    try:
        with torch.enable_grad():
            total = net(ones).sum()
            total.backward()
    except Exception as exc:
        raise SpaceError(
            f"synflow cannot run the linearised model: {type(exc).__name__}: {first_line(exc)}"
        ) from None
    if not torch.isfinite(total):
        raise SpaceError("synflow: the linearised model's output overflows double precision")


def mask(graph: Any, tp_group: Any, gone: Tensor) -> None:
    """Zero every connection of ``tp_group``'s root channels where ``gone`` is true."""
    for layer, out, idxs, roots in layer_slices(graph, tp_group):
        chosen = [i for i, r in zip(idxs, roots, strict=True) if gone[r]]
        if not chosen:
            continue
        weight = layer.weight.data
        places = torch.arange(weight.numel(), device=weight.device).reshape(weight.shape)
        with torch.no_grad():
            weight.view(-1)[connections(layer, places, out)[chosen].flatten()] = 0


def _saliency(graph: Any, tp_group: Any, group: ChannelGroup) -> Tensor:
    score = saliency(graph, tp_group, group.channels)
    if score is None:
        raise SpaceError(f"group {group.name!r} has no weights to score by synflow")
    return score


def _lowest(score: Tensor, live: Tensor, count: int) -> Tensor:
    """The ``count`` live channels of the lowest scores (ties: the lower index; -1: every
    live channel), as a mask."""
    order = sorted(torch.nonzero(live).flatten().tolist(), key=lambda i: (float(score[i]), i))
    gone = torch.zeros_like(live)
    gone[order if count < 0 else order[:count]] = True
    return gone


def _rank(rank: Tensor, score: Tensor, live: Tensor, chosen: Tensor, step: int) -> None:
    """``step`` plus half the saliency over the largest live one, for the ``chosen`` channels."""
    top = float(score[live].max())
    share = score[chosen] / top if top > 0 else torch.zeros_like(score[chosen])
    rank[chosen] = step + 0.5 * share
