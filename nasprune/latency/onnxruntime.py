"""``onnxruntime``: the module exported to ONNX and run by ONNX Runtime (CPU or CUDA provider)."""

from __future__ import annotations

import platform
from typing import Any

import torch
from torch import nn

from nasprune.config import LatencyConfig
from nasprune.errors import ConfigError
from nasprune.latency.base import LatencyBackend, Runner, cpu_name
from nasprune.latency.registry import register_backend
from nasprune.onnx_export import onnx_bytes
from nasprune.quantization import Int8Model
from plumbing import require


def _ort() -> Any:
    needs = "latency.backend onnxruntime needs ONNX Runtime"
    return require("onnxruntime", needs, "onnxruntime", ConfigError)


@register_backend
class OnnxRuntimeBackend(LatencyBackend):
    """ONNX Runtime with the CPU execution provider (the CUDA one for ``device: cuda``)."""

    name = "onnxruntime"
    tolerance = 1e-4
    runs_int8 = True  # an Int8Model runs as its QDQ model (nasprune.quantization)

    def __init__(self, settings: LatencyConfig) -> None:
        super().__init__(settings)
        self.ort = _ort()
        self.provider = (
            "CUDAExecutionProvider" if settings.device == "cuda" else "CPUExecutionProvider"
        )
        if self.provider not in self.ort.get_available_providers():
            raise ConfigError(
                f"ONNX Runtime here has no {self.provider} (it has "
                f"{', '.join(self.ort.get_available_providers())})"
            )

    def fingerprint(self) -> str:
        where = torch.cuda.get_device_name() if self.device.type == "cuda" else cpu_name()
        return (
            f"onnxruntime:{self.provider}:{platform.machine()}:{where}"
            f":ort-{self.ort.__version__}:threads={self.settings.threads}"
        )

    def prepare(self, module: nn.Module, example: torch.Tensor) -> Runner:
        options = self.ort.SessionOptions()
        options.intra_op_num_threads = self.settings.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        model = module.qdq() if isinstance(module, Int8Model) else onnx_bytes(module, example)
        session = self.ort.InferenceSession(model, options, providers=[self.provider])
        cached = {id(example): example.cpu().numpy()}

        def run(x: torch.Tensor) -> torch.Tensor:
            array = cached.get(id(x))
            if array is None:
                array = x.cpu().numpy()
            return torch.from_numpy(session.run(None, {"input": array})[0])

        return run
