"""The units a network is built from, as a latency lookup table sees them.

One forward pass with hooks lists, in execution order, the modules that do the work: a
convolution or linear layer together with the batch norm and the activation module that
directly consume its output (conv-bn-act, fused as inference runtimes fuse them), and any
module of a class the space names as a unit of its own (a built-in space's block). Each unit
is keyed by its structure and its input shape, so one measurement serves every subnetwork
that contains the same unit. What the units leave out (pooling, residual additions,
functional activations, the interpreter's overhead per layer) is what the predictor's
correction learns.

A unit whose layers run in int8 (a candidate of a space with bit-width dimensions) is another
unit, keyed with the quantization settings: it is timed as ONNX Runtime's QDQ int8 model of it,
calibrated on seeded random inputs (the scales it gets do not change its speed).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nasprune.quantization import SETTINGS, Int8Model
from plumbing import canonical_json, json_hash
from plumbing.modules import device_of

_COMPUTE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid)
_INT8_SAMPLES = 8  # random inputs an int8 unit is calibrated on


@dataclass(frozen=True)
class Unit:
    """One measurable piece of a network: the modules it runs, on an input of one shape."""

    key: str  # "unit:" + a hash of the description: what its measurement is filed under
    description: str
    input_shape: tuple[int, ...]  # without the batch dimension
    modules: tuple[nn.Module, ...]
    int8: tuple[str, ...] = ()  # its layers that run in int8, named in :meth:`standalone`'s module

    def standalone(self) -> nn.Module:
        """A copy of the unit that runs by itself on the CPU (eval mode); an :class:`Int8Model`
        when some of its layers run in int8."""
        parts = [copy.deepcopy(module) for module in self.modules]
        chain = len(parts) > 1 or (bool(self.int8) and isinstance(parts[0], _COMPUTE))  # layer "0"
        module = runnable(nn.Sequential(*parts) if chain else parts[0])
        if not self.int8:
            return module
        generator = torch.Generator().manual_seed(0)
        batches = [torch.randn(_INT8_SAMPLES, *self.input_shape, generator=generator)]
        return Int8Model(module, self.int8, batches)


def runnable(module: nn.Module) -> nn.Module:
    """``module`` in eval mode; one built on the meta device is moved to the CPU with small
    seeded weights (its speed does not depend on their values)."""
    module = module.eval()
    if any(t.is_meta for t in [*module.parameters(), *module.buffers()]):
        module = module.to_empty(device="cpu")
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
                if name.endswith("running_var"):
                    tensor.fill_(1.0)
                elif tensor.is_floating_point():
                    tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))
                else:
                    tensor.zero_()
    return module


@dataclass
class _Call:
    name: str  # in the traced module
    module: nn.Module
    inputs: tuple[int, ...]  # ids of the input tensors
    output: int  # id of the output tensor
    shape: tuple[int, ...]  # the first input's shape, batch included


def units_of(
    module: nn.Module,
    input_shape: Sequence[int],
    block_types: Sequence[type] = (),
    int8: Sequence[str] = (),
) -> list[Unit]:
    """The units of ``module`` on an input of ``(1, *input_shape)``, in execution order.
    Modules of ``block_types`` are units as a whole; inside them nothing else is one. ``int8``
    names the layers of ``module`` that run in int8. A module on the meta device is made
    :func:`runnable` first, in place: tracing real tensors at batch 1 is far quicker than meta
    tensors."""
    calls = _trace(runnable(module), tuple(input_shape), tuple(block_types))
    units: list[Unit] = []
    used: set[int] = set()
    for i, call in enumerate(calls):
        if i in used:
            continue
        if isinstance(call.module, tuple(block_types)):
            inside = call.name + "."
            quantized = [name.removeprefix(inside) for name in int8 if name.startswith(inside)]
            units.append(_unit([call.module], call.shape, quantized))
        elif isinstance(call.module, _COMPUTE):
            chain = [i, *_consumers(calls, i)]
            used.update(chain)
            quantized = ["0"] if call.name in int8 else []
            units.append(_unit([calls[j].module for j in chain], call.shape, quantized))
    return units


def _consumers(calls: list[_Call], start: int) -> list[int]:
    """The batch norm, then the activation, that directly take ``calls[start]``'s output."""
    chain: list[int] = []
    last, nxt = calls[start].output, start + 1
    for kinds in (_NORMS, _ACTIVATIONS):
        if nxt < len(calls) and isinstance(calls[nxt].module, kinds) and last in calls[nxt].inputs:
            chain.append(nxt)
            last, nxt = calls[nxt].output, nxt + 1
    return chain


def _trace(
    module: nn.Module, input_shape: tuple[int, ...], blocks: tuple[type, ...]
) -> list[_Call]:
    """Every leaf module's call (and every call of a block type, whose insides are skipped)."""
    calls: list[_Call] = []
    names = {id(sub): name for name, sub in module.named_modules()}
    outputs: list[Any] = []  # every output stays alive, so that tensor ids stay unique
    depth = [0]  # > 0 while inside a block

    def pre(mod: nn.Module, args: tuple[Any, ...]) -> None:
        if isinstance(mod, blocks):
            depth[0] += 1

    def post(mod: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        outputs.append(output)
        is_block = isinstance(mod, blocks)
        if is_block:
            depth[0] -= 1
        if depth[0] > 0 or not isinstance(output, torch.Tensor) or not args:
            return
        if not is_block and any(True for _ in mod.children()):
            return  # containers: their leaves are recorded
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if tensors:
            shape = tuple(tensors[0].shape)
            calls.append(_Call(names[id(mod)], mod, tuple(map(id, tensors)), id(output), shape))

    handles = []
    for sub in module.modules():
        handles.append(sub.register_forward_pre_hook(pre))
        handles.append(sub.register_forward_hook(post))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one batch-1 pass: more threads only contend with other work
    try:
        was_training = module.training
        module.eval()
        with torch.inference_mode():
            x = torch.zeros(1, *input_shape, device=device_of(module))
            outputs.append(module(x))
        module.train(was_training)
    finally:
        torch.set_num_threads(threads)
        for handle in handles:
            handle.remove()
    return calls


def _unit(modules: list[nn.Module], shape: tuple[int, ...], int8: Sequence[str] = ()) -> Unit:
    layers: dict[str, Any] = {"modules": [_describe(m) for m in modules], "input": list(shape[1:])}
    if int8:
        layers["int8"] = {"layers": sorted(int8), "settings": SETTINGS}
    described = canonical_json(layers)
    key = "unit:" + json_hash(layers, 24)
    return Unit(key, described, tuple(shape[1:]), tuple(modules), tuple(sorted(int8)))


def _describe(module: nn.Module) -> str:
    """The module's structure: its repr and its plain attributes (a block's flags)."""
    flags = {
        name: value
        for name, value in sorted(vars(module).items())
        if not name.startswith("_")
        and name != "training"
        and isinstance(value, bool | int | float | str | tuple)
    }
    return f"{module!r} {flags}" if flags else repr(module)
