"""Bring your own model, end to end: a config names a model factory, nasprune derives the
space, searches it in elastic and prune mode, and exports a physically smaller copy with its
pruning plan; bad input is one line, exit 2, and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
import zoo
from cli_support import cli

import nasprune
from nasprune.data import digits
from nasprune.evaluate import accuracy_and_loss
from search_spaces.derived import apply_plan
from storage import get_store

MODEL = {"model": "zoo:resnet", "model_args": {"in_channels": 1, "widths": [8, 16, 32]}}


def byom_config(tmp_path: Path, mode: str = "elastic", **space: Any) -> dict[str, Any]:
    return {
        "name": f"byom-{mode}",
        "seed": 0,
        "storage": f"sqlite:///{tmp_path / 'store.db'}",
        "space": {"name": "derived", "params": MODEL | {"input_shape": [1, 1, 8, 8]} | space},
        "data": {"builtin": "digits", "batch_size": 64},
        "supernet": {"epochs": 2, "checkpoint_dir": str(tmp_path / "checkpoints")},
        "evaluation": {"mode": mode, "finetune_steps": 3 if mode == "prune" else 0},
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms", "direction": "minimize"},
        ],
        "latency": {"warmup": 1, "repeats": 3},
        "strategy": {"name": "random"},
        "budget": {"trials": 4},
    }


def _val_loader() -> torch.utils.data.DataLoader:
    _, val, _ = digits((1, 8, 8))
    return torch.utils.data.DataLoader(val, batch_size=128)


@pytest.mark.parametrize("mode", ["elastic", "prune"])
def test_a_search_of_the_users_model_exports_in_three_formats_that_reload(
    mode: str, workdir: Path, write_config, capsys, monkeypatch
) -> None:
    config = byom_config(workdir, mode, sparsity=[0.5])
    monkeypatch.setenv("NASPRUNE_STORAGE", config["storage"])
    path = write_config(workdir / "byom.yaml", config)
    code, out, err = cli(capsys, monkeypatch, "run", str(path))
    assert code == 0, err
    name = f"byom-{mode}"
    code, out, _ = cli(capsys, monkeypatch, "best", name, "--json")
    trial = json.loads(out)["trial"]
    assert "test_accuracy" in trial["metrics"] and trial["state"] == "complete"
    code, out, _ = cli(capsys, monkeypatch, "best", name)
    assert "test acc" in out and "held out" in out

    number = str(trial["number"])
    for fmt, file in (("state", "s.pt"), ("torchscript", "s.ts"), ("onnx", "s.onnx")):
        code, out, err = cli(
            capsys, monkeypatch, "export", name, "--trial", number, "--format", fmt, "-o", file
        )
        assert code == 0, err
        assert (workdir / file).is_file() and (workdir / (Path(file).stem + ".plan.json")).is_file()

    model = nasprune.load_subnet(workdir / "s.pt")
    accuracy, _ = accuracy_and_loss(model, _val_loader())
    assert accuracy == pytest.approx(trial["accuracy"], abs=1e-9)
    assert sum(p.numel() for p in model.parameters()) == trial["params"]
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        want = model(x)
        torch.testing.assert_close(torch.jit.load(str(workdir / "s.ts"))(x), want)
    session = ort.InferenceSession(str(workdir / "s.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(session.run(None, {"input": x.numpy()})[0] - want.numpy()).max() <= 1e-4


def test_the_exported_plan_replayed_on_the_dense_model_reproduces_the_subnet(
    workdir: Path,
) -> None:
    config = byom_config(workdir, "prune", sparsity=[0.5])
    config["evaluation"] = {"mode": "prune", "bn_calibration_batches": 0}
    nasprune.run(config)
    trial = nasprune.best("byom-prune", storage=config["storage"])
    assert trial is not None
    exported = nasprune.export(
        "byom-prune", workdir / "s.pt", trial=trial.number, storage=config["storage"]
    )
    plan = json.loads(exported.plan_path.read_text())
    dense = zoo.resnet(**MODEL["model_args"])
    replayed = apply_plan(dense, plan["plan"], plan["input_shape"]).eval()
    model = nasprune.load_subnet(workdir / "s.pt")
    for key, value in model.state_dict().items():
        assert torch.equal(value, replayed.state_dict()[key]), key


def test_channel_importance_is_stored_once_and_reused_on_resume(workdir: Path) -> None:
    config = byom_config(workdir, "prune", importance={"criterion": "taylor", "batches": 2})
    config["budget"] = {"trials": 2}
    nasprune.run(config)
    store = get_store(config["storage"])
    search = store.get_search("byom-prune")
    first = store.get_artifact(search.search_id, "space_state")
    assert first is not None and first.content["criterion"] == "taylor"
    assert first.content["batches"] == 2
    result = nasprune.resume("byom-prune", storage=config["storage"])
    assert result.new_trials == 0
    assert store.get_artifact(search.search_id, "space_state") == first


BAD_BYOM = {
    "unimportable_factory": ({"model": "zoo:nope"}, "cannot be imported"),
    "input_shape_rejected": ({"input_shape": [1, 3, 8, 8]}, "rejects input of shape"),
    "ignore_unknown_module": ({"ignore": ["layer9"]}, "layer9"),
    "nothing_prunable": ({"round_to": 512, "blocks": "none"}, "nothing prunable"),
    "missing_weights_file": ({"weights": "nope.pt"}, "weights file not found"),
    "unknown_criterion": ({"importance": {"criterion": "magic"}}, "unknown importance criterion"),
}


@pytest.mark.parametrize("case", sorted(BAD_BYOM))
def test_bad_model_input_is_one_line_exit_2_and_writes_no_row(
    case: str, workdir: Path, write_config, capsys, monkeypatch
) -> None:
    change, needle = BAD_BYOM[case]
    path = write_config(workdir / "bad.yaml", byom_config(workdir, **change))
    code, _, err = cli(capsys, monkeypatch, "run", str(path))
    assert code == 2 and needle in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    db = workdir / "store.db"
    assert not db.exists() or get_store(f"sqlite:///{db}").list_searches() == []


def test_weights_that_do_not_fit_and_prune_mode_on_a_builtin_space_are_refused(
    workdir: Path, write_config, make_config, capsys, monkeypatch
) -> None:
    state = zoo.resnet(**MODEL["model_args"]).state_dict()
    state["fc.bias"] = torch.zeros(3)
    torch.save(state, workdir / "w.pt")
    path = write_config(workdir / "bad.yaml", byom_config(workdir, weights="w.pt"))
    code, _, err = cli(capsys, monkeypatch, "run", str(path))
    assert code == 2 and "fc.bias has shape (3,)" in err
    builtin = make_config(workdir) | {"evaluation": {"mode": "prune"}}
    path = write_config(workdir / "builtin.yaml", builtin)
    code, _, err = cli(capsys, monkeypatch, "run", str(path))
    assert code == 2 and "has no dense model" in err and "Traceback" not in err
