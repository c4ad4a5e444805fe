"""Bring your own model, end to end: a config names a model factory, nasprune derives the
space, searches it in elastic and prune mode, and exports a physically smaller copy with its
pruning plan; bad input is one line, exit 2, and writes nothing."""

from __future__ import annotations

import copy
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
from nasprune.evaluation.data import digits
from nasprune.evaluation.metrics import accuracy_and_loss
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
    # prune mode cuts candidates from the dense model: there is no supernet to speak of
    assert ("supernet trained" in out) == (mode == "elastic") and "supernet reused" not in out
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
    config["evaluation"] = {"mode": "prune", "bn_calibration_batches": 0, "finetune_steps": 0}
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


def test_finetune_records_a_run_that_best_and_export_then_use_and_a_rerun_reuses(
    workdir: Path, capsys, monkeypatch
) -> None:
    config = byom_config(workdir, "prune")
    monkeypatch.setenv("NASPRUNE_STORAGE", config["storage"])
    nasprune.run(config)
    trial = nasprune.best("byom-prune")
    assert trial is not None
    number = str(trial.number)
    code, out, err = cli(capsys, monkeypatch, "finetune", "byom-prune", "--trial", number,
                         "--steps", "30", "--distill")  # fmt: skip
    assert code == 0 and "trained" in out, err
    code, out, _ = cli(capsys, monkeypatch, "finetune", "byom-prune", "--trial", number,
                       "--steps", "30", "--distill")  # fmt: skip
    assert code == 0 and "reused a complete run" in out
    runs = nasprune.api.finetuned("byom-prune", [trial])
    run = runs[trial.number]
    assert run.complete and run.steps_done == 30 and run.test_accuracy is not None
    assert run.accuracy != trial.accuracy  # training on an untrained model changes it

    code, out, _ = cli(capsys, monkeypatch, "best", "byom-prune", "--json")
    assert json.loads(out)["trial"]["finetuned"]["accuracy"] == run.accuracy
    # the service answers the very same JSON (its /best dropped `finetuned`)
    from fastapi.testclient import TestClient

    from nasprune.service.app import create_app
    from nasprune.service.settings import ServiceSettings

    with TestClient(create_app(ServiceSettings(storage=config["storage"]))) as client:
        assert client.get("/searches/byom-prune/best").json() == json.loads(out)
    code, out, _ = cli(capsys, monkeypatch, "best", "byom-prune")
    assert "fine-tuned" in out

    tuned = nasprune.export("byom-prune", workdir / "tuned.pt", trial=trial.number)
    inherited = nasprune.export(
        "byom-prune", workdir / "inherited.pt", trial=trial.number, inherited=True
    )
    assert tuned.finetuned is not None and inherited.finetuned is None
    assert tuned.accuracy == pytest.approx(run.accuracy, abs=1e-9)
    assert inherited.accuracy == pytest.approx(trial.accuracy, abs=1e-9)
    reloaded = nasprune.load_subnet(workdir / "tuned.pt")
    assert accuracy_and_loss(reloaded, _val_loader())[0] == pytest.approx(run.accuracy, abs=1e-9)


def test_finetune_seeds_with_the_searchs_seed_as_the_search_did(workdir: Path) -> None:
    config = byom_config(workdir, "prune") | {"seed": 5, "budget": {"trials": 1}}
    nasprune.run(config)
    trial = nasprune.best("byom-prune", storage=config["storage"])
    assert trial is not None
    run = nasprune.finetune_trial(
        "byom-prune", trial=trial.number, steps=2, storage=config["storage"]
    )
    assert run.run.settings["seed"] == 5  # it was 0 whatever the search's seed
    # The rate decays to 0 at the last step by default; a constant-rate run keeps the key
    # of the runs from before the schedule, so it is another run, not this one reused.
    assert run.run.settings["lr_schedule"] == "cosine"
    constant = nasprune.finetune_trial(
        "byom-prune", trial=trial.number, steps=2, storage=config["storage"],
        lr_schedule="constant",
    )  # fmt: skip
    assert not constant.reused and "lr_schedule" not in constant.run.settings
    assert constant.run.key != run.run.key
    with pytest.raises(nasprune.NasPruneError, match="unknown --lr-schedule 'warm'"):
        nasprune.finetune_trial("byom-prune", trial=trial.number, storage=config["storage"],
                                lr_schedule="warm")  # fmt: skip


def test_finetune_rewinds_to_a_checkpoint_and_refuses_one_that_does_not_fit(
    workdir: Path, capsys, monkeypatch
) -> None:
    config = byom_config(workdir, "prune")
    monkeypatch.setenv("NASPRUNE_STORAGE", config["storage"])
    nasprune.run(config)
    early = zoo.resnet(**MODEL["model_args"])
    torch.save(early.state_dict(), workdir / "early.pt")
    code, out, err = cli(capsys, monkeypatch, "finetune", "byom-prune", "--trial", "0",
                         "--steps", "5", "--rewind", "early.pt")  # fmt: skip
    assert code == 0, err
    torch.save({"fc.weight": torch.zeros(2)}, workdir / "bad.pt")
    code, _, err = cli(capsys, monkeypatch, "finetune", "byom-prune", "--trial", "0",
                       "--steps", "5", "--rewind", "bad.pt")  # fmt: skip
    assert code == 2 and "do not fit" in err and "Traceback" not in err
    code, _, err = cli(capsys, monkeypatch, "finetune", "byom-prune", "--trial", "99")
    assert code == 2 and "no trial 99" in err


def test_an_interrupted_finetune_resumes_from_its_checkpoint_to_the_same_weights(
    workdir: Path,
) -> None:
    from nasprune.finetuning.runs import finetune_trial

    url = f"sqlite:///{workdir / 'store.db'}"
    for name in ("twin-a", "twin-b"):
        nasprune.run(byom_config(workdir, "prune") | {"name": name, "budget": {"trials": 1}})

    def stop_at_150(step: int, _total: int, _loss: float) -> None:
        if step == 150:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune_trial("twin-a", 0, steps=200, storage=url, progress=stop_at_150)
    resumed = finetune_trial("twin-a", 0, steps=200, storage=url)
    straight = finetune_trial("twin-b", 0, steps=200, storage=url)
    assert resumed.resumed_from == 100 and straight.resumed_from == 0
    a = torch.load(resumed.run.path, weights_only=True)
    b = torch.load(straight.run.path, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_validate_proxy_fine_tunes_a_spread_of_trials_and_reports_kendall_tau(
    workdir: Path, capsys, monkeypatch
) -> None:
    from nasprune.finetuning.proxy import spread

    assert spread(10, 4) == [0, 3, 6, 9] and spread(2, 5) == [0, 1]
    config = byom_config(workdir, "elastic") | {"budget": {"trials": 6}}
    monkeypatch.setenv("NASPRUNE_STORAGE", config["storage"])
    nasprune.run(config)
    code, out, err = cli(capsys, monkeypatch, "validate-proxy", "byom-elastic", "--samples",
                         "4", "--steps", "10", "--json")  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert len(result["points"]) == 4 and -1.0 <= result["kendall_tau"] <= 1.0
    proxies = [p["proxy"] for p in result["points"]]
    assert proxies == sorted(proxies) and result["mode"] == "elastic"
    store = get_store(config["storage"])
    search = store.get_search("byom-elastic")
    stored = store.get_artifact(search.search_id, "proxy_validation:4:10:cosine")
    assert stored is not None and stored.content["kendall_tau"] == result["kendall_tau"]
    assert result["lr_schedule"] == "cosine"  # the instrument's rate decays to 0 by default
    # The search's validation loss ranks the same subnets too, lower ranking higher: each
    # point carries its trial's stored loss, and the ranking is that of the negated losses.
    from scipy.stats import kendalltau

    trials = {t.number: t for t in store.trials(search.search_id)}
    losses = [p["loss"] for p in result["points"]]
    assert losses == [trials[p["trial"]].loss for p in result["points"]]
    assert all(loss > 0 for loss in losses)
    by_loss = next(r for r in result["rankings"] if r["label"] == "search loss")
    tau = float(kendalltau([-x for x in losses], [p["finetuned"] for p in result["points"]])[0])
    assert by_loss["kendall_tau"] == pytest.approx(tau if tau == tau else 0.0)
    code, _, err = cli(capsys, monkeypatch, "validate-proxy", "byom-elastic", "--samples", "2")
    assert code == 2 and "at least 3" in err
    # Variants rank the same subnets by another proxy, against the same fine-tuned accuracy.
    code, out, err = cli(capsys, monkeypatch, "validate-proxy", "byom-elastic", "--samples", "4",
                         "--steps", "10", "--json", "--variant", "mode=prune",
                         "--variant", "schedule=progressive,steps=20")  # fmt: skip
    assert code == 0, err
    compared = json.loads(out)
    labels = [r["label"] for r in compared["rankings"]]
    assert labels == ["search", "search loss", "mode=prune", "schedule=progressive,steps=20"]
    assert [p["finetuned"] for p in compared["points"]] == [
        p["finetuned"] for p in result["points"]
    ]  # one ground truth: the same trials fine-tuned the same way
    assert compared["rankings"][0]["kendall_tau"] == result["kendall_tau"]
    for point in compared["points"]:
        assert set(point["variants"]) == set(labels[2:])
        assert all(0.0 <= v <= 1.0 for v in point["variants"].values())
    pruned = [p["variants"]["mode=prune"] for p in compared["points"]]
    assert pruned != proxies  # the dense model's cut differs from the supernet's
    for ranking in compared["rankings"]:
        assert -1.0 <= ranking["spearman_rho"] <= 1.0
    # The candidates' own steps at a decaying rate, ranked beside the search's constant one.
    code, out, err = cli(capsys, monkeypatch, "validate-proxy", "byom-elastic", "--samples", "4",
                         "--steps", "10", "--json", "--variant",
                         "finetune_lr_schedule=cosine")  # fmt: skip
    assert code == 0, err
    decayed = json.loads(out)
    assert [r["label"] for r in decayed["rankings"]][-1] == "finetune_lr_schedule=cosine"
    assert all(0.0 <= p["variants"]["finetune_lr_schedule=cosine"] <= 1.0
               for p in decayed["points"])  # fmt: skip
    code, _, err = cli(capsys, monkeypatch, "validate-proxy", "byom-elastic", "--variant", "lr=1")
    assert code == 2 and "KEY=VALUE with KEY one of mode" in err
    # --repeat: the same subnets fine-tuned again from the next seed, ranked against the first.
    code, out, err = cli(capsys, monkeypatch, "validate-proxy", "byom-elastic", "--samples", "4",
                         "--steps", "10", "--json", "--repeat")  # fmt: skip
    assert code == 0, err
    repeated = json.loads(out)
    assert [r["label"] for r in repeated["rankings"]] == [
        "search",
        "search loss",
        "fine-tuned again",
    ]
    assert [p["finetuned"] for p in repeated["points"]] == [
        p["finetuned"] for p in result["points"]
    ]
    again = [p["again"] for p in repeated["points"]]
    assert all(0.0 <= a <= 1.0 for a in again)
    assert again != [p["finetuned"] for p in repeated["points"]]  # another seed, another run
    # The instrument is seeded apart from the search's seed, which the candidates' own
    # training used: fine-tuned from it, a subnet would replay its candidate's batches.
    from nasprune.evaluation.finetune import finetune
    from nasprune.evaluation.stored import open_stored

    ctx = open_stored(store, search)
    first = next(
        t for t in store.trials(search.search_id) if t.number == result["points"][0]["trial"]
    )
    built, seeded = ctx.subnet(first), {}
    for seed in (ctx.config.seed, ctx.config.seed + 1):
        subnet = copy.deepcopy(built)
        finetune(subnet, ctx.loaders.train, 10, 1e-3, seed=seed, lr_schedule="cosine")
        seeded[seed] = accuracy_and_loss(subnet, ctx.loaders.val)[0]
    assert seeded[ctx.config.seed] != seeded[ctx.config.seed + 1]  # the seeds can be told apart
    assert result["points"][0]["finetuned"] == seeded[ctx.config.seed + 1]
    # --lr-schedule constant: the rate of the instrument before the schedule, and its key.
    code, out, err = cli(capsys, monkeypatch, "validate-proxy", "byom-elastic", "--samples", "4",
                         "--steps", "10", "--json", "--lr-schedule", "constant")  # fmt: skip
    assert code == 0, err
    constant = json.loads(out)
    subnet = copy.deepcopy(built)
    finetune(subnet, ctx.loaders.train, 10, 1e-3, seed=ctx.config.seed + 1)
    assert constant["points"][0]["finetuned"] == accuracy_and_loss(subnet, ctx.loaders.val)[0]
    assert constant["lr_schedule"] == "constant"
    assert store.get_artifact(search.search_id, "proxy_validation:4:10") is not None
    code, _, err = cli(capsys, monkeypatch, "validate-proxy", "byom-elastic", "--lr-schedule",
                       "linear")  # fmt: skip
    assert code == 2 and "unknown --lr-schedule 'linear'; known: constant, cosine" in err
    # --finetunes 2: each fine-tuned accuracy is the mean of the first two seeds' (the seeds
    # the single and the repeated run used), and --repeat the mean of the next two.
    code, out, err = cli(capsys, monkeypatch, "validate-proxy", "byom-elastic", "--samples", "4",
                         "--steps", "10", "--json", "--repeat", "--finetunes", "2")  # fmt: skip
    assert code == 0, err
    averaged = json.loads(out)
    assert averaged["finetunes"] == 2 and result["finetunes"] == 1
    assert [p["finetuned"] for p in averaged["points"]] == pytest.approx(
        [(p["finetuned"] + p["again"]) / 2 for p in repeated["points"]]
    )
    assert all(0.0 <= p["again"] <= 1.0 for p in averaged["points"])
    assert store.get_artifact(search.search_id, "proxy_validation:4:10:x2:cosine") is not None
    code, _, err = cli(capsys, monkeypatch, "validate-proxy", "byom-elastic", "--finetunes", "0")
    assert code == 2 and "--finetunes must be at least 1" in err


def test_the_python_api_searches_a_module_object_and_resumes_and_exports_with_it(
    workdir: Path, capsys, monkeypatch
) -> None:
    model = zoo.resnet(**MODEL["model_args"])
    space = nasprune.derive_space(model, input_shape=[1, 1, 8, 8], granularity="global")
    config = byom_config(workdir, "prune") | {"name": "from-python", "budget": {"trials": 2}}
    result = nasprune.run(config, space=space)
    assert result.completed == 2
    more = byom_config(workdir, "prune")["storage"]
    monkeypatch.setenv("NASPRUNE_STORAGE", more)
    code, _, err = cli(capsys, monkeypatch, "resume", "from-python")
    assert code == 2 and "Python object" in err and "Traceback" not in err
    again = nasprune.derive_space(model, input_shape=[1, 1, 8, 8], granularity="global")
    assert nasprune.resume("from-python", space=again).completed == 2
    other = nasprune.derive_space(model, input_shape=[1, 1, 8, 8])
    with pytest.raises(nasprune.NasPruneError, match="not the one this search was created"):
        nasprune.resume("from-python", space=other)
    best = nasprune.best("from-python")
    assert best is not None
    nasprune.export("from-python", workdir / "m.pt", trial=best.number, space=again)
    with pytest.raises(nasprune.NasPruneError, match="pass it as model="):
        nasprune.load_subnet(workdir / "m.pt")
    loaded = nasprune.load_subnet(workdir / "m.pt", model=model)
    assert sum(p.numel() for p in loaded.parameters()) == best.params


@pytest.mark.parametrize(
    "strategy", ["grid", "optuna.cmaes", "nni.regularized_evolution", "nni.tpe"]
)
def test_strategies_search_a_derived_space_with_ratio_and_block_dimensions(
    strategy: str, workdir: Path
) -> None:
    config = byom_config(workdir, "prune", sparsity=[0.5]) | {"budget": {"trials": 3}}
    config["strategy"] = {"name": strategy}
    config["evaluation"] = {"mode": "prune"}
    result = nasprune.run(config)
    assert result.completed == 3


def test_a_derived_supernet_fine_tunes_the_model_at_a_lower_default_learning_rate(
    workdir: Path, make_config
) -> None:
    from nasprune.config import parse_config
    from nasprune.evaluation.supernet import supernet_lr
    from search_spaces import create_space

    derived = parse_config(byom_config(workdir) | {"evaluation": {}})
    assert derived.evaluation.mode == "elastic"
    assert supernet_lr(derived, create_space("derived", **derived.space.params)) == 1e-3
    builtin = parse_config(make_config(workdir))
    assert supernet_lr(builtin, create_space(builtin.space.name)) == 1e-2
    explicit = parse_config(make_config(workdir) | {"supernet": {"lr": 0.05}})
    assert supernet_lr(explicit, create_space(explicit.space.name)) == 0.05


@pytest.mark.parametrize("family", sorted(zoo.FAMILIES))
def test_every_family_searches_exports_in_three_formats_and_reloads(
    family: str, workdir: Path
) -> None:
    _, shape = zoo.FAMILIES[family]
    classes = 5 if family == "cnn1d" else 10
    config = byom_config(workdir, "prune") | {
        "name": family,
        "space": {"name": "derived", "params": {"model": f"zoo:{family}",
                                                "input_shape": [1, *shape]}},
        "data": {"builtin": "synthetic", "batch_size": 32,
                 "params": {"num_samples": 160, "noise": 0.5}},
        "evaluation": {"mode": "prune", "bn_calibration_batches": 1, "finetune_steps": 3},
        "budget": {"trials": 2},
    }  # fmt: skip
    nasprune.run(config)
    trial = nasprune.best(family, storage=config["storage"])
    assert trial is not None
    outputs = {}
    x = torch.randn(3, *shape)
    for fmt, file in (("state", "m.pt"), ("torchscript", "m.ts"), ("onnx", "m.onnx")):
        nasprune.export(family, workdir / file, trial=trial.number, format=fmt,
                        storage=config["storage"])  # fmt: skip
    model = nasprune.load_subnet(workdir / "m.pt")
    assert sum(p.numel() for p in model.parameters()) == trial.params
    with torch.no_grad():
        outputs["state"] = model(x)
        outputs["torchscript"] = torch.jit.load(str(workdir / "m.ts"))(x)
    session = ort.InferenceSession(str(workdir / "m.onnx"), providers=["CPUExecutionProvider"])
    outputs["onnx"] = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    assert outputs["state"].shape == (3, classes)
    torch.testing.assert_close(outputs["torchscript"], outputs["state"], atol=1e-5, rtol=0)
    torch.testing.assert_close(outputs["onnx"], outputs["state"], atol=1e-4, rtol=0)
