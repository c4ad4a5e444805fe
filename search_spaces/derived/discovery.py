"""What can be pruned in a user's model: channel groups from torch-pruning's dependency graph.

A *channel group* is a set of coupled channels (a convolution's outputs, its batch norm, the
inputs of every layer that reads them, the other side of a residual add or a concatenation)
that must shrink together for the network to stay valid. torch-pruning's DepGraph finds them;
this module names them, drops the ones that may not change (the classifier's outputs, layers
the user ignores) and turns attention projections into groups of whole heads.
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from plumbing import first_line, require
from plumbing.modules import device_of
from search_spaces.derived.heads import Attention, find_attention, is_conv1d
from search_spaces.dimensions import SpaceError

ROOT_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def tp() -> Any:
    """torch-pruning, imported where it is used (it is heavy), with an install hint."""
    needs = "spaces derived from a model need torch-pruning"
    return require("torch_pruning", needs, "'torch-pruning==1.6.1'", SpaceError)


@dataclass(frozen=True)
class ChannelGroup:
    """One set of coupled channels, pruned as a whole through its root module.

    ``name`` is the first module of the group (in the model's definition order) whose outputs
    shrink; ``root`` is the module torch-pruning is asked to prune, by its outputs or, for an
    attention group, by the inputs of the output projection (``root_is_input``). Channels go
    in units of ``unit``: one channel, or one head of ``unit`` channels for attention.
    """

    name: str
    root: str
    root_is_input: bool
    channels: int
    unit: int
    attention: str | None  # the module whose ``num_heads`` shrinks with this group
    modules: tuple[str, ...]  # every named module the group touches
    heads: Attention | None = None  # a Hugging Face attention, pruned by nasprune, not tp

    @property
    def units(self) -> int:
        return self.channels // self.unit

    def as_json(self) -> dict[str, Any]:
        found = {
            "name": self.name,
            "root": self.root,
            "root_is_input": self.root_is_input,
            "channels": self.channels,
            "unit": self.unit,
            "attention": self.attention,
        }
        return found | ({"heads": asdict(self.heads)} if self.heads else {})


def head_group(attention: Attention) -> ChannelGroup:
    """The channel group of a Hugging Face attention's heads (see :mod:`heads`)."""
    return ChannelGroup(
        attention.q,
        attention.o,
        True,
        attention.channels,
        attention.unit,
        attention.module,
        attention.projections,
        attention,
    )


def example_input(input_shape: Sequence[int], device: torch.device | None = None) -> torch.Tensor:
    """A fixed batch of one for tracing (values do not matter to the graph)."""
    return torch.zeros((1, *input_shape), device=device)


def culprit(exc: BaseException, model: nn.Module) -> str:
    """`` in module 'name'`` for the innermost module of ``model`` whose code raised, or ''."""
    names = {id(module): name for name, module in model.named_modules()}
    found = ""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        owner = frame.f_locals.get("self")
        if owner is not None and names.get(id(owner)):
            found = names[id(owner)]
    return f" in module {found!r}" if found else ""


def build_graph(model: nn.Module, input_shape: Sequence[int]) -> Any:
    """torch-pruning's dependency graph of ``model``; a one-line error if it cannot trace it."""
    device = device_of(model)
    conv1d = {type(m) for m in model.modules() if is_conv1d(m)}
    custom = {kind: _conv1d_pruner()() for kind in conv1d}
    try:
        with warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")
            return (
                tp()
                .DependencyGraph()
                .build_dependency(
                    model,
                    example_inputs=example_input(input_shape, device),
                    verbose=False,
                    customized_pruners=custom or None,
                )
            )
    except SpaceError:
        raise
    except Exception as exc:
        raise SpaceError(
            f"torch-pruning cannot trace the model{culprit(exc, model)}: "
            f"{type(exc).__name__}: {first_line(exc)}"
        ) from None


def root_pruning_fn(graph: Any, module: nn.Module, as_input: bool) -> Any:
    """torch-pruning's function that prunes a group's root: its inputs or its outputs."""
    pruner = graph.get_pruner_of_module(module)
    if pruner is None:
        raise SpaceError(f"torch-pruning has no pruner for {type(module).__name__}")
    return pruner.prune_in_channels if as_input else pruner.prune_out_channels


def discover_groups(
    model: nn.Module, input_shape: Sequence[int], ignore: Iterable[str] = (), graph: Any = None
) -> list[ChannelGroup]:
    """The prunable channel groups of ``model``, in a stable order (by name).

    The classifier's outputs (every layer whose outputs reach the model's output without
    passing another convolution or linear layer) are never pruned, nor any layer inside a
    module named in ``ignore``. ``graph`` is the model's dependency graph, if already built.
    """
    graph = graph if graph is not None else build_graph(model, input_shape)
    modules = dict(model.named_modules())
    names = {module: name for name, module in modules.items()}
    order = {name: i for i, name in enumerate(names.values())}
    user_ignored = _ignored_modules(model, ignore)
    ignored = user_ignored | _output_layers(graph)
    groups: dict[str, ChannelGroup] = {}
    for found_heads in find_attention(model):  # pruned by heads here, never by torch-pruning
        projections = [modules[p] for p in found_heads.projections]
        ignored.update(projections)
        if not any(p in user_ignored for p in projections) and found_heads.heads > 1:
            groups[found_heads.q] = head_group(found_heads)
    attention = _attention_modules(model)
    roots = ROOT_TYPES + tuple({type(m) for m in modules.values() if is_conv1d(m)})
    for group in graph.get_all_groups(ignored_layers=list(ignored), root_module_types=roots):
        found = _describe(graph, group, names, order, attention)
        if found is not None and found.name not in groups:
            groups[found.name] = found
    return [groups[name] for name in sorted(groups, key=lambda n: order[n])]


def _describe(
    graph: Any,
    group: Any,
    names: dict[nn.Module, str],
    order: dict[str, int],
    attention: dict[str, str],
) -> ChannelGroup | None:
    outs = [
        names[item.dep.target.module]
        for item in group
        if item.dep.target.module in names and graph.is_out_channel_pruning_fn(item.dep.handler)
    ]
    touched = sorted(
        {names[i.dep.target.module] for i in group if i.dep.target.module in names},
        key=lambda n: order[n],
    )
    if not outs:
        return None
    name = min(outs, key=lambda n: order[n])
    owner = next((attention[o] for o in outs if o in attention), None)
    if owner is None:
        root = names[group[0].dep.target.module]
        return ChannelGroup(name, root, False, len(group[0].idxs), 1, None, tuple(touched))
    consumer = next(
        (
            i
            for i in group
            if isinstance(i.dep.target.module, ROOT_TYPES)
            and graph.is_in_channel_pruning_fn(i.dep.handler)
        ),
        None,
    )
    if consumer is None:
        raise SpaceError(f"attention {owner!r}: no output projection reads its heads")
    channels = len(consumer.idxs)
    heads = int(graph.model.get_submodule(owner).num_heads)
    if channels % heads:
        raise SpaceError(
            f"attention {owner!r}: {channels} channels do not split into {heads} heads"
        )
    root = names[consumer.dep.target.module]
    return ChannelGroup(name, root, True, channels, channels // heads, owner, tuple(touched))


def _attention_modules(model: nn.Module) -> dict[str, str]:
    """qkv projection name -> attention module name, for modules in the common (timm) layout:
    an integer ``num_heads`` attribute and a ``qkv`` linear child."""
    found = {}
    for name, module in model.named_modules():
        heads = getattr(module, "num_heads", None)
        qkv = getattr(module, "qkv", None)
        if isinstance(heads, int) and heads > 1 and isinstance(qkv, nn.Linear):
            found[f"{name}.qkv" if name else "qkv"] = name
    return found


def _ignored_modules(model: nn.Module, ignore: Iterable[str]) -> set[nn.Module]:
    modules = dict(model.named_modules())
    ignored: set[nn.Module] = set()
    for name in ignore:
        if name not in modules or not name:
            raise SpaceError(f"ignore names {name!r}, which is not a module of the model")
        ignored.update(modules[name].modules())
    return ignored


def _output_layers(graph: Any) -> set[nn.Module]:
    """Convolution and linear layers whose outputs reach the model's output directly."""
    found: set[nn.Module] = set()
    for module, node in graph.module2node.items():
        if _is_root(module) and _reaches_output(node):
            found.add(module)
    return found


def _reaches_output(start: Any) -> bool:
    stack, seen = [start], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if not node.outputs:
            return True
        for nxt in node.outputs:
            if not _is_root(nxt.module):
                stack.append(nxt)
    return False


def _is_root(module: object) -> bool:
    return isinstance(module, ROOT_TYPES) or (isinstance(module, nn.Module) and is_conv1d(module))


def _conv1d_pruner() -> type:
    """torch-pruning's pruning functions for transformers' ``Conv1D`` (weight (in, out))."""
    base = tp().pruner.function.BasePruningFunc

    class Conv1DPruner(base):  # type: ignore[misc, valid-type]
        def prune_out_channels(self, layer: Any, idxs: Sequence[int]) -> Any:
            keep = sorted(set(range(int(layer.nf))) - set(idxs))
            layer.weight = self._prune_parameter_and_grad(layer.weight, keep, 1)
            layer.bias = self._prune_parameter_and_grad(layer.bias, keep, 0)
            layer.nf = len(keep)
            return layer

        def prune_in_channels(self, layer: Any, idxs: Sequence[int]) -> Any:
            keep = sorted(set(range(int(layer.nx))) - set(idxs))
            layer.weight = self._prune_parameter_and_grad(layer.weight, keep, 0)
            layer.nx = len(keep)
            return layer

        def get_out_channels(self, layer: Any) -> int:
            return int(layer.nf)

        def get_in_channels(self, layer: Any) -> int:
            return int(layer.nx)

    return Conv1DPruner
