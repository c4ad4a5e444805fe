"""``torch``: the module as it is, in eager mode, on the CPU or (``device: cuda``) a GPU."""

from __future__ import annotations

import platform

import torch
from torch import nn

from nasprune.latency.base import LatencyBackend, Runner, cpu_name
from nasprune.latency.registry import register_backend


@register_backend
class TorchBackend(LatencyBackend):
    """Eager torch; the reference every other backend is checked against.

    >>> from nasprune.config import LatencyConfig
    >>> TorchBackend(LatencyConfig(threads=1)).measure(nn.Linear(8, 2), (8,)).median_ms > 0
    True
    """

    name = "torch"

    def fingerprint(self) -> str:
        threads = self.settings.threads
        if self.device.type == "cuda":
            return f"cuda:{torch.cuda.get_device_name()}:torch-{torch.__version__}"
        cpu = platform.processor() or platform.machine()
        return f"cpu:{cpu}:{cpu_name()}:torch-{torch.__version__}:threads={threads}"

    def prepare(self, module: nn.Module, example: torch.Tensor) -> Runner:
        if self.device.type == "cpu":
            return module  # the reference itself: nothing to check against, nothing to move
        module = module.to(self.device)
        placed = example.to(self.device)

        def run(x: torch.Tensor) -> torch.Tensor:
            return module(placed if x is example else x.to(self.device))

        return run
