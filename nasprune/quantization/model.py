"""A candidate whose layers partly run in int8, as every part of nasprune meets it: called in
torch it computes as its fake-quantized twin; :meth:`Int8Model.qdq` is the int8 model ONNX
Runtime runs, which the ``onnxruntime`` backend times and prune mode scores."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn

from nasprune.onnx_export import onnx_bytes
from nasprune.quantization.fake import FakeInt8
from nasprune.quantization.qdq import SETTINGS, OrtModule, quantize_qdq
from search_spaces.quantization import quantizable
from storage import DeviceKey

# Largest gap between ONNX Runtime's int8 outputs and the fake-quantized model's on a latency
# backend's check input, as a share of the largest output: the check catches an export of
# another model, not rounding. The input is calibration data (:meth:`Int8Model.sample`):
# random inputs, outside the calibrated ranges, parted the two by up to 0.77.
OUTPUT_TOLERANCE = 0.1


class Int8Model(nn.Module):
    """``fp32`` with ``layers`` in int8, calibrated on ``batches``.

    Example::

        int8 = Int8Model(subnet, ["features.0", "head"], batches)
        int8(x)                          # the fake-quantized forward
        deployed = int8.deployed()       # ONNX Runtime's int8 model, called like a module
    """

    tolerance = OUTPUT_TOLERANCE

    def __init__(
        self, fp32: nn.Module, layers: Sequence[str], batches: Sequence[torch.Tensor]
    ) -> None:
        super().__init__()
        self.layers = tuple(layers)
        self.batches = list(batches)
        self.fp32 = fp32.eval()
        self.fake = copy.deepcopy(self.fp32)
        FakeInt8(self.fake, self.layers, self.batches)
        # quantized once (per kind): prune mode scores it, the backend times it
        self._qdq: dict[bool, bytes] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fake(x)

    def sample(self, batch_size: int) -> torch.Tensor:
        """``batch_size`` inputs of the calibration data (repeated when it holds fewer)."""
        rows = torch.cat(self.batches)
        return rows[torch.arange(batch_size) % len(rows)]

    def qdq(self, symmetric: bool = False) -> bytes:
        """The QDQ int8 ONNX model (exported from the fp32 module, quantized by ONNX Runtime),
        made at the first call: the fp32 module is not to change after it. ``symmetric``:
        signed activations with zero point 0, as TensorRT reads them."""
        if symmetric not in self._qdq:
            fp32 = onnx_bytes(self.fp32, self.batches[0][:1])
            names = quantizable(self.fp32)
            self._qdq[symmetric] = quantize_qdq(fp32, self.layers, self.batches, names, symmetric)
        return self._qdq[symmetric]

    def deployed(self, threads: int = 1) -> OrtModule:
        return OrtModule(self.qdq(), threads)


def int8_device(on: DeviceKey) -> DeviceKey:
    """Where an int8 model's figures are filed: the device with the quantization settings."""
    return replace(on, device=f"{on.device}|int8:{SETTINGS}")
