"""Torch-Pruning (1.6) as a peer: magnitude channel pruning of a trained dense model.

    net = uniform(dense, torch.randn(1, 1, 40), 0.5)             # half the channels of each layer
    fit = to_latency(dense, x, target_ms=0.2, measure=my_timer)  # bisection over the ratio

``ratio`` is Torch-Pruning's ``pruning_ratio``: the share of channels removed (of each layer for
``uniform``, of all prunable channels for ``global_magnitude``). Channels are ranked by the L2 norm
of their whole dependency group (``GroupMagnitudeImportance(p=2)``), so the residual adds of a
model (even adds written in a parent's forward) keep matching widths. The final classifier (the
last convolution or linear layer the forward runs) keeps its outputs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch
import torch_pruning as tp
from torch import nn

MAX_RATIO = 0.95  # the most a bisection prunes: a layer keeps at least 5% of its channels
_STEP = 0.05  # the step down from MAX_RATIO when it misses the target (see to_latency)


class Prune(Protocol):
    def __call__(
        self,
        model: nn.Module,
        example_inputs: torch.Tensor,
        ratio: float,
        ignored_layers: Sequence[nn.Module] | None = None,
        round_to: int | None = None,
    ) -> nn.Module: ...


def uniform(
    model: nn.Module,
    example_inputs: torch.Tensor,
    ratio: float,
    ignored_layers: Sequence[nn.Module] | None = None,
    round_to: int | None = None,
) -> nn.Module:
    """A pruned copy of ``model`` with ``ratio`` of each layer's channels removed."""
    return _prune(model, example_inputs, ratio, False, ignored_layers, round_to)


def global_magnitude(
    model: nn.Module,
    example_inputs: torch.Tensor,
    ratio: float,
    ignored_layers: Sequence[nn.Module] | None = None,
    round_to: int | None = None,
) -> nn.Module:
    """A pruned copy of ``model`` with the ``ratio`` weakest channels of the whole model removed
    (ranked together), no layer losing more than ``MAX_RATIO`` of its channels."""
    return _prune(model, example_inputs, ratio, True, ignored_layers, round_to)


METHODS: dict[str, Prune] = {"uniform": uniform, "global": global_magnitude}


@dataclass(frozen=True)
class LatencyFit:
    """What ``to_latency`` found: the pruned model, its ratio and measured latency.

    ``reached`` is False when no ratio up to ``max_ratio`` meets the target; ``model`` and
    ``ratio`` are then the fastest seen, and ``note`` says so in one line."""

    model: nn.Module
    ratio: float
    latency_ms: float
    reached: bool
    measurements: int
    note: str


def to_latency(
    model: nn.Module,
    example_inputs: torch.Tensor,
    target_ms: float,
    measure: Callable[[nn.Module], float],
    method: str = "uniform",
    tolerance: float = 0.05,
    max_iter: int = 12,
    max_ratio: float = MAX_RATIO,
    round_to: int | None = None,
) -> LatencyFit:
    """The least pruned model (by ``method``) whose ``measure`` is at most ``target_ms``.

    Bisection over the ratio between 0 and the highest ratio that meets the target, assuming
    latency falls as the ratio grows below it; it stops once a model within ``tolerance``
    (relative) below the target is found, or after ``max_iter`` steps, and returns the smallest
    ratio seen that meets the target.

    Torch-Pruning never empties a layer: a group whose every channel would go is left whole, so
    near ``max_ratio`` a larger ratio can give a larger model (the zoo ResNet's 16-channel layers
    keep all 16 at a uniform 0.95, one at 0.9). So when ``max_ratio`` misses the target, ratios
    below it are tried in steps of 0.05 before the target is declared out of reach.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(sorted(METHODS))}")
    prune = METHODS[method]
    tried: list[Trial] = []

    def at(ratio: float) -> Trial:
        net = prune(model, example_inputs, ratio, round_to=round_to)
        tried.append(Trial(measure(net), ratio, net))
        return tried[-1]

    if (dense := at(0.0)).ms <= target_ms:
        return LatencyFit(dense.net, 0.0, dense.ms, True, 1, "the dense model meets the target")
    best = _highest_meeting(at, target_ms, max_ratio)
    if best is None:
        fastest = min(tried, key=lambda trial: trial.ms)
        note = (f"{method} cannot reach {target_ms:.4g} ms: the fastest, at ratio {fastest.ratio}, "
                f"takes {fastest.ms:.4g} ms (ratios up to {max_ratio} tried)")  # fmt: skip
        return LatencyFit(fastest.net, fastest.ratio, fastest.ms, False, len(tried), note)
    low = 0.0  # at(low) misses the target, at(best.ratio) meets it
    for _ in range(max_iter):
        if best.ms >= (1 - tolerance) * target_ms:
            break
        middle = at((low + best.ratio) / 2)
        if middle.ms <= target_ms:
            best = middle
        else:
            low = middle.ratio
    note = f"{method} ratio {best.ratio:.4f}: {best.ms:.4g} ms for a {target_ms:.4g} ms target"
    return LatencyFit(best.net, best.ratio, best.ms, True, len(tried), note)


class Trial(NamedTuple):
    ms: float
    ratio: float
    net: nn.Module


def _highest_meeting(
    at: Callable[[float], Trial], target_ms: float, max_ratio: float
) -> Trial | None:
    """The first of ``max_ratio``, then ratios ``_STEP`` apart below it, that meets the target."""
    ratio = max_ratio
    while ratio > 0.0:
        if (trial := at(ratio)).ms <= target_ms:
            return trial
        ratio = round(ratio - _STEP, 6)
    return None


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _prune(
    model: nn.Module,
    example_inputs: torch.Tensor,
    ratio: float,
    global_pruning: bool,
    ignored_layers: Sequence[nn.Module] | None,
    round_to: int | None,
) -> nn.Module:
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"the pruning ratio must be in [0, 1), got {ratio}")
    net = copy.deepcopy(model).eval()  # eval: tracing must not move BatchNorm's statistics
    if ratio > 0.0:
        names = {id(m): name for name, m in model.named_modules()}
        ignored = [_classifier(net, example_inputs)]
        ignored += [net.get_submodule(names[id(m)]) for m in ignored_layers or ()]
        pruner = tp.pruner.MetaPruner(
            net,
            example_inputs,
            importance=tp.importance.GroupMagnitudeImportance(p=2),
            pruning_ratio=ratio,
            global_pruning=global_pruning,
            max_pruning_ratio=max(ratio, MAX_RATIO),
            ignored_layers=ignored,
            round_to=round_to,
        )
        pruner.step()
    return net.train(model.training)


def _classifier(model: nn.Module, example_inputs: torch.Tensor) -> nn.Module:
    """The last convolution or linear layer that the forward runs: the head giving the classes."""
    ran: list[nn.Module] = []
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    hooks = [m.register_forward_hook(lambda m, _i, _o: ran.append(m)) for m in layers]
    try:
        with torch.no_grad():
            model(example_inputs)
    finally:
        for hook in hooks:
            hook.remove()
    if not ran:
        raise ValueError("the model runs no convolution or linear layer: nothing to prune")
    return ran[-1]
