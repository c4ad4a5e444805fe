"""Latency prediction of int8 layers (issue 17): `nasprune calibrate` times a unit with an int8
layer as ONNX Runtime's int8 model of it, under its own key; networks with int8 layers are
timed under the device's int8 key beside their fp32 twins; the screen and the latency report
then work for int8 candidates as for fp32 ones."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
import zoo
from cli_support import cli
from int8_support import int8_config

import nasprune
from nasprune.config import parse_config
from nasprune.evaluation.stored import space_with_state
from nasprune.latency.calibrate import calibrate
from nasprune.latency.predictor import load_predictor, space_key
from nasprune.latency.units import units_of
from nasprune.quantization import Int8Model, int8_device
from storage import TrialState, get_store


def test_a_unit_with_an_int8_layer_is_its_own_unit_and_runs_as_its_int8_model() -> None:
    model = zoo.resnet(in_channels=1, widths=[8, 16, 32])
    fp32 = units_of(model, (1, 8, 8))
    int8 = units_of(model, (1, 8, 8), int8=["stem.0", "fc"])
    assert len(fp32) == len(int8)
    changed = [(a, b) for a, b in zip(fp32, int8, strict=True) if a.key != b.key]
    assert [b.int8 for _, b in changed] == [("0",), ("0",)]  # the stem's conv-bn-relu, the fc
    assert "int8" in changed[0][1].description and "int8" not in changed[0][0].description
    for _, unit in changed:
        module = unit.standalone()
        assert isinstance(module, Int8Model)
        x = module.sample(4)
        assert x.shape == (4, *unit.input_shape)
        with torch.inference_mode():
            want, got = module(x), module.deployed()(x)
        assert (got - want).abs().max() <= module.tolerance * want.abs().max()


@pytest.mark.slow  # tens of seconds: the slow target (CI runs both)
def test_calibrate_times_int8_networks_beside_their_fp32_twins_and_the_screen_predicts_them(
    workdir: Path, capsys, monkeypatch
) -> None:
    config = int8_config(workdir, "elastic", dims="per_layer")
    parsed = parse_config(config)
    done = calibrate(parsed, samples=8, networks=8)
    store = get_store(config["storage"])
    space = space_with_state(parsed)
    calibration = store.get_calibration(done.on, space_key(space))
    assert calibration is not None
    keys = calibration.content["network_keys"]
    int8 = store.latencies(int8_device(done.on), keys)
    fp32 = store.latencies(done.on, keys)
    assert int8 and fp32 and len(int8) + len(fp32) == len(keys) == done.networks
    assert all(":int8:" in key for key in int8) and not any(":int8:" in key for key in fp32)
    smallest = space.smallest()  # every layer in int8 (8 bits is the smaller choice)
    units = units_of(space.structure(smallest), space.input_shape, (), space.int8_layers(smallest))
    assert units and all(u.int8 for u in units)
    assert {u.key for u in units} <= set(calibration.content["unit_keys"])

    predictor = load_predictor(store, done.on, space)
    assert predictor is not None
    int8_arch = next(a for a in (space.sample(random.Random(i)) for i in range(50))
                     if space.int8_layers(a))  # fmt: skip
    fp32_arch = space.quantization.fp32(int8_arch)
    as_int8 = predictor.predict(space.structure(int8_arch), space.input_shape, lambda u: 1.0,
                                int8=space.int8_layers(int8_arch))  # fmt: skip
    as_fp32 = predictor.predict(space.structure(fp32_arch), space.input_shape, lambda u: 1.0)
    assert as_int8 is not None and as_fp32 is not None
    assert as_int8.table_ms != as_fp32.table_ms  # other units, other figures

    # A latency limit with the screen on: every candidate, int8 or not, is predicted first.
    screened = config | {"constraints": {"latency_ms": {"max": 1e6}}, "budget": {"trials": 6}}
    nasprune.run(screened)
    trials = store.trials(store.get_search(config["name"]).search_id, [TrialState.COMPLETE])
    with_int8 = [t for t in trials if "int8_layers" in t.metrics]
    assert with_int8 and all("predicted_latency_ms" in t.metrics for t in trials)

    code, out, err = cli(capsys, monkeypatch, "latency-report", config["name"], "--json",
                       "--storage", config["storage"])  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["int8_trials"] == len(with_int8)
    assert report["trials"] == len(trials)
    assert 0 <= report["int8_share_within_10pct"] <= 1
