"""``l0``: channel gates learnt with the hard-concrete relaxation of the L0 norm (Louizos,
Welling and Kingma, "Learning Sparse Neural Networks through L0 Regularization", ICLR 2018).

One gate per channel of each group multiplies the channel wherever it is made: at the output
of every layer of the group that produces it (the sites :func:`verify.producer_sites` finds),
so every layer that reads the channel reads it gated. A group whose sites are unknown is gated
at its root, on the root's outputs (on its inputs for a ``root_is_input`` group). Bare
parameters (a class token) are not gated: the layers that read them are.

The model's weights are frozen; only the gates' ``log_alpha`` learn, for ``importance.steps``
Adam steps over the training batches the criterion gets (cycled), on the cross-entropy plus
``importance.penalty`` times the expected L0: the sum over gates of P(gate != 0), each weighted
by its channel's share of the model's cost (:func:`channel_costs`; the shares sum to 1). So
the expected L0 is the expected share of the cost kept, and the penalty is the cross-entropy
that all of it is worth. The cost of a layer is the milliseconds it measured on the target
device (``layer_ms``: the search passes the calibrated device's latency table, a layer timed
with the batch norm and activation fused behind it) when the table holds every convolution
and linear layer of the model; otherwise it is the layer's MACs, and a note says why.

A channel's score is its gate's open probability (ties broken by ``log_alpha``); the share of
a group's gates open at evaluation (the deterministic gate above zero) is the keep ratio it
learnt, which a derived space stores and offers the search as its first candidate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from plumbing.modules import device_of
from search_spaces.derived.criteria.base import (
    Batch,
    Criterion,
    Scores,
    finite,
    register_criterion,
)
from search_spaces.derived.discovery import (
    ChannelGroup,
    build_graph,
    example_input,
    root_pruning_fn,
)
from search_spaces.derived.heads import is_conv1d
from search_spaces.derived.verify import producer_sites
from search_spaces.dimensions import SpaceError

BETA, GAMMA, ZETA = 2 / 3, -0.1, 1.1  # the paper's temperature and stretch interval
INIT_LOG_ALPHA = math.log(9.0)  # gates start open (drop rate 0.1, the paper's parametrisation)
LR = 0.1  # Adam's step on log_alpha
STEPS = 200  # default importance.steps
PENALTY = 10.0  # default importance.penalty (the zoo resnet on digits keeps 60-100% per group)
TIE = 1e-6  # weight of the tie-break by log_alpha in a score
_EPS = 1e-6  # keeps the uniform noise off 0 and 1


_LEARNT: ContextVar[dict[str, float] | None] = ContextVar("l0_learnt", default=None)


@contextmanager
def learnt_keep() -> Iterator[dict[str, float]]:
    """A dict that an ``l0`` scoring inside fills with the keep ratio it learnt per group
    (``score_groups`` builds the criterion and keeps nothing of it but the scores)."""
    keep: dict[str, float] = {}
    token = _LEARNT.set(keep)
    try:
        yield keep
    finally:
        _LEARNT.reset(token)


@register_criterion
class L0(Criterion):
    """Learnt hard-concrete gates: ``importance: {criterion: l0, steps: 200, penalty: 10}``."""

    name = "l0"
    needs_data = True
    weighs_layers = True

    def __init__(
        self,
        steps: int = STEPS,
        penalty: float = PENALTY,
        layer_ms: Mapping[str, float] | None = None,
    ) -> None:
        self.steps, self.penalty, self.layer_ms = steps, penalty, layer_ms

    def __call__(
        self,
        model: nn.Module,
        input_shape: Sequence[int],
        groups: Sequence[ChannelGroup],
        batches: Sequence[Batch],
        seed: int,
    ) -> Scores:
        notes: list[str] = []
        log_alpha = fit_gates(
            model,
            input_shape,
            groups,
            batches,
            seed,
            self.steps,
            self.penalty,
            notes,
            self.layer_ms,
        )
        learnt = _LEARNT.get()
        if learnt is not None:
            learnt.update({name: keep_ratio(values) for name, values in log_alpha.items()})
        return {name: gate_scores(values) for name, values in log_alpha.items()}, notes


def open_probability(log_alpha: Tensor) -> Tensor:
    """P(gate != 0) of hard-concrete gates."""
    return torch.sigmoid(log_alpha - BETA * math.log(-GAMMA / ZETA))


def sample_gates(log_alpha: Tensor, u: Tensor) -> Tensor:
    """Hard-concrete samples for uniform noise ``u`` in (0, 1)."""
    s = torch.sigmoid((torch.log(u) - torch.log(1 - u) + log_alpha) / BETA)
    return (s * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)


def deterministic_gates(log_alpha: Tensor) -> Tensor:
    """The gates at evaluation: the noise-free sample."""
    return (torch.sigmoid(log_alpha) * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)


def keep_ratio(log_alpha: Tensor) -> float:
    """The share of gates open at evaluation."""
    return float((deterministic_gates(log_alpha) > 0).double().mean())


def gate_scores(log_alpha: Tensor) -> list[float]:
    """Open probabilities plus a tiny tie-break by ``log_alpha`` (saturated gates stay
    ranked), normalised by their mean."""
    values = log_alpha.detach().double().cpu()
    ranks = values.argsort(stable=True).argsort().double() / len(values)
    scores = open_probability(values) + TIE * ranks
    return [finite(v) for v in (scores / scores.mean()).tolist()]


def fit_gates(
    model: nn.Module,
    input_shape: Sequence[int],
    groups: Sequence[ChannelGroup],
    batches: Sequence[Batch],
    seed: int,
    steps: int = STEPS,
    penalty: float = PENALTY,
    notes: list[str] | None = None,
    layer_ms: Mapping[str, float] | None = None,
) -> dict[str, Tensor]:
    """Each group's ``log_alpha`` after training the gates (see the module docstring); the
    weights of ``model`` are left as they were, in eval mode. ``notes`` gets a line per group
    gated at its root, and one saying what weighted the gates when ``layer_ms`` is given."""
    if not batches:
        raise SpaceError("the l0 criterion needs at least one batch of training data")
    device = device_of(model)
    graph = build_graph(model, input_shape)
    offsets = [0]
    for group in groups:
        offsets.append(offsets[-1] + group.channels)
    notes = notes if notes is not None else []
    gates = _gates(graph, model, groups, offsets, notes)
    costs = layer_costs(model, input_shape, layer_ms, notes)
    weights = _shares(channel_costs(graph, model, groups, costs)).to(device)
    gen = torch.Generator().manual_seed(seed)
    start = INIT_LOG_ALPHA + 0.01 * torch.randn(offsets[-1], generator=gen)
    log_alpha = start.to(device).requires_grad_()
    optimiser = torch.optim.Adam([log_alpha], lr=LR)
    current: list[Tensor] = []
    with _frozen(model), _hooked(model, gates, lambda: current[0]), torch.enable_grad():
        for step in range(steps):
            x, y = batches[step % len(batches)]
            u = torch.rand(offsets[-1], generator=gen).clamp(_EPS, 1 - _EPS).to(device)
            current[:] = [sample_gates(log_alpha, u)]
            expected = (weights * open_probability(log_alpha)).sum()
            loss = F.cross_entropy(model(x.to(device)), y.to(device)) + penalty * expected
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    learnt = log_alpha.detach().cpu()
    return {g.name: learnt[offsets[i] : offsets[i + 1]] for i, g in enumerate(groups)}


@dataclass(frozen=True)
class _Gate:
    """Gates that multiply a module's output (or input) along ``dim``: the gate vector's
    entries ``index`` go to the channels ``local`` there."""

    module: str
    on_input: bool
    dim: int
    local: Tensor
    index: Tensor


def _gates(
    graph: Any,
    model: nn.Module,
    groups: Sequence[ChannelGroup],
    offsets: Sequence[int],
    notes: list[str],
) -> list[_Gate]:
    sites = producer_sites(graph, model, groups)
    modules = dict(model.named_modules())
    found: list[_Gate] = []
    for i, group in enumerate(groups):
        listed = sites.get(group.name)
        made = [] if isinstance(listed, str) or listed is None else listed
        mine = [
            _Gate(
                s.name,
                False,
                s.dim,
                torch.tensor(s.local),
                offsets[i] + torch.tensor(s.root),
            )
            for s in made
            if s.kind in ("output", "layer_norm")
        ]
        if not mine:
            root = modules[group.root]
            dim = 1 if isinstance(root, nn.modules.conv._ConvNd) else -1
            channels = torch.arange(group.channels)
            mine = [_Gate(group.root, group.root_is_input, dim, channels, offsets[i] + channels)]
            notes.append(f"{group.name}: gated at its root {group.root!r}")
        found += mine
    return found


def _gated(tensor: Any, gates: Sequence[_Gate], z: Tensor) -> Any:
    if not isinstance(tensor, Tensor):
        return tensor
    for gate in gates:
        size = tensor.shape[gate.dim]
        mask = torch.ones(size, device=tensor.device, dtype=tensor.dtype)
        mask = mask.index_copy(0, gate.local.to(tensor.device), z[gate.index.to(z.device)])
        shape = [1] * tensor.dim()
        shape[gate.dim] = size
        tensor = tensor * mask.view(shape)
    return tensor


@contextmanager
def _hooked(model: nn.Module, gates: Sequence[_Gate], z: Callable[[], Tensor]) -> Iterator[None]:
    """``model`` with the gates ``z()`` multiplying their sites, hooks removed on exit."""
    modules = dict(model.named_modules())
    by_site: dict[tuple[str, bool], list[_Gate]] = {}
    for gate in gates:
        by_site.setdefault((gate.module, gate.on_input), []).append(gate)
    handles = []
    for (name, on_input), mine in by_site.items():
        if on_input:

            def before(m: nn.Module, args: tuple[Any, ...], mine: list[_Gate] = mine) -> Any:
                return (_gated(args[0], mine, z()), *args[1:])

            handles.append(modules[name].register_forward_pre_hook(before))
        else:

            def after(m: nn.Module, a: Any, out: Any, mine: list[_Gate] = mine) -> Any:
                return _gated(out, mine, z())

            handles.append(modules[name].register_forward_hook(after))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """``model`` in eval mode with no parameter learning; ``requires_grad`` restored after."""
    params = list(model.parameters())
    wanted = [p.requires_grad for p in params]
    model.eval()
    for param in params:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param, flag in zip(params, wanted, strict=True):
            param.requires_grad_(flag)


def layer_costs(
    model: nn.Module,
    input_shape: Sequence[int],
    layer_ms: Mapping[str, float] | None,
    notes: list[str],
) -> Mapping[nn.Module, float]:
    """The cost of every convolution and linear layer that runs: its measured milliseconds
    when ``layer_ms`` holds them all, else its MACs (a note says why when ``layer_ms`` was
    given)."""
    macs = _layer_macs(model, input_shape)
    if layer_ms is None:
        return macs
    names = {module: name for name, module in model.named_modules()}
    timed = {m: float(layer_ms[names[m]]) for m in macs if layer_ms.get(names[m], 0.0) > 0}
    if macs and len(timed) == len(macs):
        total = sum(timed.values())
        notes.append(f"l0: gates weighted by the device's measured latency ({total:.3g} ms)")
        return timed
    if not layer_ms:
        notes.append("l0: gates weighted by MACs (the device has no latency calibration)")
    else:
        missing = sorted(names[m] for m in macs if m not in timed)
        notes.append(
            f"l0: gates weighted by MACs (the device's latency table lacks {len(missing)} of "
            f"{len(macs)} layers, {missing[0]!r} first)"
        )
    return macs


def channel_costs(
    graph: Any, model: nn.Module, groups: Sequence[ChannelGroup], costs: Mapping[nn.Module, float]
) -> Tensor:
    """Per channel of every group (concatenated in order), the cost of the convolution and
    linear layers it comes from and feeds: each such layer of the group adds its cost (its
    entry in ``costs``) divided by its output channels where the group prunes its outputs, by
    its input channels where it prunes its inputs. An approximation: other layers (norms,
    activations, attention's matrix products) are not counted."""
    modules = dict(model.named_modules())
    per_group = []
    for group in groups:
        root = modules[group.root]
        fn = root_pruning_fn(graph, root, group.root_is_input)
        cost = torch.zeros(group.channels, dtype=torch.float64)
        for item in graph.get_pruning_group(root, fn, list(range(group.channels))):
            layer = item.dep.target.module
            pruner = graph.get_pruner_of_module(layer)
            if layer not in costs or pruner is None:
                continue
            out = graph.is_out_channel_pruning_fn(item.dep.handler)
            width = pruner.get_out_channels(layer) if out else pruner.get_in_channels(layer)
            if width:
                cost[list(item.root_idxs)] += costs[layer] / int(width)
        per_group.append(cost)
    return torch.cat(per_group) if per_group else torch.zeros(0, dtype=torch.float64)


def _layer_macs(model: nn.Module, input_shape: Sequence[int]) -> Mapping[nn.Module, float]:
    """MACs of every convolution and linear layer in one forward pass of one input."""
    macs: dict[nn.Module, float] = {}

    def count(module: nn.Module, args: Any, out: Any) -> None:
        weight = getattr(module, "weight", None)
        if not isinstance(out, Tensor) or not isinstance(weight, Tensor):
            return
        per_output = weight.shape[0] if is_conv1d(module) else weight[0].numel()
        macs[module] = macs.get(module, 0.0) + float(out.numel() * per_output)

    kinds = (nn.modules.conv._ConvNd, nn.Linear)
    handles = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, kinds) or is_conv1d(m)
    ]
    try:
        with torch.no_grad():
            model.eval()(example_input(input_shape, device_of(model)))
    finally:
        for handle in handles:
            handle.remove()
    return macs


def _shares(costs: Tensor) -> Tensor:
    """``costs`` as shares that sum to 1 (equal shares when nothing was counted)."""
    total = float(costs.sum())
    if total > 0:
        return (costs / total).float()
    return torch.full_like(costs, 1 / max(1, len(costs))).float()
