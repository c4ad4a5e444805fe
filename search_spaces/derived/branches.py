"""Residual branches whose skip is in the parent: ``h = h + self.b1(h)`` in the parent's forward.

Such a branch ``b1`` holds no skip of its own, so replacing it by an identity would compute
``h + h``. It is found in the torch.fx graph of its *owner*, the module whose forward calls it
(its parent, or the parent of the ``ModuleList`` / ``ModuleDict`` holding it), traced with the
modules it calls as leaves: the call ``c = b1(h)`` takes one tensor, ``c`` feeds exactly one
add (directly or through pass-through operations, see :mod:`fxops`), and the add's other
operand is ``h`` (both reach a common node through pass-through operations only).

Removing it:

* in a supernet, the branch returns zeros shaped like its input (:func:`masking.silenced`),
  which is also how the check's reference removes it (``h + 0``);
* in a pruned model, :func:`cut_branches` rewrites the owner: its graph loses the call, the
  add and the operations between them (the add's users read ``h``), and a
  ``torch.fx.GraphModule`` of that graph, holding the owner's other children, parameters and
  buffers (the same objects), replaces the owner. The branch and its weights are gone from
  the module; an entry of a ``ModuleList`` / ``ModuleDict`` becomes a parameter-free
  ``nn.Identity`` that nothing calls, so that the container keeps its indices.

An owner whose traced forward depends on ``self.training`` (``F.dropout(x, 0.1,
self.training)``) is not rewritten: its graph would freeze one mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_type_hints

from torch import fx, nn

from plumbing import first_line
from search_spaces.derived.fxops import is_add, passthrough_input
from search_spaces.dimensions import SpaceError

_CONTAINERS = (nn.ModuleList, nn.ModuleDict)


def owner_of(name: str, modules: Mapping[str, nn.Module]) -> str:
    """The name of the module whose forward calls module ``name`` ("" for the model)."""
    owner = name.rpartition(".")[0]
    while owner and isinstance(modules[owner], _CONTAINERS):
        owner = owner.rpartition(".")[0]
    return owner


def relative(name: str, owner: str) -> str:
    return name[len(owner) + 1 :] if owner else name


class _OwnerTracer(fx.Tracer):
    """Traces a module's own forward: the modules it calls (its children, and the entries of
    its ModuleList / ModuleDict children) are leaves."""

    calls: frozenset[str] = frozenset()

    def trace(self, root: nn.Module | Callable[..., Any], concrete_args: Any = None) -> fx.Graph:
        if isinstance(root, nn.Module):
            modules = dict(root.named_modules())
            self.calls = frozenset(
                name
                for name in modules
                if name and all(isinstance(modules[p], _CONTAINERS) for p in _prefixes(name))
            )
        return super().trace(root, concrete_args)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name in self.calls or super().is_leaf_module(
            m, module_qualified_name
        )


def _prefixes(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def trace_owner(owner: nn.Module) -> fx.Graph:
    """The owner's graph (a :class:`SpaceError` if torch.fx cannot trace it, or if it depends
    on ``self.training``)."""
    graphs = []
    training = owner.training
    try:
        for mode in (True, False):
            owner.training = mode
            graphs.append(_OwnerTracer().trace(owner))
    except Exception as exc:
        raise SpaceError(f"torch.fx cannot trace it: {first_line(exc)}") from None
    finally:
        owner.training = training
    train, evaluation = (g.python_code("self").src for g in graphs)
    if train != evaluation:
        raise SpaceError("its forward depends on self.training")
    return _resolved(graphs[0], owner)


def _resolved(graph: fx.Graph, owner: nn.Module) -> fx.Graph:
    """The graph with its inputs' and output's annotations resolved where they are strings
    (``from __future__ import annotations``), which TorchScript could not read otherwise."""
    try:
        hints = get_type_hints(type(owner).forward)
    except Exception:
        hints = {}
    for node in graph.nodes:
        if isinstance(node.type, str):
            key = "return" if node.op == "output" else str(node.target).lstrip("*")
            node.type = hints.get(key)
    return graph


@dataclass(frozen=True)
class _Site:
    """A branch in its owner's graph: its call, the pass-through nodes after it, and the add."""

    call: fx.Node
    chain: tuple[fx.Node, ...]
    add: fx.Node


def _site(graph: fx.Graph, target: str, modules: Mapping[str, nn.Module]) -> _Site | str:
    """Where module ``target`` (relative to the owner) is a residual branch, or why it is not."""
    calls = [n for n in graph.nodes if n.op == "call_module" and n.target == target]
    if len(calls) != 1:
        return f"its parent's forward calls it {len(calls)} times"
    call = calls[0]
    if len(call.args) != 1 or call.kwargs or not isinstance(call.args[0], fx.Node):
        return "its parent calls it with more than one tensor"
    node = call
    chain: list[fx.Node] = []
    while len(node.users) == 1:
        (user,) = node.users
        if is_add(user) and sum(a is node for a in user.args[:2]) == 1:
            other = _other(user, node)
            if isinstance(other, fx.Node) and _meet(other, call.args[0], modules):
                return _Site(call, tuple(chain), user)
            return "its parent adds its output to something other than its input"
        if passthrough_input(user, modules) is not node:
            break
        chain.append(user)
        node = user
    return "its parent's forward does not add its output to its input"


def _other(add: fx.Node, node: fx.Node) -> fx.node.Argument:
    """The operand of ``add`` that is not ``node``."""
    return add.args[1] if add.args[0] is node else add.args[0]


def _meet(a: fx.Node, b: fx.Node, modules: Mapping[str, nn.Module]) -> bool:
    """Whether ``a`` and ``b`` reach a common node through pass-through operations only."""
    return bool(set(_upstream(a, modules)) & set(_upstream(b, modules)))


def _upstream(node: fx.Node, modules: Mapping[str, nn.Module]) -> list[fx.Node]:
    seen = [node]
    while (up := passthrough_input(seen[-1], modules)) is not None and len(seen) < 10_000:
        seen.append(up)
    return seen


def branch_problem(model: nn.Module, name: str) -> str | None:
    """None when module ``name`` is a residual branch in its owner's forward, else why not."""
    modules = dict(model.named_modules())
    owner = owner_of(name, modules)
    try:
        graph = trace_owner(modules[owner])
    except SpaceError as exc:
        return f"its parent {owner or 'model'!r} cannot be read: {exc}"
    site = _site(graph, relative(name, owner), dict(modules[owner].named_modules()))
    return site if isinstance(site, str) else None


def find_branches(model: nn.Module, candidates: Iterable[str]) -> list[str]:
    """The ``candidates`` (shape-preserving modules called once) that are residual branches
    in their owner's forward; an owner torch.fx cannot read holds none."""
    modules = dict(model.named_modules())
    by_owner: dict[str, list[str]] = {}
    for name in candidates:
        by_owner.setdefault(owner_of(name, modules), []).append(name)
    found = []
    for owner, names in by_owner.items():
        try:
            graph = trace_owner(modules[owner])
        except SpaceError:
            continue
        inside = dict(modules[owner].named_modules())
        found += [n for n in names if isinstance(_site(graph, relative(n, owner), inside), _Site)]
    return found


def cut_branches(model: nn.Module, names: Sequence[str]) -> nn.Module:
    """``model`` without the residual branches ``names``: each owner is replaced by its
    rewritten graph, deepest first (the model itself is returned anew if it owns one)."""
    modules = dict(model.named_modules())
    by_owner: dict[str, list[str]] = {}
    for name in names:
        if name not in modules:
            raise SpaceError(f"the plan removes branch {name!r}, which the model does not have")
        by_owner.setdefault(owner_of(name, modules), []).append(name)
    for owner in sorted(by_owner, key=lambda o: o.count(".") + bool(o), reverse=True):
        module = model.get_submodule(owner)
        rewritten = _without(module, [relative(n, owner) for n in by_owner[owner]], owner)
        if owner:
            model.set_submodule(owner, rewritten)
        else:
            model = rewritten
    return model


def _without(owner: nn.Module, targets: Sequence[str], label: str) -> fx.GraphModule:
    try:
        graph = trace_owner(owner)
    except SpaceError as exc:
        raise SpaceError(f"the plan removes branches of {label or 'model'!r}: {exc}") from None
    inside = dict(owner.named_modules())
    for target in targets:
        site = _site(graph, target, inside)
        if isinstance(site, str):
            raise SpaceError(f"the plan removes branch {target!r} of {label or 'model'!r}: {site}")
        other = _other(site.add, site.chain[-1] if site.chain else site.call)
        assert isinstance(other, fx.Node)  # _site checked it
        site.add.replace_all_uses_with(other)
        for node in (site.add, *reversed(site.chain), site.call):
            graph.erase_node(node)
    graph.lint()
    return _adopt(owner, fx.GraphModule(owner, graph, type(owner).__name__), targets)


def _adopt(owner: nn.Module, rewritten: fx.GraphModule, removed: Sequence[str]) -> fx.GraphModule:
    """``rewritten`` holding the owner's children (less the removed branches), parameters and
    buffers themselves, in the owner's order: its state dict is the owner's less the
    branches'. (The graph module holds only what the graph reads, in the order it reads it.)"""
    for name in [*rewritten._modules, *rewritten._parameters, *rewritten._buffers]:
        if name in owner._modules or name in owner._parameters or name in owner._buffers:
            delattr(rewritten, name)
    for name, child in owner.named_children():
        if name not in removed:
            setattr(rewritten, name, child)
    for target in removed:
        if "." in target:  # an entry of a container: a placeholder keeps the indices
            rewritten.set_submodule(target, nn.Identity())
    for name, param in owner.named_parameters(recurse=False):
        rewritten.register_parameter(name, param)
    for name, buffer in owner.named_buffers(recurse=False):
        persistent = name not in owner._non_persistent_buffers_set
        rewritten.register_buffer(name, buffer, persistent=persistent)
    for name in rewritten._buffers:
        if name not in owner._buffers:  # a plain tensor attribute the forward reads
            rewritten._non_persistent_buffers_set.add(name)
    rewritten.training = owner.training
    return rewritten
