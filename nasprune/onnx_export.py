"""The one ONNX export of a module: what the ``onnxruntime`` backend times, ``export --format
onnx`` writes and the int8 quantizer (:mod:`nasprune.quantization`) starts from."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from nasprune.errors import SearchError, first_line


def export_onnx(module: nn.Module, example: torch.Tensor, target: str | Path | io.BytesIO) -> None:
    """The TorchScript-based exporter (opset 17, a dynamic batch axis): it needs no onnxscript."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                module, (example,), target if isinstance(target, io.BytesIO) else str(target),  # type: ignore[arg-type]
                dynamo=False, opset_version=17, input_names=["input"], output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            )  # fmt: skip
        except Exception as exc:
            first = first_line(exc)
            raise SearchError(f"the subnet cannot be exported to ONNX: {first}") from None


def onnx_bytes(module: nn.Module, example: torch.Tensor) -> bytes:
    """The exported model, in memory (the module and the example moved to the CPU)."""
    buffer = io.BytesIO()
    export_onnx(module.cpu(), example.cpu(), buffer)
    return buffer.getvalue()
