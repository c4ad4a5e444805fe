"""Latency backends: each times what torch eager computes, refuses what it cannot run, and
names its device precisely enough that figures from two settings never mix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import zoo
from cli_support import cli
from torch import nn

import nasprune
from nasprune.config import LatencyConfig, parse_config
from nasprune.errors import ConfigError, SearchError
from nasprune.latency import BACKENDS, create_backend
from nasprune.latency.reference import standard_reference
from nasprune.latency.torch_eager import TorchBackend
from nasprune.queries import device_id
from storage import DeviceKey

MODELS = {
    "mlp": (
        lambda: nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 4)),
        (16,),
    ),  # fmt: skip
    "resnet": (lambda: zoo.resnet(widths=(8, 16, 32)), (3, 16, 16)),
    "vit": (lambda: zoo.vit(image_size=16, patch=4, dim=32, num_heads=2), (3, 16, 16)),
    "cnn1d": (lambda: zoo.cnn1d(width=8), (4, 32)),
}


# the backends that run on this machine's CPU (tensorrt needs a GPU: refused below)
CPU_BACKENDS = sorted(name for name in BACKENDS if not BACKENDS.get(name).gpu_only)


def settings(backend: str, **changes: object) -> LatencyConfig:
    """Quick settings: one warm-up run, rounds of three, and any precision (1.0: one round)."""
    base: dict[str, object] = {"warmup": 1, "repeats": 3, "precision": 1.0}
    return LatencyConfig(backend=backend, **(base | changes))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_backend_times_modules_whose_outputs_agree_with_torch_eager(
    backend: str, model: str
) -> None:
    build, shape = MODELS[model]
    module = build().eval()
    timed = create_backend(settings(backend, batch_size=2)).measure(module, shape)
    assert 0 < timed.median_ms <= timed.p90_ms


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_backend_times_modules_against_the_standard_reference_of_their_input(
    backend: str, model: str
) -> None:
    build, shape = MODELS[model]
    timer = create_backend(settings(backend, batch_size=2))
    reference = standard_reference(shape)
    paired = timer.measure_against(build().eval(), shape, reference)
    # rounds of three pairs: one on a quiet machine (precision 1.0), more when a busy one
    # spreads the ratios beyond it
    assert paired.ratio > 0 and paired.reference_ms > 0 and paired.pairs >= 3
    assert paired.latency(2.0).median_ms == pytest.approx(2.0 * paired.ratio)
    again = timer.measure_against(build().eval(), shape, reference)  # the reference is kept
    assert list(timer._references) == [reference.key] and again.pairs >= 3


def test_a_backend_whose_outputs_differ_from_eager_is_refused() -> None:
    class Wrong(TorchBackend):
        name = "wrong"

        def prepare(self, module: nn.Module, example: torch.Tensor):  # type: ignore[override]
            return lambda x: module(x) + 1e-3

    with pytest.raises(SearchError, match="outputs differ from torch eager by 1.00e-03"):
        Wrong(settings("torch")).measure(nn.Linear(4, 2), (4,))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_fingerprints_differ_by_threads_and_by_backend(backend: str) -> None:
    one = create_backend(settings(backend, threads=1)).fingerprint()
    two = create_backend(settings(backend, threads=2)).fingerprint()
    assert one != two
    others = {create_backend(settings(b)).fingerprint() for b in CPU_BACKENDS if b != backend}
    assert one not in others


def test_measure_leaves_torch_threads_as_it_found_them() -> None:
    before = torch.get_num_threads()
    create_backend(settings("onnxruntime", threads=1)).measure(nn.Linear(4, 2), (4,))
    assert torch.get_num_threads() == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_a_gpu_backend_without_a_gpu_is_one_clear_error(backend: str) -> None:
    with pytest.raises(ConfigError, match="cuda"):
        create_backend(settings(backend, device="cuda"))


def test_tensorrt_on_the_cpu_is_refused_in_one_line(
    workdir: Path, make_config, capsys, monkeypatch
) -> None:
    with pytest.raises(ConfigError, match="tensorrt runs on a GPU: set latency.device: cuda"):
        create_backend(settings("tensorrt"))
    config = make_config(workdir) | {"latency": {"backend": "tensorrt"}}
    path = workdir / "trt.json"
    path.write_text(json.dumps(config))
    code, _, err = cli(capsys, monkeypatch, "run", str(path))
    assert code == 2 and "tensorrt runs on a GPU" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_unknown_backends_and_devices_are_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="known: onnxruntime, tensorrt, torch, torchscript"):
        create_backend(settings("tvm"))
    with pytest.raises(ConfigError, match="device: Input should be 'cpu' or 'cuda', not 'tpu'"):
        parse_config({"name": "x", "latency": {"device": "tpu"}})


@pytest.mark.parametrize("backend", ["torchscript", "onnxruntime"])
def test_a_search_measures_with_the_configured_backend(
    backend: str, workdir: Path, make_config
) -> None:
    config = make_config(workdir) | {"budget": {"trials": 2}}
    config["latency"] = {"backend": backend, "warmup": 1, "repeats": 3}
    result = nasprune.run(config)
    assert result.completed == 2
    store = nasprune.api.open_store(config["storage"])
    trials = store.trials(store.get_search("tiny").search_id)
    assert all(t.latency_ms is not None and t.latency_ms > 0 for t in trials)


def test_a_search_stored_before_the_backend_field_existed_still_resumes_if_exists(
    workdir: Path, make_config
) -> None:
    import json

    from sqlalchemy import create_engine, text

    config = make_config(workdir) | {"budget": {"trials": 1}}
    nasprune.run(config)
    engine = create_engine(config["storage"])
    with engine.begin() as connection:  # as an older nasprune wrote it: no latency.backend
        stored = json.loads(connection.execute(text("SELECT config_json FROM searches")).scalar())
        del stored["latency"]["backend"]
        connection.execute(text("UPDATE searches SET config_json = :c"), {"c": json.dumps(stored)})
    engine.dispose()
    result = nasprune.run(config, resume_if_exists=True)
    assert result.completed == 1 and result.new_trials == 0


def test_stored_latency_is_reused_and_remeasure_replaces_it_and_devices_lists_them(
    workdir: Path, make_config, capsys, monkeypatch
) -> None:
    from cli_support import cli

    from storage import get_store

    config = make_config(workdir) | {"budget": {"trials": 3}}
    config["latency"] = {"warmup": 1, "repeats": 3}
    nasprune.run(config)
    store = get_store(config["storage"])
    ((device, count, units),) = store.devices()
    assert units == 0
    assert count >= 3  # the dense reference and every trial
    stamps = {r.measurement_id: r.created_at for r in _measurements(store)}

    twin = config | {"name": "twin"}  # same space and device: every figure comes from the store
    nasprune.run(twin)
    assert {r.measurement_id: r.created_at for r in _measurements(store)} == stamps

    again = config | {"name": "again"}
    nasprune.run(again, remeasure=True)
    after = {r.measurement_id: r.created_at for r in _measurements(store)}
    assert set(after) == set(stamps) and all(after[k] > stamps[k] for k in stamps)

    code, out, _ = cli(capsys, monkeypatch, "devices", "--json", "--storage", config["storage"])
    assert code == 0
    assert json.loads(out) == [
        {"id": device_id(device), "device": device, "networks": count, "units": 0}
    ]


def _measurements(store):  # noqa: ANN001, ANN202
    from sqlalchemy import select

    from storage.models import LatencyMeasurementModel

    with store._session() as session:
        return [r.to_record() for r in session.scalars(select(LatencyMeasurementModel))]


def test_the_median_confidence_interval_comes_from_order_statistics() -> None:
    from nasprune.latency.base import median_ci, summarise

    times = [float(t) for t in range(1, 101)]  # n = 100: ranks 50 -+ 9.8 -> 40 .. 59
    assert median_ci(times) == (41.0, 60.0)
    assert median_ci([5.0] * 30) == (5.0, 5.0)
    steady = summarise([5.0] * 30, precision=0.05)
    assert (steady.median_ms, steady.spread, steady.noisy, steady.repeats) == (5.0, 0.0, False, 30)
    assert summarise(times, precision=0.05).noisy  # +-9.5 around 50.5 is +-19%
    assert not summarise(times, precision=0.2).noisy


def test_rounds_stop_once_precise_and_a_figure_that_never_settles_is_flagged_noisy() -> None:
    module, shape = MODELS["resnet"][0]().eval(), MODELS["resnet"][1]
    loose = create_backend(settings("torch", repeats=8, precision=10.0)).measure(module, shape)
    assert loose.repeats == 8 and not loose.noisy  # one round was enough
    strict = create_backend(settings("torch", repeats=8, precision=1e-9, max_repeats=24)).measure(
        module, shape
    )
    assert strict.repeats == 24 and strict.noisy and strict.spread > 0
    capped = create_backend(
        settings("torch", repeats=4, precision=1e-9, max_repeats=10_000, time_cap_s=0.05)
    ).measure(module, shape)
    assert capped.noisy and 4 <= capped.repeats < 10_000


def test_a_search_stores_the_spread_and_the_repeat_count_of_each_measurement(
    workdir: Path, make_config
) -> None:
    from storage import get_store

    config = make_config(workdir) | {"budget": {"trials": 2}}
    config["latency"] = {"warmup": 1, "repeats": 5, "precision": 1e-9, "max_repeats": 10}
    nasprune.run(config)
    store = get_store(config["storage"])
    records = _measurements(store)
    assert records and all(r.repeats == 10 and r.noisy and r.spread is not None for r in records)
    assert all(r.reference is not None for r in records)  # 10 pairs, each against the reference
    trials = store.trials(store.get_search("tiny").search_id)
    assert all(t.metrics["latency_noisy"] == 1.0 and "latency_spread" in t.metrics for t in trials)


def test_a_search_measured_on_a_second_device_answers_best_for_each_device(
    workdir: Path, make_config, capsys, monkeypatch
) -> None:
    from cli_support import cli

    from storage import TrialState, get_store

    config = make_config(workdir)
    config["latency"] = {"threads": 1, "warmup": 1, "repeats": 5}
    nasprune.run(config)
    url = config["storage"]
    store = get_store(url)
    ((first, networks, _),) = store.devices()
    search = store.get_search("tiny")
    trials = store.trials(search.search_id, [TrialState.COMPLETE])
    assert all(t.latency_key for t in trials)  # every trial knows its measurements

    # The search's own device answers as plain `best` does.
    code, out, _ = cli(capsys, monkeypatch, "best", "tiny", "--device", device_id(first),
                       "--json", "--storage", url)  # fmt: skip
    plain = nasprune.best("tiny", storage=url)
    assert code == 0 and json.loads(out)["trial"]["number"] == plain.number

    # A second device: two threads give another fingerprint, so other figures.
    code, out, _ = cli(capsys, monkeypatch, "measure", "tiny", "--threads", "2", "--all",
                       "--storage", url)  # fmt: skip
    assert code == 0 and f"measured {len(trials)} trials" in out
    (second,) = [d for d, _, _ in store.devices() if d != first]
    assert "threads=2" in second
    on_second = store.latencies(DeviceKey(second, 1, (64,), 2), [t.latency_key for t in trials])
    assert len(on_second) == len({t.latency_key for t in trials})
    limit = sorted(r.median_ms for r in on_second.values())[len(on_second) // 2]
    within = [t for t in trials if on_second[t.latency_key].median_ms <= limit]
    want = max(within, key=lambda t: (t.accuracy, -on_second[t.latency_key].median_ms))
    code, out, _ = cli(capsys, monkeypatch, "best", "tiny", "--device", device_id(second),
                       "--max-latency-ms", str(limit), "--json", "--storage", url)  # fmt: skip
    found = json.loads(out)["trial"]
    assert code == 0 and found["number"] == want.number
    assert found["latency_ms"] == on_second[want.latency_key].median_ms  # the second device's
    first_figure = store.get_trial(search.search_id, want.number).latency_ms
    assert nasprune.best("tiny", device=device_id(first), storage=url) is not None
    assert found["latency_ms"] != first_figure

    # Measured again on the same device and settings: every figure comes from the store.
    code, out, _ = cli(capsys, monkeypatch, "measure", "tiny", "--threads", "2", "--all",
                       "--storage", url)  # fmt: skip
    assert f"0 timed now, {len(trials)} already stored" in out
    assert store.devices()[0][1] >= networks

    code, _, err = cli(capsys, monkeypatch, "best", "tiny", "--device", "nosuch",
                       "--storage", url)  # fmt: skip
    assert code == 2 and "no device 'nosuch'" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(capsys, monkeypatch, "best", "tiny", "--device", device_id(second),
                       "--batch-size", "8", "--storage", url)  # fmt: skip
    assert code == 2 and "no measurements" in err and "nasprune measure tiny" in err
