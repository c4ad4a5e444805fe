"""Latency measured on the target device: one abstract backend, a registry, CPU and CUDA.

A backend times a standalone (extracted) subnet at a fixed batch size after warm-up runs and
reports the median and 90th percentile in milliseconds. Its :meth:`LatencyBackend.fingerprint`
names the device precisely enough that a stored measurement may be reused only on the same
kind of machine with the same settings.
"""

from __future__ import annotations

import abc
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from nasprune.config import LatencyConfig
from nasprune.errors import ConfigError


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p90_ms: float


class LatencyBackend(abc.ABC):
    """Times a module on one device.

    Contract: :meth:`measure` leaves global torch settings (threads, device) as it found them
    and does not train or change the module. Backends are not thread-safe: measure one module
    at a time, since concurrent work on the same device spoils the figures.
    """

    name: ClassVar[str]

    def __init__(self, settings: LatencyConfig) -> None:
        self.settings = settings

    @abc.abstractmethod
    def fingerprint(self) -> str:
        """A string naming the device, the torch build and the threads."""

    @abc.abstractmethod
    def _time_once(self, module: nn.Module, x: torch.Tensor) -> float:
        """Seconds for one forward pass of ``module`` on ``x``."""

    def _prepare(self, module: nn.Module, x: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
        """Move module and input where they run (a no-op hook)."""
        return module, x

    def measure(self, module: nn.Module, input_shape: tuple[int, ...]) -> Latency:
        s = self.settings
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(s.threads)
        try:
            module, x = self._prepare(module.eval(), torch.randn(s.batch_size, *input_shape))
            with torch.inference_mode():
                for _ in range(s.warmup):
                    module(x)
                times = sorted(self._time_once(module, x) * 1000.0 for _ in range(s.repeats))
        finally:
            torch.set_num_threads(previous_threads)
        p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
        return Latency(median_ms=statistics.median(times), p90_ms=p90)


class CPUBackend(LatencyBackend):
    """Wall-clock timing on the CPU with ``threads`` intra-op threads.

    >>> CPUBackend(LatencyConfig(threads=1)).measure(nn.Linear(8, 2), (8,)).median_ms > 0
    True
    """

    name = "cpu"

    def fingerprint(self) -> str:
        cpu = platform.processor() or platform.machine()
        return f"cpu:{cpu}:{_cpu_model()}:torch-{torch.__version__}:threads={self.settings.threads}"

    def _time_once(self, module: nn.Module, x: torch.Tensor) -> float:
        start = time.perf_counter()
        module(x)
        return time.perf_counter() - start


class CUDABackend(LatencyBackend):
    """CUDA events around each forward pass, after moving module and input to the GPU."""

    name = "cuda"

    def __init__(self, settings: LatencyConfig) -> None:
        if not torch.cuda.is_available():
            raise ConfigError("latency.device is cuda, but torch sees no CUDA device here")
        super().__init__(settings)

    def fingerprint(self) -> str:
        return f"cuda:{torch.cuda.get_device_name()}:torch-{torch.__version__}"

    def _prepare(self, module: nn.Module, x: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
        return module.to("cuda"), x.to("cuda")

    def _time_once(self, module: nn.Module, x: torch.Tensor) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        module(x)
        end.record()
        torch.cuda.synchronize()
        return float(start.elapsed_time(end)) / 1000.0


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


BACKENDS: dict[str, Callable[[LatencyConfig], LatencyBackend]] = {
    CPUBackend.name: CPUBackend,
    CUDABackend.name: CUDABackend,
}


def create_backend(settings: LatencyConfig) -> LatencyBackend:
    """The backend that ``settings.device`` names; unknown names list the known ones."""
    try:
        factory = BACKENDS[settings.device]
    except KeyError:
        raise ConfigError(
            f"unknown latency device {settings.device!r}; known: {', '.join(sorted(BACKENDS))}"
        ) from None
    return factory(settings)
