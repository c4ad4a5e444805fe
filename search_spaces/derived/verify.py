"""Never a silently wrong subnet: every pruned module is checked against what it must compute.

A candidate's *reference* is the dense model (or the trained supernet) with the candidate's
pruned channels zeroed where they are made (at the output of every layer of the group that
produces them, and in the group's bare parameters such as a class token), its removed blocks
bypassed, and its removed branches (whose skip is in their parent) zeroed at their output,
which is the parent's ``h + 0``. Zeros pass through activations, pooling, permutes and
reshapes as values, so every layer that reads those channels sees zeros wherever the model's
own code moves them: the reference needs no index mapping, which is what torch-pruning can
get wrong (a convolution read by a linear layer through ``permute -> reshape``). A layer norm
over a pruned dimension normalises over the surviving channels only, as the pruned one does.

A pruned module must compute its reference on a fixed probe input to within ``TOLERANCE``
(relative to the reference's largest output). :func:`compare` says where they part: the first
layer, in call order, whose output has the same shape in both modules and other values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from plumbing import first_line
from search_spaces.derived.discovery import ChannelGroup, culprit, root_pruning_fn
from search_spaces.derived.heads import is_conv1d, made_at
from search_spaces.derived.masking import bypassed, masked_layer_norm, silenced
from search_spaces.dimensions import SpaceError

TOLERANCE = 1e-4
PROBE_BATCH = 2
_CHANNELS_FIRST = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.GroupNorm,
    nn.PReLU,
)
_CHANNELS_LAST = (nn.Linear, nn.Embedding)


@dataclass(frozen=True)
class Site:
    """Where a group's channels are made: a module's output or a bare parameter, along
    ``dim``; ``local[i]`` is the index there of the group's root channel ``root[i]``."""

    name: str
    kind: str  # "output", "layer_norm" (masked statistics) or "parameter"
    dim: int
    local: tuple[int, ...]
    root: tuple[int, ...]


def producer_sites(
    graph: Any, model: nn.Module, groups: Sequence[ChannelGroup]
) -> dict[str, list[Site] | str]:
    """Group name -> the sites that make its channels, or the one-line reason it has a site
    we cannot zero (such a group cannot be checked, so it is refused)."""
    modules = dict(model.named_modules())
    names = {m: n for n, m in modules.items()}
    sites: dict[str, list[Site] | str] = {}
    for group in groups:
        if group.heads is not None:
            sites[group.name] = [
                Site(name, "output", -1, tuple(local), tuple(root))
                for name, local, root, _ in made_at(group.heads)
            ]
            continue
        root = modules[group.root]
        fn = root_pruning_fn(graph, root, group.root_is_input)
        found: list[Site] = []
        for item in graph.get_pruning_group(root, fn, list(range(group.channels))):
            if not graph.is_out_channel_pruning_fn(item.dep.handler):
                continue
            site = _site(graph, names, item)
            if isinstance(site, str):
                sites[group.name] = site
                break
            if site is not None:
                found.append(site)
        else:
            sites[group.name] = found
    return sites


def _site(graph: Any, names: Mapping[nn.Module, str], item: Any) -> Site | str | None:
    """The site of one item of a torch-pruning group that makes channels (None for the
    graph's own operations: concatenations, reshapes, element-wise ops)."""
    target = item.dep.target.module
    local = tuple(int(i) for i in item.idxs)
    root = tuple(int(i) for i in item.root_idxs)
    if isinstance(target, nn.Parameter):
        name = graph._param_to_name.get(target)
        if name is None:
            return f"a parameter of shape {tuple(target.shape)} has no name"
        return Site(name, "parameter", int(graph.module2node[target].pruning_dim), local, root)
    if target in names:
        return _output_site(names[target], target, local, root)
    return None


def _output_site(
    name: str, module: nn.Module, local: tuple[int, ...], root: tuple[int, ...]
) -> Site | str:
    if isinstance(module, nn.LayerNorm):
        if len(module.normalized_shape) != 1:
            return f"layer norm {name!r} normalises over more than one dimension"
        return Site(name, "layer_norm", -1, local, root)
    if isinstance(module, _CHANNELS_FIRST):
        return Site(name, "output", 1, local, root)
    if isinstance(module, _CHANNELS_LAST) or is_conv1d(module):
        return Site(name, "output", -1, local, root)
    return f"layer {name!r} ({type(module).__name__}) makes its channels in a way not checked"


@contextmanager
def zeroed(
    model: nn.Module,
    sites: Mapping[str, Sequence[Site]],
    channels: Mapping[str, int],
    keep: Mapping[str, Sequence[int]],
    removed: Sequence[str] = (),
    branches: Sequence[str] = (),
) -> Iterator[nn.Module]:
    """``model`` computing the reference of a candidate (``keep``: surviving root channels per
    group; ``removed``: blocks; ``branches``: removed branches whose skip is in their parent),
    restored as it was on exit."""
    modules = dict(model.named_modules())
    params = dict(model.named_parameters())
    masks: dict[str, tuple[Site, Tensor]] = {}
    saved: dict[str, Tensor] = {}
    handles = []
    skipped = []
    try:
        for group, kept in keep.items():
            if len(kept) == channels[group]:
                continue
            alive = torch.zeros(channels[group], dtype=torch.bool)
            alive[list(kept)] = True
            for site in sites.get(group, ()):
                dead = [loc for loc, r in zip(site.local, site.root, strict=True) if not alive[r]]
                if site.kind == "parameter":
                    param = params[site.name]
                    saved.setdefault(site.name, param.detach().clone())
                    with torch.no_grad():
                        param.index_fill_(site.dim, torch.tensor(dead, dtype=torch.long), 0.0)
                    continue
                prior = masks.get(site.name)
                size = _size(modules[site.name], site)
                mask = prior[1] if prior else torch.ones(size)
                mask[dead] = 0.0
                masks[site.name] = (site, mask)
        for name, (site, mask) in masks.items():
            hook = _masked_norm(site, mask) if site.kind == "layer_norm" else _zero(site, mask)
            handles.append(modules[name].register_forward_hook(hook))
        for names, forward in ((removed, bypassed), (branches, silenced)):
            for block in names:
                module = modules[block]
                if "forward" not in module.__dict__:  # not removed already (a supernet)
                    module.forward = forward  # type: ignore[method-assign]
                    skipped.append(module)
        yield model
    finally:
        for handle in handles:
            handle.remove()
        for module in skipped:
            del module.forward
        with torch.no_grad():
            for name, value in saved.items():
                params[name].copy_(value)


def _size(module: nn.Module, site: Site) -> int:
    if isinstance(module, nn.LayerNorm):
        return int(module.normalized_shape[0])
    for attr in (
        "out_channels",
        "num_features",
        "num_channels",
        "out_features",
        "embedding_dim",
        "nf",
    ):
        if hasattr(module, attr):
            return int(getattr(module, attr))
    if isinstance(module, nn.PReLU):
        return module.num_parameters
    raise SpaceError(f"cannot size the outputs of {type(module).__name__}")


def _zero(site: Site, mask: Tensor) -> Any:
    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        if not isinstance(output, Tensor):
            return output
        shape = [1] * output.dim()
        shape[site.dim] = -1
        return output * mask.to(output).view(shape)

    return hook


def _masked_norm(site: Site, mask: Tensor) -> Any:
    def hook(module: nn.Module, args: tuple[Any, ...], output: Tensor) -> Tensor:
        return masked_layer_norm(module, args[0], mask) * mask.to(output)  # type: ignore[arg-type]

    return hook


def probe(input_shape: Sequence[int], device: torch.device | None = None) -> Tensor:
    """The fixed probe input (seeded, the same in every process)."""
    gen = torch.Generator().manual_seed(20261205)
    return torch.randn(PROBE_BATCH, *input_shape, generator=gen).to(device or "cpu")


def outputs(model: nn.Module, x: Tensor) -> tuple[Tensor, list[tuple[str, Tensor]]]:
    """``model(x)`` in eval mode and no grad, with every named module's tensor output in call
    order (the model's mode is restored)."""
    seen: list[tuple[str, Tensor]] = []
    handles = []
    for name, module in model.named_modules():
        if name:

            def record(m: nn.Module, a: Any, out: Any, name: str = name) -> None:
                if isinstance(out, Tensor):
                    seen.append((name, out.detach()))

            handles.append(module.register_forward_hook(record))
    training = model.training
    try:
        with torch.no_grad():
            out = model.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(training)
    if not isinstance(out, Tensor):
        raise SpaceError("the model must return a tensor of logits")
    return out, seen


def gap(a: Tensor, b: Tensor) -> float:
    """How far ``a`` is from ``b``, relative to ``b``'s largest value (inf if shapes differ)."""
    if a.shape != b.shape:
        return float("inf")
    return float((a - b).abs().max()) / max(1.0, float(b.abs().max()))


def compare(
    pruned: nn.Module, reference: tuple[Tensor, list[tuple[str, Tensor]]], x: Tensor
) -> str | None:
    """None when ``pruned`` computes ``reference`` on ``x``; else one line saying where not."""
    ref_out, ref_layers = reference
    try:
        out, layers = outputs(pruned, x)
    except Exception as exc:
        return f"the pruned model fails{culprit(exc, pruned)}: {type(exc).__name__}: " + (
            first_line(exc)
        )
    difference = gap(out, ref_out)
    if difference <= TOLERANCE:
        return None
    mine = dict(layers)
    where = next(
        (
            name
            for name, value in ref_layers
            if name in mine
            and mine[name].shape == value.shape
            and gap(mine[name], value) > TOLERANCE
        ),
        None,
    )
    at = f", first at layer {where!r}" if where else ""
    return (
        f"pruned, it computes other values than the dense model with those channels zeroed"
        f"{at} (by {difference:.2g})"
    )
