"""Latency relative to a reference network: a module against itself is 1, a figure holds when
the machine slows down in the middle of measuring it (the absolute one does not), a figure
taken while the machine's speed had drifted from the anchor's is flagged with its drift, and
the standard reference is the same network in every process."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import zoo
from torch import nn

from nasprune.config import LatencyConfig
from nasprune.latency.recorded import SpeedDrift, recorded_latency, this_device
from nasprune.latency.reference import ReferenceNetwork, standard_reference
from nasprune.latency.torch_eager import TorchBackend
from storage import DeviceKey, Store

SHAPE = (3, 16, 16)


def _resnet() -> nn.Module:
    return zoo.resnet(widths=(8, 16, 32)).eval()


def test_a_module_timed_against_itself_has_a_ratio_of_about_one() -> None:
    module = _resnet()
    itself = ReferenceNetwork.of(copy.deepcopy(module), SHAPE, "itself")
    backend = TorchBackend(LatencyConfig(threads=1, warmup=3, repeats=20))
    paired = backend.measure_against(module, SHAPE, itself)
    assert 0.85 < paired.ratio < 1.15
    assert paired.pairs >= 20 and paired.reference_ms > 0
    assert paired.absolute.median_ms == pytest.approx(paired.reference_ms, rel=0.3)


def test_the_standard_reference_is_one_seeded_network_per_input_shape() -> None:
    first, again = standard_reference(SHAPE), standard_reference(SHAPE)
    assert first.key == again.key and first.key.startswith("reference:")
    x = torch.randn(2, *SHAPE, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert torch.equal(first.module(x), again.module(x))  # the same weights
    state = torch.random.get_rng_state()
    keys = {standard_reference(shape).key for shape in [(64,), (4, 32), SHAPE, (3, 224, 224)]}
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's draws are untouched
    assert len(keys) == 4 and first.key in keys
    for shape in [(64,), (4, 32), (2, 3, 4, 5), (3, 224, 224)]:
        with torch.inference_mode():
            assert standard_reference(shape).module(torch.zeros(1, *shape)).shape == (1, 10)
    # Another process builds the very same network: the same key, the same outputs.
    script = (
        "import torch; from nasprune.latency.reference import standard_reference as s; "
        f"r = s({SHAPE!r}); x = torch.randn(2, *{SHAPE!r}, "
        "generator=torch.Generator().manual_seed(1)); "
        "print(r.key, float(r.module.eval()(x).sum()))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    key, total = done.stdout.split()
    with torch.inference_mode():
        assert key == first.key and float(total) == pytest.approx(float(first.module(x).sum()))


@contextmanager
def _one_core() -> Iterator[int]:
    """This process (and its torch threads) pinned to one core, as it was found after."""
    before = os.sched_getaffinity(0)
    core = min(before)
    os.sched_setaffinity(0, {core})
    try:
        yield core
    finally:
        os.sched_setaffinity(0, before)


def _burners(core: int, count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` processes that burn ``core``: it is left a 1 / (count + 1) share."""
    started = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    for process in started:
        os.sched_setaffinity(process.pid, {core})
    return started


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
def test_a_relative_figure_holds_when_the_machine_slows_down_mid_measurement() -> None:
    """Two CPU burners join this process's core a quarter of the way through the second of
    two equal measurements, leaving it about a third of the core: the candidate's absolute
    figure (its own times, from the same runs) jumps, its ratio to the reference does not.
    Bursts of 20 ms span many of the scheduler's time slices, so each sees the core's
    average speed: the burners slow the machine down as a busy host does."""
    module, reference = _resnet(), standard_reference(SHAPE)
    settings = LatencyConfig(threads=1, warmup=3, repeats=16, max_repeats=16, burst_ms=20)
    backend = TorchBackend(settings)
    burners: list[subprocess.Popen[bytes]] = []
    with _one_core() as core:
        try:
            started = time.perf_counter()
            idle = backend.measure_against(module, SHAPE, reference)
            quarter = (time.perf_counter() - started) / 4
            timer = threading.Timer(quarter, lambda: burners.extend(_burners(core, 2)))
            timer.start()
            busy = backend.measure_against(module, SHAPE, reference)
            timer.join()
        finally:
            for process in burners:
                process.kill()
                process.wait()
    assert len(burners) == 2
    absolute_moved = busy.absolute.median_ms / idle.absolute.median_ms - 1
    relative_moved = busy.ratio / idle.ratio - 1
    assert busy.reference_ms / idle.reference_ms > 1.5  # the machine did slow down
    assert absolute_moved > 0.5
    assert abs(relative_moved) < 0.2  # it moved by +180% to +230% in trials on a busy machine
    assert abs(relative_moved) < absolute_moved / 4


def test_a_figure_taken_while_the_machine_drifted_from_its_anchor_is_flagged(
    tmp_path: Path,
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    backend = TorchBackend(LatencyConfig(threads=1, warmup=2, repeats=10))
    mlp = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4)).eval()
    on = this_device(backend, (16,))
    first, measured = recorded_latency(store, backend, on, mlp, "mlp")
    assert measured and first.reference is not None
    assert first.reference.drift == 0.0 and not first.reference.drifted  # it set the anchor
    anchor = store.get_anchor(on, first.reference.reference_key)
    assert anchor is not None and anchor.anchor_ms == first.reference.reference_ms
    assert first.median_ms == pytest.approx(first.reference.ratio * anchor.anchor_ms)

    # A device key anchored when the machine ran ten times as fast as it does now: however
    # this machine's speed moves meanwhile, the drift is far beyond the protocol's precision.
    fast = DeviceKey("test:anchored-fast", on.batch_size, on.input_shape, on.threads)
    anchor_ms = first.reference.reference_ms / 10
    store.anchor(fast, first.reference.reference_key, anchor_ms)
    slow, _ = recorded_latency(store, backend, fast, mlp, "mlp")
    assert slow.reference is not None and slow.reference.drifted
    assert slow.reference.drift == pytest.approx(anchor_ms / slow.reference.reference_ms - 1)
    assert slow.reference.drift < -0.5
    assert slow.median_ms == pytest.approx(slow.reference.ratio * anchor_ms)
    drift = SpeedDrift.of([first, slow])
    assert (drift.drifted, drift.referenced, drift.absolute) == (1, 2, 0)
    assert drift.low == slow.reference.drift and drift.high == 0.0
    assert drift.sentence().startswith(f"machine speed moved {slow.reference.drift:+.0%}..+0%")

    absolute = TorchBackend(LatencyConfig(threads=1, warmup=2, repeats=10, relative=False))
    plain, _ = recorded_latency(store, absolute, on, mlp, "mlp", remeasure=True)
    assert plain.reference is None  # the absolute protocol, as before revision 0007
    assert "1 older figures are absolute" in SpeedDrift.of([first, plain]).sentence()
    store.close()


def test_a_searchs_trials_carry_how_far_the_machine_drifted(workdir: Path, make_config) -> None:
    import nasprune
    from storage import TrialState, get_store

    config = make_config(workdir) | {"budget": {"trials": 3}}
    nasprune.run(config)
    store = get_store(config["storage"])
    trials = store.trials(store.get_search("tiny").search_id, [TrialState.COMPLETE])
    assert len(trials) == 3
    precision = LatencyConfig().precision
    for trial in trials:
        drift = trial.metrics["latency_drift"]
        assert isinstance(drift, float)
        assert ("latency_drifted" in trial.metrics) == (abs(drift) > precision)


def test_a_search_times_its_trials_against_its_spaces_largest_subnet(
    workdir: Path, make_config
) -> None:
    """The reference is the space's largest subnet (one key per largest structure and input,
    built the same each time, the caller's draws untouched); a figure taken against another
    reference is in another unit, so it is measured again rather than reused."""
    import nasprune
    from nasprune.latency.reference import largest_subnet_reference
    from search_spaces import create_space
    from storage import TrialState, get_store

    config = make_config(workdir) | {"budget": {"trials": 2}}
    nasprune.run(config)
    store = get_store(config["storage"])
    space = create_space(config["space"]["name"], **config["space"]["params"])
    state = torch.random.get_rng_state()
    reference = largest_subnet_reference(space)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert reference.key == largest_subnet_reference(space).key != standard_reference(SHAPE).key
    (device, _, _), *_ = store.devices()
    trials = store.trials(store.get_search("tiny").search_id, [TrialState.COMPLETE])
    for trial in trials:
        record = store.get_latency(device, trial.latency_key, 1, tuple(space.input_shape), 1)
        assert record is not None and record.reference is not None
        assert record.reference.reference_key == reference.key

    backend = TorchBackend(LatencyConfig(threads=1, warmup=2, repeats=10))
    on = this_device(backend, tuple(space.input_shape))
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(int(torch.tensor(space.input_shape).prod()), 4))
    first, measured = recorded_latency(store, backend, on, mlp, "mlp")  # the standard one
    assert measured and first.reference.reference_key == standard_reference(on.input_shape).key
    again, measured = recorded_latency(store, backend, on, mlp, "mlp")
    assert not measured and again == first
    other, measured = recorded_latency(store, backend, on, mlp, "mlp", reference=reference)
    assert measured and other.reference.reference_key == reference.key
