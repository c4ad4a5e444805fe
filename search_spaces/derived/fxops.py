"""The torch.fx operations a residual path is made of: adds, and pass-through operations.

A pass-through operation is element-wise and maps zero to zero (activations, dropout,
identities): a residual passes through it (``relu(x + f(x))``), and a residual branch followed
by one still contributes nothing once its output is zero (``h + dropout(f(h))``).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import fx, nn

_ADDS = {operator.add, operator.iadd, torch.add}
_PASS_FUNCTIONS = {F.relu, F.relu6, F.gelu, F.silu, F.dropout, torch.relu}
_PASS_MODULES = (nn.Identity, nn.Dropout, nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish)
_PASS_METHODS = {"relu", "relu_"}


def is_add(node: fx.Node) -> bool:
    """Whether ``node`` adds its first two arguments (``+``, ``+=``, ``torch.add``, ``.add``)."""
    return (node.op == "call_function" and node.target in _ADDS) or (
        node.op == "call_method" and node.target in ("add", "add_") and len(node.args) == 2
    )


def passthrough_input(node: fx.Node, modules: Mapping[str, nn.Module]) -> fx.Node | None:
    """The input of ``node`` if it is a pass-through operation on it, else None (``modules``:
    the traced module's submodules by name, for ``call_module`` nodes)."""
    first = node.args[0] if node.args else None
    if not isinstance(first, fx.Node):
        return None
    if node.op == "call_function" and node.target in _PASS_FUNCTIONS:
        return first
    if node.op == "call_method" and node.target in _PASS_METHODS:
        return first
    if node.op == "call_module" and isinstance(modules.get(str(node.target)), _PASS_MODULES):
        return first
    return None
