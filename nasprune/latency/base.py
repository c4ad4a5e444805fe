"""The one abstract base of a latency backend.

A backend times a standalone (extracted) subnet at a fixed batch size after warm-up runs:
:meth:`LatencyBackend.measure` reports the absolute median and 90th percentile in
milliseconds; :meth:`LatencyBackend.measure_against` alternates the subnet with a reference
network in short bursts and reports the median of their paired time ratios, which the
machine's speed moving leaves as it is (see :mod:`nasprune.latency.reference`). Before timing,
it checks that what it runs (a TorchScript compile, an ONNX Runtime session ...) gives torch
eager's outputs on the very input it times, within its ``tolerance``: a fast but wrong export
is never measured. Its :meth:`LatencyBackend.fingerprint` names the device, the backend and
the library versions precisely enough that a stored measurement is reused only for the same
kind of machine with the same settings.
"""

from __future__ import annotations

import abc
import contextlib
import math
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from nasprune.config import LatencyConfig
from nasprune.errors import ConfigError, SearchError
from nasprune.latency.reference import ReferenceNetwork
from nasprune.quantization import Int8Model
from plumbing.modules import device_of

Runner = Callable[[torch.Tensor], torch.Tensor]  # runs the prepared module on an input
_MAX_BURST = 1000  # runs in one burst, however quick a run is


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p90_ms: float
    spread: float = 0.0  # interquartile range / median
    repeats: int = 0  # timed runs it took
    noisy: bool = False  # the median's confidence interval never got within the precision


@dataclass(frozen=True)
class Paired:
    """A module timed in bursts alternating with a reference network's, pair by pair."""

    ratio: float  # median of the pairs' module / reference time ratios
    ratio_p90: float
    spread: float  # interquartile range / median of the ratios
    reference_ms: float  # the reference's median time per run over the pairs
    absolute: Latency  # the module's own times per run: what an absolute protocol reports
    pairs: int
    noisy: bool  # the ratio's confidence interval never got within the precision

    def latency(self, anchor_ms: float) -> Latency:
        """The figure in milliseconds, given the reference's anchor figure."""
        return Latency(
            self.ratio * anchor_ms, self.ratio_p90 * anchor_ms, self.spread, self.pairs, self.noisy
        )


def median_ci(times: list[float]) -> tuple[float, float]:
    """A 95% confidence interval of the median of ``times`` (sorted), from order statistics:
    the ranks n/2 -+ 1.96 sqrt(n)/2, clamped to the sample."""
    n = len(times)
    reach = 1.96 * math.sqrt(n) / 2
    low = max(0, math.floor(n / 2 - reach))
    high = min(n - 1, math.ceil(n / 2 + reach) - 1)
    return times[low], times[high]


def summarise(times: list[float], precision: float) -> Latency:
    """Median, p90, spread and the noisy flag of sorted timings (milliseconds), or of sorted
    ratios."""
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

    Contract: :meth:`measure` and :meth:`measure_against` leave global torch settings
    (threads, device) as they found them and do not train or change the module. Backends are
    not thread-safe: measure one module at a time, since concurrent work on the same device
    spoils the figures. A backend that cannot run on this machine raises
    :class:`nasprune.errors.ConfigError` when built, so a config naming it is refused before a
    search starts.

    :meth:`measure_against` times a module relative to a reference network, alternating the
    two in bursts of equal length (``burst_ms``, or one run of the slower; ABBA order, so that
    a steady trend weighs on both alike); the reference, once prepared and checked, is kept
    by the backend instance.

    Subclasses implement :meth:`fingerprint` and :meth:`prepare`; :meth:`synchronize` is a
    hook for devices that run asynchronously.
    """

    name: ClassVar[str]
    tolerance: ClassVar[float] = 0.0  # largest allowed |output - torch eager output|
    runs_int8: ClassVar[bool] = False  # whether it runs an Int8Model as its int8 model
    gpu_only: ClassVar[bool] = False  # whether it needs ``device: cuda``

    def __init__(self, settings: LatencyConfig) -> None:
        if settings.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                f"latency.device is cuda (backend {self.name}), but torch sees no CUDA device here"
            )
        self.settings = settings
        self.device = torch.device(settings.device)
        self._references: dict[str, tuple[Runner, torch.Tensor]] = {}  # prepared, by key

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
        """The absolute median and p90 of single runs of ``module``, in milliseconds."""
        with _threads(self.settings.threads), torch.inference_mode():
            run, x = self._prepared(module.eval(), input_shape)
            for _ in range(self.settings.warmup):
                run(x)
            return self._rounds(run, x)

    def measure_against(
        self, module: nn.Module, input_shape: tuple[int, ...], reference: ReferenceNetwork
    ) -> Paired:
        """``module`` on inputs of ``input_shape`` timed in bursts alternating with
        ``reference``'s (on its own input shape): rounds of ``repeats`` pairs until the median
        ratio's 95% confidence interval is within ``precision`` of it; past ``max_repeats``
        pairs or ``time_cap_s`` seconds the figure is kept and flagged noisy."""
        with _threads(self.settings.threads), torch.inference_mode():
            run, x = self._prepared(module.eval(), input_shape)
            ref, xr = self._reference(reference)
            quickest = [math.inf, math.inf]  # of the warm-up runs: how long a burst's runs take
            for _ in range(max(1, self.settings.warmup)):
                quickest[0] = min(quickest[0], self._time_burst(ref, xr, 1))
                quickest[1] = min(quickest[1], self._time_burst(run, x, 1))
            return self._paired_rounds((ref, xr), (run, x), self._burst_sizes(quickest))

    def _prepared(self, module: nn.Module, input_shape: tuple[int, ...]) -> tuple[Runner, Tensor]:
        """What will be timed, checked against torch eager, and its seeded input."""
        shape = (self.settings.batch_size, *input_shape)
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        if isinstance(module, Int8Model):  # timed and checked on the data it was calibrated on
            if not self.runs_int8:
                raise SearchError(
                    f"latency backend {self.name} cannot run int8 layers; onnxruntime can"
                )
            x = module.sample(self.settings.batch_size)
        run = self.prepare(module, x)
        if run is not module:  # eager torch on the CPU: what the others are checked against
            self.check_outputs(module, run, x)
        return run, x

    def _reference(self, reference: ReferenceNetwork) -> tuple[Runner, Tensor]:
        if reference.key not in self._references:
            module = reference.module.eval()
            self._references[reference.key] = self._prepared(module, reference.input_shape)
        return self._references[reference.key]

    def _paired_rounds(
        self, ref: tuple[Runner, Tensor], run: tuple[Runner, Tensor], sizes: list[int]
    ) -> Paired:
        s = self.settings
        deadline = time.perf_counter() + s.time_cap_s
        ratios: list[float] = []
        refs: list[float] = []
        runs: list[float] = []
        while True:
            for _ in range(s.repeats):
                if len(ratios) % 2 == 0:
                    r, c = self._time_burst(*ref, sizes[0]), self._time_burst(*run, sizes[1])
                else:  # the other order every other pair: a steady trend weighs on both alike
                    c, r = self._time_burst(*run, sizes[1]), self._time_burst(*ref, sizes[0])
                ratios.append(c / r)
                refs.append(r * 1000.0)
                runs.append(c * 1000.0)
            found = summarise(sorted(ratios), s.precision)
            spent = len(ratios) >= s.max_repeats or time.perf_counter() >= deadline
            if not found.noisy or spent:
                return Paired(
                    ratio=found.median_ms,
                    ratio_p90=found.p90_ms,
                    spread=found.spread,
                    reference_ms=statistics.median(refs),
                    absolute=summarise(sorted(runs), s.precision),
                    pairs=len(ratios),
                    noisy=found.noisy,
                )

    def _burst_sizes(self, seconds: list[float]) -> list[int]:
        """Runs in one burst of each of the reference and the module, whose runs take
        ``seconds`` (the quickest warm-up run: a busy moment does not stretch the bursts):
        bursts of the same length (``burst_ms``, or one run of the slower), so that whatever
        slows the machine meets both alike."""
        length = max(self.settings.burst_ms / 1000.0, *seconds)
        return [max(1, min(_MAX_BURST, round(length / max(t, 1e-9)))) for t in seconds]

    def _rounds(self, run: Runner, x: torch.Tensor) -> Latency:
        """Rounds of ``repeats`` timed runs until the median's 95% confidence interval is
        within ``precision`` of it; past ``max_repeats`` runs or ``time_cap_s`` seconds the
        figure is kept and flagged noisy."""
        s = self.settings
        deadline = time.perf_counter() + s.time_cap_s
        times: list[float] = []
        while True:
            times.extend(self._time_burst(run, x, 1) * 1000.0 for _ in range(s.repeats))
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
        tolerance = max(self.tolerance, module.tolerance if isinstance(module, Int8Model) else 0)
        if not gap <= tolerance * max(1.0, float(want.abs().max())):
            raise SearchError(
                f"latency backend {self.name}: outputs differ from torch eager by {gap:.2e} "
                f"(tolerance {tolerance:.0e}); the module is not measured"
            )

    def _time_burst(self, run: Runner, x: torch.Tensor, runs: int) -> float:
        """Seconds per run over ``runs`` runs in a row: wall clock on the CPU, CUDA events on a
        GPU."""
        if self.device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(runs):
                run(x)
            end.record()
            torch.cuda.synchronize()
            return float(start.elapsed_time(end)) / 1000.0 / runs
        start_s = time.perf_counter()
        for _ in range(runs):
            run(x)
        return (time.perf_counter() - start_s) / runs


@contextlib.contextmanager
def _threads(threads: int) -> Iterator[None]:
    """torch's intra-op threads set to ``threads``, then back to what they were."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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
