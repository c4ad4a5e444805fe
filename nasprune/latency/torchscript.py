"""``torchscript``: the module compiled by ``torch.jit.script`` (or traced), then frozen."""

from __future__ import annotations

import platform
import warnings

import torch
from torch import nn

from nasprune.errors import SearchError, first_line
from nasprune.latency.base import LatencyBackend, Runner, cpu_name
from nasprune.latency.registry import register_backend


def torchscript(module: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """``torch.jit.script`` of ``module``, or its trace when it does not script."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            return torch.jit.script(module)
        except Exception:
            try:
                return torch.jit.trace(module, (example,))
            except Exception as exc:
                first = first_line(exc)
                raise SearchError(f"cannot compile the subnet to TorchScript: {first}") from None


@register_backend
class TorchScriptBackend(LatencyBackend):
    """TorchScript, frozen for inference (constants folded, batch norms fused where it can)."""

    name = "torchscript"
    tolerance = 1e-5

    def fingerprint(self) -> str:
        where = torch.cuda.get_device_name() if self.device.type == "cuda" else cpu_name()
        machine = platform.machine()
        return (
            f"torchscript:{self.device.type}:{machine}:{where}:torch-{torch.__version__}"
            f":threads={self.settings.threads}"
        )

    def prepare(self, module: nn.Module, example: torch.Tensor) -> Runner:
        module = module.to(self.device)
        placed = example.to(self.device)
        compiled = torchscript(module, placed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frozen = torch.jit.freeze(compiled.eval())

        def run(x: torch.Tensor) -> torch.Tensor:
            return frozen(placed if x is example else x.to(self.device))

        return run
