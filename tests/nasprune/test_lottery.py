"""`nasprune lottery`: iterative magnitude pruning with rewinding on a trial of a small digits
search. Each round prunes its share of the remaining weights, rewinds the survivors to w_K and
holds the pruned ones at exactly zero while training; rounds are stored, reused, resumed after
a SIGKILL to the same weights; the best round is what export writes; the random-reinit
control keeps the masks; bad input is one line, exit 2, and writes nothing."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_support import cli
from kill_support import kill_command_when
from torch import nn

import nasprune
from nasprune.finetuning import lottery
from nasprune.finetuning.lottery import LotteryResult, lottery_trial
from storage import TrialState, get_store


def search(workdir: Path, make_config, name: str = "tiny") -> tuple[str, int, int]:
    """Run a small search whose parameter limit leaves some trials infeasible; returns the
    store's URL, a complete trial and an infeasible one."""
    config = make_config(workdir, name=name, budget={"trials": 3})
    config["constraints"] = {"params": {"max": 2500}}
    nasprune.run(config, storage=config["storage"])
    store = get_store(config["storage"])
    trials = store.trials(store.get_search(name).search_id)
    complete = [t.number for t in trials if t.state == TrialState.COMPLETE]
    infeasible = [t.number for t in trials if t.state == TrialState.INFEASIBLE]
    assert complete and infeasible, [t.state for t in trials]
    return config["storage"], complete[0], infeasible[0]


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory, make_config) -> tuple[str, int, int]:
    """One search for the tests of this module; each runs lotteries of its own settings."""
    return search(tmp_path_factory.mktemp("lottery"), make_config)


def conv_linear(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        f"{name}.weight": m.weight
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)
    }


def watch_training(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Wrap the lottery's training loop: each call records the weights it starts from and
    checks after every step that the weights that were zero at its start are zero still."""
    calls: list[dict[str, Any]] = []
    real = lottery.finetune

    def watched(model: nn.Module, *args: Any, **kwargs: Any) -> torch.optim.Optimizer:
        zeros = {n: w.detach() == 0 for n, w in conv_linear(model).items()}
        state = {k: v.clone() for k, v in model.state_dict().items()}
        call = {"start": kwargs["start"], "state": state, "zeros": zeros, "steps": 0, "held": True}
        calls.append(call)
        inner = kwargs.get("on_step")

        def on_step(step: int, loss: float) -> None:
            weights = conv_linear(model)
            call["held"] &= all(bool((weights[n][z] == 0).all()) for n, z in zeros.items())
            call["steps"] += 1
            if inner is not None:
                inner(step, loss)

        return real(model, *args, **kwargs | {"on_step": on_step})

    monkeypatch.setattr(lottery, "finetune", watched)
    return calls


def load(path: Path | str) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_each_round_prunes_its_share_of_what_remains_rewinds_survivors_and_holds_the_zeros(
    searched: tuple[str, int, int], monkeypatch
) -> None:
    url, number, _ = searched
    calls = watch_training(monkeypatch)
    result = lottery_trial("tiny", number, rounds=2, rate=0.5, steps=12, rewind_step=4, storage=url)

    total = sum(m.numel() for m in load(result.files.mask(0)).values())
    for r in result.rounds:
        assert r.sparsity == pytest.approx(1 - 0.5**r.number, abs=r.number / total)
        assert r.run.complete and r.run.steps_done == 12 and not r.reused
        assert r.run.settings["round"] == r.number and r.run.settings["rewind_step"] == 4
        assert r.run.accuracy is not None and r.run.test_accuracy is not None
    assert [r.sparsity for r in result.rounds] == sorted(r.sparsity for r in result.rounds)

    # round 0 checkpoints at w_K's step; rounds 1 and 2 train in one piece
    assert [c["start"] for c in calls] == [0, 4, 0, 0]
    assert sum(c["steps"] for c in calls) == 3 * 12 and all(c["held"] for c in calls)
    w0, wk = calls[0]["state"], calls[1]["state"]
    assert torch.equal(load(result.files.rewind)["classifier.weight"], wk["classifier.weight"])
    assert not torch.equal(w0["classifier.weight"], wk["classifier.weight"])  # 4 steps moved it
    for r, call in zip(result.rounds[1:], calls[2:], strict=True):
        mask = load(result.files.mask(r.number))
        start, trained = call["state"], load(r.run.path)
        for name, kept in mask.items():
            assert torch.equal(call["zeros"][name], ~kept)  # it started with the mask applied
            assert torch.equal(start[name][kept], wk[name][kept])  # survivors rewound to w_K
            assert torch.equal(trained[name] != 0, kept)  # pruned stay 0, survivors trained
        assert torch.equal(start["classifier.bias"], wk["classifier.bias"])  # biases rewound
    # each mask keeps a subset of the previous round's
    masks = [load(result.files.mask(r)) for r in range(3)]
    for earlier, later in zip(masks, masks[1:], strict=False):
        assert all(bool((later[n] <= earlier[n]).all()) for n in later)


def test_asking_again_reuses_the_rounds_and_export_writes_the_best_round(
    workdir: Path, searched: tuple[str, int, int], capsys, monkeypatch
) -> None:
    url, number, _ = searched
    args = ["lottery", "tiny", "--trial", str(number), "--rate", "0.5", "--steps", "10"]
    code, out, err = cli(capsys, monkeypatch, *args, "--rounds", "2", "--storage", url)
    assert code == 0, err
    assert out.count("trained") == 3 and "reused" not in out
    assert "rewound to the search's weights, no early checkpoint" in out
    assert "50.0%" in out and "75.0%" in out and "test accuracy" in out

    calls = watch_training(monkeypatch)
    code, out, err = cli(capsys, monkeypatch, *args, "--rounds", "2", "--storage", url)
    assert code == 0 and out.count("reused") == 3 and "trained" not in out, err
    assert calls == []  # nothing was trained again
    code, out, err = cli(capsys, monkeypatch, *args, "--rounds", "3", "--storage", url)
    assert code == 0 and out.count("reused") == 3 and out.count("trained") == 1, err
    assert "87.5%" in out and len(calls) == 1
    found = re.search(r"best round (\d+)", out)
    assert found is not None
    best = int(found.group(1))

    trial = get_store(url).get_trial(get_store(url).get_search("tiny").search_id, number)
    assert trial is not None
    chosen = nasprune.api.finetuned("tiny", [trial], storage=url)[number]
    assert chosen.settings["round"] == best and chosen.settings["lottery"] == "imp"
    code, out, err = cli(capsys, monkeypatch, "export", "tiny", "--trial", str(number),
                         "-o", "ticket.pt", "--storage", url)  # fmt: skip
    assert code == 0 and "fine-tuned weights" in out, err
    exported = load(workdir / "ticket.pt")
    assert exported["finetuned"]["round"] == best
    weights = load(str(chosen.path))
    assert all(torch.equal(exported["state_dict"][k], weights[k]) for k in weights)


def test_the_random_reinit_control_trains_the_tickets_masks_from_fresh_weights(
    searched: tuple[str, int, int], monkeypatch
) -> None:
    url, number, _ = searched
    settings: dict[str, Any] = {"rounds": 1, "rate": 0.6, "steps": 10, "storage": url}
    ticket = lottery_trial("tiny", number, **settings)
    calls = watch_training(monkeypatch)
    control = lottery_trial("tiny", number, reinit=True, **settings)

    again = lottery_trial("tiny", number, **settings)
    assert control.reinit and all(r.reused for r in again.rounds)
    assert [c["start"] for c in calls] == [0]  # the ticket's rounds were reused, round 1 trained
    assert control.rounds[0].run.finetune_id == ticket.rounds[0].run.finetune_id
    first = control.rounds[1]
    assert first.run.settings["reinit"] is True and not first.reused
    assert first.sparsity == ticket.rounds[1].sparsity
    mask, wk = load(ticket.files.mask(1)), load(ticket.files.rewind)
    start, trained = calls[0]["state"], load(first.run.path)
    for name, kept in mask.items():
        assert torch.equal(calls[0]["zeros"][name], ~kept)  # the same mask
        assert torch.equal(trained[name] != 0, kept) and calls[0]["held"]
        differs = start[name][kept] != wk[name][kept]
        assert float(differs.float().mean()) > 0.99  # not the ticket's w_K: a fresh draw
    # the trial's weights stay the ticket's best round, not the control's
    trial = get_store(url).get_trial(get_store(url).get_search("tiny").search_id, number)
    assert trial is not None
    chosen = nasprune.api.finetuned("tiny", [trial], storage=url)[number]
    assert "reinit" not in chosen.settings and chosen.settings["round"] == ticket.best.number


def finetune_rows(url: str) -> int:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        return int(db.execute("select count(*) from finetunes").fetchone()[0])


def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    searched: tuple[str, int, int], capsys, monkeypatch
) -> None:
    url, number, infeasible = searched
    ok = {"--trial": str(number), "--rounds": "2", "--rate": "0.5", "--steps": "10"}
    cases = [
        ({"--rate": "0"}, "--rate"),
        ({"--rate": "1"}, "--rate"),
        ({"--rate": "1.5"}, "--rate"),
        ({"--rounds": "0"}, "--rounds"),
        ({"--steps": "0"}, "--steps"),
        ({"--rewind-step": "11"}, "--rewind-step"),
        ({"--rewind-step": "-1"}, "--rewind-step"),
        ({"--trial": "99"}, "no trial 99"),
        ({"--trial": str(infeasible)}, "infeasible, not complete"),
    ]
    folder = Path(url.removeprefix("sqlite:///")).parent / "checkpoints" / "finetunes"
    rows, files = finetune_rows(url), sorted(folder.glob("*")) if folder.exists() else []
    for change, message in cases:
        options = [part for item in (ok | change).items() for part in item]
        code, out, err = cli(capsys, monkeypatch, "lottery", "tiny", *options, "--storage", url)
        assert code == 2 and message in err, (change, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    code, _, err = cli(capsys, monkeypatch, "lottery", "nope", *[p for i in ok.items() for p in i],
                       "--storage", url)  # fmt: skip
    assert code == 2 and "nope" in err and len(err.strip().splitlines()) == 1
    assert finetune_rows(url) == rows
    assert (sorted(folder.glob("*")) if folder.exists() else []) == files


def rounds_in_store(url: str) -> list[tuple[int, str, int]]:
    """(round, status, steps done) of every lottery round in the store."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        rows = db.execute("select settings_json, status, steps_done from finetunes").fetchall()
    return sorted((json.loads(s)["round"], status, done) for s, status, done in rows)


def assert_same_rounds(a: LotteryResult, b: LotteryResult) -> None:
    for x, y in zip(a.rounds, b.rounds, strict=True):
        assert (x.run.accuracy, x.sparsity) == (y.run.accuracy, y.sparsity), x.number
        wx, wy = load(str(x.run.path)), load(str(y.run.path))
        assert all(torch.equal(wx[k], wy[k]) for k in wx), x.number


@pytest.mark.slow
def test_a_sigkilled_lottery_resumes_at_its_round_and_checkpoint_to_the_same_rounds(
    workdir: Path, make_config
) -> None:
    url, number, _ = search(workdir, make_config, "twin-a")
    _, twin, _ = search(workdir, make_config, "twin-b")
    assert twin == number
    settings: dict[str, Any] = {"rounds": 1, "rate": 0.5, "steps": 200, "rewind_step": 30}
    args = ["twin-a", "--trial", str(number), "--rounds", "1", "--rate", "0.5", "--steps", "200",
            "--rewind-step", "30"]  # fmt: skip

    def mid_pruned_round() -> bool:  # round 1 past its first checkpoint
        return any(r == 1 and s == "running" and d >= 100 for r, s, d in rounds_in_store(url))

    kill_command_when(["lottery", *args], url, mid_pruned_round, "a checkpoint in round 1", 300)
    running = [(r, done) for r, status, done in rounds_in_store(url) if status == "running"]
    assert len(running) == 1, rounds_in_store(url)
    assert running[0][0] == 1 and 100 <= running[0][1] < 200
    assert len(list((workdir / "checkpoints" / "finetunes").glob("*-round1.resume.pt"))) == 1

    resumed = lottery_trial("twin-a", number, storage=url, **settings)
    assert resumed.rounds[0].reused  # round 0 was finished before the kill
    assert resumed.rounds[1].resumed_from == running[0][1] and not resumed.rounds[1].reused
    straight = lottery_trial("twin-b", number, storage=url, **settings)
    assert all(not r.reused and r.resumed_from == 0 for r in straight.rounds)
    assert_same_rounds(resumed, straight)
