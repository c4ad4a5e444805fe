"""The int8 model ONNX Runtime runs: static quantization in QDQ format of the exported fp32
model (weights signed 8 bits per output channel, activations unsigned 8 bits per tensor,
MinMax calibration on the search's own data), only the chosen layers' nodes quantized.

On a CPU this is the format with fast kernels (a 7-conv CNN ran 3.6x faster than fp32 here);
QOperator and dynamic quantization of convolutions were slower than fp32, and no CPU runtime
has fast kernels for 2-7 bit widths, so the choice per layer is fp32 or int8, in QDQ.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasprune.errors import ConfigError, SearchError, first_line
from plumbing import require

LAYER_OPS = ("Conv", "Gemm", "MatMul")
SETTINGS = "qdq:per-channel-s8:u8-minmax"  # what the int8 model is, for latency fingerprints


def _onnx() -> Any:
    return require("onnx", "int8 layers need ONNX", "onnx", ConfigError)


def _quantization() -> Any:
    need = "int8 layers need ONNX Runtime's quantization tools"
    return require("onnxruntime.quantization", need, "onnxruntime", ConfigError)


def _scopes(node_name: str) -> list[list[str]]:
    """The module scopes of a node of the TorchScript exporter, outermost first, each split at
    its dots: ``/layer2/layer2.0/shortcut/shortcut.0/Conv`` gives layer2, layer2.0, shortcut,
    shortcut.0."""
    return [scope.split(".") for scope in node_name.split("/")[1:-1]]


def fits(node_name: str, module: str) -> bool:
    """Whether the node came from the module named ``module``. Each scope is the end of its
    module's full name (a container's child is named with the container, a module called
    straight from a list or dict without it), and each scope's module is an ancestor of the
    next one's, so the scopes are matched from the innermost out."""
    parts, scopes = module.split("."), _scopes(node_name)
    if not scopes or parts[len(parts) - len(scopes[-1]) :] != scopes[-1]:
        return False
    end = len(parts)
    for scope in reversed(scopes[:-1]):
        width = len(scope)
        end = next((e for e in range(end - 1, width - 1, -1) if parts[e - width : e] == scope), -1)
        if end < 0:
            return False
    return True


def layer_nodes(model: Any, names: Sequence[str]) -> dict[str, list[str]]:
    """Layer name (among ``names``) -> its convolution or matrix-product nodes in ``model``;
    a node that fits no name, or several, is left out."""
    found: dict[str, list[str]] = {}
    for node in model.graph.node:
        if node.op_type in LAYER_OPS:
            owners = [name for name in names if fits(node.name, name)]
            if len(owners) == 1:
                found.setdefault(owners[0], []).append(node.name)
    return found


class _Reader:
    """ONNX Runtime's calibration data reader over a list of input batches."""

    def __init__(self, batches: Sequence[torch.Tensor]) -> None:
        self._batches = iter(batches)

    def get_next(self) -> dict[str, Any] | None:
        batch = next(self._batches, None)
        return None if batch is None else {"input": batch.detach().cpu().numpy()}

    def rewind(self) -> None:  # pragma: no cover - ONNX Runtime calls it for some calibrators
        raise RuntimeError("the calibration batches are read once")


@contextmanager
def _quiet() -> Iterator[None]:
    """ONNX Runtime's quantizer advises pre-processing through the root logger on every call."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_qdq(
    fp32: bytes,
    layers: Sequence[str],
    batches: Sequence[torch.Tensor],
    names: Sequence[str],
    symmetric: bool = False,
) -> bytes:
    """The QDQ int8 model of the exported ``fp32`` model with ``layers`` (torch module names)
    in int8, calibrated on ``batches``; ``names`` are all the module's quantizable layers
    (:func:`nasprune.quantization.fake.quantizable`). A layer with no node is an error. With
    ``symmetric``, activations are signed 8 bits with zero point 0 instead (what TensorRT's
    explicit quantization reads; ONNX Runtime's CPU kernels are fastest with the default)."""
    onnx, quantization = _onnx(), _quantization()
    model = onnx.load_from_string(fp32)
    nodes = layer_nodes(model, names)
    missing = [name for name in layers if name not in nodes]
    if missing:
        raise SearchError(f"int8 layers with no node in the exported model: {missing}")
    if not batches:
        raise SearchError("int8 layers need calibration batches")
    chosen = [node for name in layers for node in nodes[name]]
    with tempfile.TemporaryDirectory(prefix="nasprune-qdq-") as tmp, _quiet():
        out = Path(tmp) / "int8.onnx"
        try:
            quantization.quantize_static(
                model, out, _Reader(batches),
                quant_format=quantization.QuantFormat.QDQ, per_channel=True,
                activation_type=quantization.QuantType.QInt8
                if symmetric else quantization.QuantType.QUInt8,
                weight_type=quantization.QuantType.QInt8,
                nodes_to_quantize=chosen, op_types_to_quantize=list(LAYER_OPS),
                calibrate_method=quantization.CalibrationMethod.MinMax,
                extra_options={
                    "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1},
                    "ActivationSymmetric": symmetric,
                },
            )  # fmt: skip
        except Exception as exc:
            first = first_line(exc)
            raise SearchError(f"ONNX Runtime could not quantize the model: {first}") from None
        return out.read_bytes()


class OrtModule(nn.Module):
    """An ONNX model run by ONNX Runtime on the CPU, called like the torch module it came from
    (to score the int8 model itself: the deployed numbers)."""

    def __init__(self, model: bytes, threads: int = 1) -> None:
        super().__init__()
        ort = require("onnxruntime", "int8 layers need ONNX Runtime", "onnxruntime", ConfigError)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"input": x.detach().cpu().float().numpy()})[0]
        return torch.from_numpy(out)
