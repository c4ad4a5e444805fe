"""Residual blocks that can be removed whole, found by tracing the model with ``torch.fx``.

A module is a *skippable block* when it is called once, takes one tensor and returns one of
the same shape, and its output is its input plus residual branches: the output is an add
whose one side leads back to the block's input through further adds, identities, dropouts or
element-wise activations (``relu(x + f(x))`` in a ResNet block, ``x + conv(x)`` in an inverted
residual, ``x + attn(x)`` then ``+ mlp(x)`` in a transformer block). Removing such a block
means replacing it with ``nn.Identity``. A shape-preserving module called once whose skip is in
its parent (``h = h + self.b1(h)`` in the parent's forward) is a removable *branch*
(:mod:`branches`): removing it removes the add too. Only the innermost removable modules are
kept, so a stage that is itself residual is covered by its blocks, and a skippable block's
own branches are not offered beside it (removing the block removes them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import fx, nn

from plumbing import first_line
from search_spaces.derived.branches import branch_problem, find_branches
from search_spaces.derived.discovery import culprit, example_input
from search_spaces.derived.fxops import is_add, passthrough_input
from search_spaces.dimensions import SpaceError


@dataclass(frozen=True)
class Block:
    """A removable block and the stage it belongs to (its parent module); ``branch``: its
    skip is in its parent (removed with the parent's add), not in itself."""

    name: str
    stage: str
    branch: bool = False

    def as_json(self) -> dict[str, str | bool]:
        return {"name": self.name, "stage": self.stage, "branch": self.branch}


def stage_of(name: str) -> str:
    return name.rpartition(".")[0] or "model"


def listed_blocks(
    model: nn.Module, names: Iterable[str], input_shape: Sequence[int]
) -> list[Block]:
    """Blocks the user names (for models that torch.fx cannot trace), checked for shape and
    for their skip connection: the block must add its own input to its output (seen in the
    autograd graph of one forward pass), else replacing it by ``nn.Identity`` would not
    remove it (a branch whose skip is in the parent would turn ``h + f(h)`` into ``h + h``);
    or, failing that, be a branch its parent's torch.fx graph adds to its input (then the
    add goes with it)."""
    modules = dict(model.named_modules())
    shapes = _io_shapes(model, input_shape)
    residual = _residual_in_autograd(model, input_shape)
    blocks = []
    for name in names:
        if not name or name not in modules:
            raise SpaceError(f"blocks names {name!r}, which is not a module of the model")
        shape_in, shape_out = shapes.get(name, (None, None))
        if shape_in is None:
            raise SpaceError(f"block {name!r} is not called with one tensor in a forward pass")
        if shape_in != shape_out:
            raise SpaceError(
                f"block {name!r} maps {shape_in} to {shape_out}; only shape-preserving "
                "(residual) blocks can be removed"
            )
        if residual.get(name, False):
            blocks.append(Block(name, stage_of(name)))
            continue
        why = branch_problem(model, name)
        if why is not None:
            raise SpaceError(
                f"block {name!r} does not add its input to its output (its skip connection, "
                f"if any, is outside it), and {why}: removing it would not bypass it; name "
                "the module that holds the skip"
            )
        blocks.append(Block(name, stage_of(name), branch=True))
    return blocks


_PASS_GRADS = {
    "ReluBackward0",
    "ReluBackward1",
    "HardtanhBackward0",
    "GeluBackward0",
    "SiluBackward0",
    "HardswishBackward0",
    "CloneBackward0",
    "NativeDropoutBackward0",
}
_ADD_GRADS = {"AddBackward0", "AddBackward1"}


def _residual_in_autograd(model: nn.Module, input_shape: Sequence[int]) -> dict[str, bool]:
    """Module name -> whether its output was its input plus something, through adds and
    element-wise activations only (or its input itself), in one forward pass with autograd."""
    found: dict[str, bool] = {}
    handles = []

    def hook(name: str):  # noqa: ANN202
        def record(module: nn.Module, args: tuple, output: object) -> None:
            if len(args) == 1 and isinstance(args[0], torch.Tensor):
                if isinstance(output, torch.Tensor):
                    found[name] = found.get(name, True) and _adds_input(output, args[0])

        return record

    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(hook(name)))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, *input_shape, generator=gen).to(device).requires_grad_(True)
    training = model.training
    try:
        with torch.enable_grad():
            model.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(training)
    return found


def _adds_input(output: torch.Tensor, inp: torch.Tensor) -> bool:
    if output is inp:
        return True
    if output.grad_fn is None:
        return False
    return _grad_spine(output.grad_fn, inp, need_add=True)


def _is_input(node: object, inp: torch.Tensor) -> bool:
    if inp.grad_fn is not None:
        return node is inp.grad_fn
    return getattr(node, "variable", None) is inp  # a leaf's AccumulateGrad


def _grad_spine(node: object, inp: torch.Tensor, need_add: bool) -> bool:
    """Whether autograd ``node`` is ``inp`` (its grad_fn, or its AccumulateGrad if it is a
    leaf) plus residual branches (at least one add if ``need_add``)."""
    for _ in range(10_000):
        if _is_input(node, inp):
            return not need_add
        kind = type(node).__name__
        nexts = [n for n, _ in getattr(node, "next_functions", ()) if n is not None]
        if kind in _ADD_GRADS:
            return any(_grad_spine(n, inp, False) for n in nexts)
        if kind not in _PASS_GRADS or not nexts:
            return False
        node = nexts[0]
    return False


def find_blocks(model: nn.Module, input_shape: Sequence[int]) -> list[Block]:
    """The innermost removable blocks of ``model`` (skippable blocks, and branches outside
    them whose skip is in their parent), in definition order."""
    try:
        graph = fx.symbolic_trace(model).graph
    except Exception as exc:
        first = first_line(exc)
        raise SpaceError(
            f"torch.fx cannot trace the model{culprit(exc, model)} to find residual blocks "
            f"({first}); list them with block_names, or set blocks: none"
        ) from None
    modules = dict(model.named_modules())
    shapes = _io_shapes(model, input_shape)
    same = [name for name in modules if name in shapes and shapes[name][0] == shapes[name][1]]
    found = [name for name in same if _is_residual(graph, name, modules)]
    outside = [n for n in same if not any(n == s or n.startswith(s + ".") for s in found)]
    branches = set(find_branches(model, outside))
    every = [n for n in same if n in branches or n in found]
    innermost = [n for n in every if not any(o != n and o.startswith(n + ".") for o in every)]
    return [Block(name, stage_of(name), branch=name in branches) for name in innermost]


def _is_residual(graph: fx.Graph, name: str, modules: dict[str, nn.Module]) -> bool:
    inside = [n for n in graph.nodes if name in n.meta.get("nn_module_stack", {})]
    if not inside:
        return False
    members = set(inside)
    inputs = {a for n in inside for a in n.all_input_nodes if a not in members}
    outputs = [n for n in inside if any(u not in members for u in n.users)]
    if len(inputs) != 1 or len(outputs) != 1:
        return False
    (entry,) = inputs
    return _on_spine(outputs[0], entry, members, modules, need_add=True)


def _on_spine(
    node: fx.Node,
    entry: fx.Node,
    members: set[fx.Node],
    modules: dict[str, nn.Module],
    need_add: bool,
) -> bool:
    """Whether ``node`` is ``entry`` plus residual branches (at least one add if ``need_add``)."""
    for _ in range(10_000):
        if node is entry:
            return not need_add
        if node not in members:
            return False
        if is_add(node):
            return any(
                isinstance(arg, fx.Node) and _on_spine(arg, entry, members, modules, False)
                for arg in node.args[:2]
            )
        passthrough = passthrough_input(node, modules)
        if passthrough is None:
            return False
        node = passthrough
    return False


def _io_shapes(
    model: nn.Module, input_shape: Sequence[int]
) -> dict[str, tuple[tuple[int, ...] | None, tuple[int, ...] | None]]:
    """Input and output shape of every module called exactly once with one tensor."""
    shapes: dict[str, tuple[tuple[int, ...] | None, tuple[int, ...] | None]] = {}
    calls: dict[str, int] = {}
    handles = []

    def hook(name: str):  # noqa: ANN202
        def record(module: nn.Module, args: tuple, output: object) -> None:
            calls[name] = calls.get(name, 0) + 1
            if (
                len(args) == 1
                and isinstance(args[0], torch.Tensor)
                and isinstance(output, torch.Tensor)
            ):
                shapes[name] = (tuple(args[0].shape), tuple(output.shape))

        return record

    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(hook(name)))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        with torch.no_grad():
            model.eval()(example_input(input_shape, device))
    finally:
        for handle in handles:
            handle.remove()
    return {name: s for name, s in shapes.items() if calls.get(name) == 1}
