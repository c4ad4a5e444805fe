"""A search whose derived space ranks channels by ``l0`` evaluates the architecture the gates
suggest as its first trial (told to the strategy as not its own), then asks the strategy; a
space whose stored state has no learnt keep ratios (another criterion, an older search) starts
with the strategy's proposal, as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from sklearn.datasets import load_digits
from torch import nn

import nasprune
from nasprune.config import parse_config
from nasprune.evaluation.stored import STATE_ARTIFACT
from nasprune.latency.calibrate import calibrate
from nasprune.latency.layer_times import table_layer_times
from nasprune.search.proposer import Proposer
from search_spaces import create_space
from storage import get_store
from strategies import create_strategy

MODEL = {"model": "zoo:resnet", "model_args": {"in_channels": 1, "widths": [8, 16, 32]}}
L0 = {"criterion": "l0", "steps": 30, "penalty": 30.0}


def l0_config(tmp_path: Path, **importance: Any) -> dict[str, Any]:
    params = MODEL | {"input_shape": [1, 1, 8, 8], "importance": L0 | importance}
    return {
        "name": "l0-seeded",
        "seed": 0,
        "storage": f"sqlite:///{tmp_path / 'store.db'}",
        "space": {"name": "derived", "params": params},
        "data": {"builtin": "digits", "batch_size": 64},
        "evaluation": {"mode": "prune", "finetune_steps": 0},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "latency": {"threads": 1, "warmup": 1, "repeats": 3},
        "strategy": {"name": "random"},
        "budget": {"trials": 3},
    }


def test_the_first_trial_is_the_architecture_the_l0_gates_suggest(workdir: Path) -> None:
    config = l0_config(workdir)
    assert nasprune.run(config).completed == 3
    store = get_store(config["storage"])
    search = store.get_search("l0-seeded")
    state = store.get_artifact(search.search_id, STATE_ARTIFACT).content
    assert "l0_keep" in state
    space = create_space("derived", **config["space"]["params"])
    space.load_state(state)
    suggested = space.suggested()
    assert suggested is not None and suggested != space.largest()

    first, *others = store.trials(search.search_id)
    assert first.number == 0 and first.arch == suggested
    assert first.memo == {"proposed": False, "seeded": "l0", "strategy": None}
    assert all(t.memo["proposed"] is True and "seeded" not in t.memo for t in others)
    assert len({t.arch_hash for t in (first, *others)}) == 3


def test_on_a_calibrated_device_the_gates_weigh_each_layer_by_its_measured_time(
    workdir: Path,
) -> None:
    """``nasprune calibrate`` first: the table holds the dense model's units (the space's
    largest subnet), so every convolution and linear layer has a figure, and the search's l0
    state says its gates were weighted by them; a search on an uncalibrated device says MACs."""
    config = l0_config(workdir)
    uncalibrated = "l0: gates weighted by MACs (the device has no latency calibration)"
    first = nasprune.run(config | {"name": "uncalibrated", "budget": {"trials": 1}})
    assert uncalibrated in first.importance  # said once, when the state is computed
    assert nasprune.resume("uncalibrated", trials=2, storage=config["storage"]).importance == []
    on = calibrate(parse_config(config), samples=2, networks=5).on
    assert nasprune.run(config | {"budget": {"trials": 1}}).completed == 1

    store = get_store(config["storage"])
    space = create_space("derived", **config["space"]["params"])
    dense = space.dense_model()
    layers = [n for n, m in dense.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    times = table_layer_times(store, on, space)(dense)
    assert sorted(times) == sorted(layers) and all(ms > 0 for ms in times.values())

    def notes(name: str) -> list[str]:
        search = store.get_search(name)
        return store.get_artifact(search.search_id, STATE_ARTIFACT).content["notes"]

    measured = "l0: gates weighted by the device's measured latency"
    assert any(note.startswith(measured) for note in notes("l0-seeded"))
    assert uncalibrated in notes("uncalibrated")


def test_without_learnt_keep_ratios_the_strategy_proposes_the_first_trial(workdir: Path) -> None:
    params = l0_config(workdir)["space"]["params"]
    space = create_space("derived", **params)
    state = space.fit_state(iter(_digit_batches()), seed=0)
    space.load_state({k: v for k, v in state.items() if k != "l0_keep"})  # an older state
    strategy = create_strategy("random", space.dimensions(), ["maximize"], 0)
    candidate = Proposer(strategy, space, 0).next(0)
    assert candidate.proposed and candidate.memo["proposed"] is True
    assert "seeded" not in candidate.memo

    space.load_state(state)  # with them, the suggestion comes first, and only first
    seeded = Proposer(strategy, space, 0).next(0)
    assert not seeded.proposed and seeded.arch == space.suggested()
    assert Proposer(strategy, space, 0).next(0, busy={seeded.key}).proposed
    assert Proposer(strategy, space, 0).next(1).proposed


def _digit_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    features, labels = load_digits(return_X_y=True)
    x = torch.tensor(features[:256] / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(labels[:256], dtype=torch.long)
    return [(x[i : i + 64], y[i : i + 64]) for i in range(0, 256, 64)]
