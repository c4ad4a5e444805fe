"""The one abstract base of a latency backend.

A backend times a standalone (extracted) subnet at a fixed batch size after warm-up runs and
reports the median and 90th percentile in milliseconds. Before timing, it checks that what it
runs (a TorchScript compile, an ONNX Runtime session ...) gives torch eager's outputs on the
very input it times, within its ``tolerance``: a fast but wrong export is never measured.
Its :meth:`LatencyBackend.fingerprint` names the device, the backend and the library versions
precisely enough that a stored measurement is reused only for the same kind of machine with
the same settings.
"""

from __future__ import annotations

import abc
import math
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from nasprune.config import LatencyConfig
from nasprune.errors import ConfigError, SearchError
from plumbing.modules import device_of

Runner = Callable[[torch.Tensor], torch.Tensor]  # runs the prepared module on an input


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p90_ms: float
    spread: float = 0.0  # interquartile range / median
    repeats: int = 0  # timed runs it took
    noisy: bool = False  # the median's confidence interval never got within the precision


def median_ci(times: list[float]) -> tuple[float, float]:
    """A 95% confidence interval of the median of ``times`` (sorted), from order statistics:
    the ranks n/2 -+ 1.96 sqrt(n)/2, clamped to the sample."""
    n = len(times)
    reach = 1.96 * math.sqrt(n) / 2
    low = max(0, math.floor(n / 2 - reach))
    high = min(n - 1, math.ceil(n / 2 + reach) - 1)
    return times[low], times[high]


def summarise(times: list[float], precision: float) -> Latency:
    """Median, p90, spread and the noisy flag of sorted timings (milliseconds)."""
    n = len(times)
    median = statistics.median(times)
    p90 = times[min(n - 1, int(round(0.9 * (n - 1))))]
    q1, q3 = times[int(0.25 * (n - 1))], times[int(round(0.75 * (n - 1)))]
    low, high = median_ci(times)
    precise = (high - low) / 2 <= precision * median
    return Latency(
        median_ms=median,
        p90_ms=p90,
        spread=(q3 - q1) / median if median > 0 else 0.0,
        repeats=n,
        noisy=not precise,
    )


class LatencyBackend(abc.ABC):
    """Times a module on one device with one runtime.

    Contract: :meth:`measure` leaves global torch settings (threads, device) as it found them
    and does not train or change the module. Backends are not thread-safe: measure one module
    at a time, since concurrent work on the same device spoils the figures. A backend that
    cannot run on this machine raises :class:`nasprune.errors.ConfigError` when built, so a
    config naming it is refused before a search starts.

    Subclasses implement :meth:`fingerprint` and :meth:`prepare`; :meth:`synchronize` and
    :meth:`clock` are hooks for devices that run asynchronously.
    """

    name: ClassVar[str]
    tolerance: ClassVar[float] = 0.0  # largest allowed |output - torch eager output|

    def __init__(self, settings: LatencyConfig) -> None:
        if settings.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                f"latency.device is cuda (backend {self.name}), but torch sees no CUDA device here"
            )
        self.settings = settings
        self.device = torch.device(settings.device)

    @abc.abstractmethod
    def fingerprint(self) -> str:
        """A string naming the device, the runtime and its version, and the threads."""

    @abc.abstractmethod
    def prepare(self, module: nn.Module, example: torch.Tensor) -> Runner:
        """What will be timed: ``module`` compiled or moved for this backend, as a function."""

    def synchronize(self) -> None:
        """Wait for queued work to finish (a no-op on the CPU)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def measure(self, module: nn.Module, input_shape: tuple[int, ...]) -> Latency:
        s = self.settings
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(s.threads)
        try:
            module = module.eval()
            x = torch.randn(s.batch_size, *input_shape, generator=torch.Generator().manual_seed(0))
            with torch.inference_mode():
                run = self.prepare(module, x)
                if run is not module:  # eager torch on the CPU is the reference itself
                    self.check_outputs(module, run, x)
                for _ in range(s.warmup):
                    run(x)
                return self._rounds(run, x)
        finally:
            torch.set_num_threads(previous_threads)

    def _rounds(self, run: Runner, x: torch.Tensor) -> Latency:
        """Rounds of ``repeats`` timed runs until the median's 95% confidence interval is
        within ``precision`` of it; past ``max_repeats`` runs or ``time_cap_s`` seconds the
        figure is kept and flagged noisy."""
        s = self.settings
        deadline = time.perf_counter() + s.time_cap_s
        times: list[float] = []
        while True:
            times.extend(self._time_once(run, x) * 1000.0 for _ in range(s.repeats))
            times.sort()
            found = summarise(times, s.precision)
            spent = len(times) >= s.max_repeats or time.perf_counter() >= deadline
            if not found.noisy or spent:
                return found

    def check_outputs(self, module: nn.Module, run: Runner, x: torch.Tensor) -> None:
        """Refuse to time ``run`` unless it computes what torch eager computes on ``x``."""
        want = module(x.to(device_of(module))).float().cpu()
        got = run(x).float().cpu()
        gap = float((got - want).abs().max()) if got.shape == want.shape else float("inf")
        if not gap <= self.tolerance * max(1.0, float(want.abs().max())):
            raise SearchError(
                f"latency backend {self.name}: outputs differ from torch eager by {gap:.2e} "
                f"(tolerance {self.tolerance:.0e}); the module is not measured"
            )

    def _time_once(self, run: Runner, x: torch.Tensor) -> float:
        """Seconds for one run: wall clock on the CPU, CUDA events on a GPU."""
        if self.device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run(x)
            end.record()
            torch.cuda.synchronize()
            return float(start.elapsed_time(end)) / 1000.0
        start_s = time.perf_counter()
        run(x)
        return time.perf_counter() - start_s


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (or the platform's processor)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
