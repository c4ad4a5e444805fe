"""A pruning plan: which channels of which group survive, which blocks are gone, how sparse.

A plan is plain JSON. Replayed on the dense model (:func:`apply_plan`), it gives the subnet:
torch-pruning removes the channels group by group (attention heads of the Hugging Face layouts
are cut by :mod:`heads`), each removed block is replaced by an identity (:class:`Bypass`),
each removed branch whose skip is in its parent is cut out of its parent's graph with the add
(:func:`branches.cut_branches`), attention modules get their new ``num_heads``, and the weight
sparsity is applied by PyTorch's own pruning API (global L1 over the remaining weights, made
permanent).

A plan that removes such branches lists them under ``removed_branches`` and is version 2, so
that a reader that knows version 1 only refuses it instead of building another model; a plan
whose layers run in int8 lists them under ``int8`` and is version 3, so that a reader that
would build an fp32 model of it refuses it; every other plan is version 1, as before.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.utils.prune as torch_prune
from torch import nn

from search_spaces.derived.branches import cut_branches
from search_spaces.derived.discovery import ROOT_TYPES, ChannelGroup, build_graph, root_pruning_fn
from search_spaces.derived.heads import is_conv1d, prune_heads
from search_spaces.dimensions import SpaceError

PLAN_FORMAT = "nasprune.plan"
PLAN_VERSION = 1
BRANCHES_VERSION = 2  # a plan with removed_branches
INT8_VERSION = 3  # a plan with int8 layers (and perhaps removed_branches)
SPARSITY_METHOD = "global_l1_unstructured"


def kept_count(group: ChannelGroup, ratio: float, round_to: int) -> int:
    """Channels a keep ratio leaves in ``group``: whole heads for attention, else a multiple
    of ``round_to`` (never below one multiple, never above the group). A ratio of 1 keeps
    every channel, whatever ``round_to``: the largest candidate is the dense model."""
    if ratio >= 1.0:
        return group.channels
    if group.unit > 1:
        return group.unit * min(group.units, max(1, math.floor(ratio * group.units + 0.5)))
    if group.channels <= round_to:
        return group.channels
    count = math.floor(ratio * group.channels / round_to + 0.5) * round_to
    return min(group.channels, max(round_to, count))


def make_plan(
    groups: Mapping[str, ChannelGroup],
    keep: Mapping[str, Sequence[int]],
    removed_blocks: Sequence[str],
    sparsity: float,
    seed: int,
    removed_branches: Sequence[str] = (),
) -> dict[str, Any]:
    """The JSON plan; ``keep`` maps a group name to its surviving channel indices."""
    plan: dict[str, Any] = {
        "format": PLAN_FORMAT,
        "version": BRANCHES_VERSION if removed_branches else PLAN_VERSION,
        "groups": {
            name: {**groups[name].as_json(), "keep": sorted(int(i) for i in kept)}
            for name, kept in sorted(keep.items())
            if len(kept) < groups[name].channels
        },
        "removed_blocks": sorted(removed_blocks),
        "sparsity": {"ratio": float(sparsity), "method": SPARSITY_METHOD, "seed": int(seed)},
    }
    if removed_branches:
        plan["removed_branches"] = sorted(removed_branches)
    return plan


def with_int8(plan: dict[str, Any], layers: Sequence[str]) -> dict[str, Any]:
    """``plan`` with the layers that run in int8 (version 3), or as it was when there are none.
    :func:`apply_plan` builds the fp32 module; the int8 model is made from it by the
    application (ONNX Runtime's QDQ quantization of these layers)."""
    if not layers:
        return plan
    return plan | {"version": INT8_VERSION, "int8": sorted(layers)}


class Bypass(nn.Identity):
    """What a removed block becomes: its first input, whatever else its caller passes (a
    Hugging Face layer is called with its attention mask and positions as keywords)."""

    def forward(self, input: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return input


def check_plan(plan: Mapping[str, Any]) -> None:
    if not isinstance(plan, Mapping) or plan.get("format") != PLAN_FORMAT:
        raise SpaceError("not a nasprune pruning plan (format field missing or wrong)")
    if plan.get("version") not in (PLAN_VERSION, BRANCHES_VERSION, INT8_VERSION):
        raise SpaceError(
            f"pruning plan version {plan.get('version')!r} is not "
            f"{PLAN_VERSION}, {BRANCHES_VERSION} or {INT8_VERSION}"
        )


def apply_plan(
    model: nn.Module, plan: Mapping[str, Any], input_shape: Sequence[int], sparsify: bool = True
) -> nn.Module:
    """Prune ``model`` in place to ``plan`` and return it (physically smaller, same class),
    or, when the plan removes a branch whose skip is in the model's own forward, the model's
    rewritten graph (a ``torch.fx.GraphModule`` holding its modules): use the value returned."""
    check_plan(plan)
    modules = dict(model.named_modules())
    groups = plan["groups"]
    by_tp = {name: spec for name, spec in groups.items() if "heads" not in spec}
    if by_tp:
        graph = build_graph(model, input_shape)
        for name, spec in by_tp.items():
            _prune_group(graph, modules, name, spec)
    for spec in groups.values():
        if "heads" in spec:
            prune_heads(model, spec, spec["keep"])
    for block in plan["removed_blocks"]:
        if block not in modules:
            raise SpaceError(f"the plan removes block {block!r}, which the model does not have")
        model.set_submodule(block, Bypass())
    if plan.get("removed_branches"):
        model = cut_branches(model, plan["removed_branches"])
    if sparsify:
        sparsify_as_planned(model, plan)
    return model


def sparsify_as_planned(model: nn.Module, plan: Mapping[str, Any]) -> None:
    """The plan's weight sparsity, if any, applied to ``model`` (already pruned to the plan)."""
    ratio = float(plan["sparsity"]["ratio"])
    if ratio > 0:
        sparsify_weights(model, ratio, int(plan["sparsity"]["seed"]))


def _prune_group(graph: Any, modules: dict[str, nn.Module], name: str, spec: Mapping) -> None:
    root = modules.get(spec["root"])
    if root is None:
        raise SpaceError(f"the plan prunes group {name!r} at {spec['root']!r}, not in the model")
    keep = set(spec["keep"])
    remove = [i for i in range(int(spec["channels"])) if i not in keep]
    if not remove:
        return
    fn = root_pruning_fn(graph, root, bool(spec["root_is_input"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph.get_pruning_group(root, fn, remove).prune()
    if spec.get("attention"):
        attention = modules[spec["attention"]]
        attention.num_heads = len(keep) // int(spec["unit"])  # type: ignore[assignment]


def prunable_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, ROOT_TYPES) or is_conv1d(m)]


def named_prunable_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameter name -> weight, for every conv and linear layer (what sparsity zeroes)."""
    names = {id(module): name for name, module in model.named_modules()}
    return {
        f"{names[id(layer)]}.{attr}" if names[id(layer)] else attr: getattr(layer, attr)
        for layer, attr in prunable_weights(model)
    }


def sparsify_weights(model: nn.Module, ratio: float, seed: int) -> None:
    """Zero the ``ratio`` smallest-magnitude weights of every conv and linear layer, ranked
    together (global L1), with torch.nn.utils.prune; the zeros are made permanent."""
    params = prunable_weights(model)
    if not params or ratio <= 0:
        return
    with torch.random.fork_rng(devices=[]):  # ties are broken the same way every time
        torch.manual_seed(seed)
        torch_prune.global_unstructured(
            params, pruning_method=torch_prune.L1Unstructured, amount=float(ratio)
        )
    for module, name in params:
        torch_prune.remove(module, name)


def nonzero_params(model: nn.Module) -> int:
    return int(sum(int(torch.count_nonzero(p.detach())) for p in model.parameters()))
