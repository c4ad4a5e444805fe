"""Sparse training in `nasprune finetune --sparse rigl|set`: the mask of a sparse subnet moves
while every layer keeps its number of non-zero weights; RigL grows where the dense gradient is
largest, SET at random; a run is recorded, resumes with its mask, and exports plain zeros."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import zoo
from cli_support import cli
from torch import nn

import nasprune
from nasprune.evaluation.data import digits
from nasprune.evaluation.finetune import finetune
from nasprune.finetuning import runs
from nasprune.finetuning.runs import finetune_trial
from nasprune.finetuning.sparse import DynamicMask, drop_fraction
from search_spaces.derived.plan import prunable_weights, sparsify_weights
from storage import get_store

MODEL = {"model": "zoo:resnet", "model_args": {"in_channels": 1, "widths": [8, 16, 32]}}


@dataclass(frozen=True)
class Searches:
    url: str
    folder: Path
    sparse: int  # a trial whose subnet has weight sparsity
    dense: int  # a trial whose subnet has none


def _config(folder: Path, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "seed": 0,
        "storage": f"sqlite:///{folder / 'store.db'}",
        "space": {
            "name": "derived",
            "params": MODEL | {"input_shape": [1, 1, 8, 8], "sparsity": [0.5, 0.8]},
        },
        "data": {"builtin": "digits", "batch_size": 64},
        "supernet": {"epochs": 2, "checkpoint_dir": str(folder / "checkpoints")},
        "evaluation": {"mode": "prune", "finetune_steps": 0},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "latency": {"warmup": 1, "repeats": 3},
        "strategy": {"name": "random"},
        "budget": {"trials": 4},
    }


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: on a busy two-core machine two ran these steps 60 times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def searches(tmp_path_factory: pytest.TempPathFactory) -> Searches:
    """Two identical searches (twins, so that one run can be interrupted and its twin not)."""
    folder = tmp_path_factory.mktemp("sparse")
    for name in ("sparse-a", "sparse-b"):
        nasprune.run(_config(folder, name))
    store = get_store(f"sqlite:///{folder / 'store.db'}")
    twins = [store.trials(store.get_search(n).search_id) for n in ("sparse-a", "sparse-b")]
    assert [t.arch for t in twins[0]] == [t.arch for t in twins[1]]
    levels = {t.number: float(t.arch["sparsity"]) for t in twins[0]}
    sparse = next(n for n, level in levels.items() if level > 0)
    dense = next(n for n, level in levels.items() if level == 0)
    return Searches(store.url, folder, sparse, dense)


def _sparse_resnet() -> nn.Module:
    model = zoo.resnet(**MODEL["model_args"])
    sparsify_weights(model, 0.8, 0)
    return model


def _train_loader() -> torch.utils.data.DataLoader:
    train, _, _ = digits((1, 8, 8))
    return torch.utils.data.DataLoader(train, batch_size=64)


def _train(model: nn.Module, mask: DynamicMask, watch: Callable[[int], None]) -> None:
    """30 steps, the mask's ``after_step`` wrapped so that ``watch`` sees every step."""

    def after_step(step: int, optimiser: torch.optim.Optimizer) -> None:
        mask.after_step(step, optimiser)
        watch(step)

    finetune(model, _train_loader(), 30, 1e-2, seed=0, after_step=after_step)


def _nonzero_by_layer(state: dict[str, torch.Tensor], names: list[str]) -> dict[str, int]:
    return {n: int(torch.count_nonzero(state[n])) for n in names}


def _weight_names(model: nn.Module) -> list[str]:
    names = {id(p): n for n, p in model.named_parameters()}
    return [names[id(getattr(m, w))] for m, w in prunable_weights(model)]


def test_the_mask_keeps_each_layers_count_at_every_step_and_moves_at_update_steps() -> None:
    model = _sparse_resnet()
    mask = DynamicMask(model, "rigl", interval=5, steps=30, seed=0)
    start, counts = mask.state(), mask.active()
    assert counts and all(0 < c < mask.masks[n].numel() for n, c in counts.items())
    moved: list[int] = []
    previous = mask.state()

    def watch(step: int) -> None:
        assert mask.active() == counts  # exactly the starting count in every layer
        for name, m in mask.masks.items():
            weight = mask.weights[name].detach()
            assert not bool(weight[~m].any())  # plain zeros outside the mask
            if not mask.updates_at(step):  # a just-grown weight is 0 until its first step
                assert int(torch.count_nonzero(weight)) == counts[name]
        if any(not torch.equal(previous[n], m) for n, m in mask.masks.items()):
            moved.append(step)
        previous.update(mask.state())

    _train(model, mask, watch)
    # T_end = 75% of 30 steps = 22: updates at 5, 10, 15 and 20 only
    assert moved == [5, 10, 15, 20]
    # RigL's schedule: alpha = 0.3, cosine decay to 0 at T_end
    assert drop_fraction(0, 22) == pytest.approx(0.3)
    assert drop_fraction(11, 22) == pytest.approx(0.15)
    assert drop_fraction(22, 22) == 0.0
    assert any(not torch.equal(start[n], m) for n, m in mask.masks.items())


def test_rigl_drops_the_smallest_weights_and_grows_where_the_dense_gradient_is_largest() -> None:
    model = _sparse_resnet()
    mask = DynamicMask(model, "rigl", interval=5, steps=30, seed=0)
    checked: list[str] = []

    def after_step(step: int, optimiser: torch.optim.Optimizer) -> None:
        before = mask.state()
        weights = {n: (w.detach() * before[n]).abs() for n, w in mask.weights.items()}
        grads = {n: w.grad.detach().abs().clone() for n, w in mask.weights.items()}
        mask.after_step(step, optimiser)
        if not mask.updates_at(step):
            return
        for name, after in mask.masks.items():
            grown, dropped = after & ~before[name], before[name] & ~after
            if not bool(grown.any()):
                continue
            # grown: the largest gradients of all the connections left inactive
            assert float(grads[name][grown].min()) >= float(grads[name][~after].max())
            # dropped: among the k smallest active weights (k: the schedule's share; a
            # dropped weight may be grown again at once, so some of the k may stay)
            k = math.floor(drop_fraction(step, mask.end) * int(before[name].sum()))
            lost = weights[name][dropped]
            assert 0 < len(lost) == int(grown.sum()) <= k  # as many grown as dropped
            assert int((weights[name][before[name]] < lost.max()).sum()) < k
            weight = mask.weights[name]
            assert not bool(weight.detach()[grown].any())  # grown weights start at 0 ...
            moments = optimiser.state[weight]
            assert not bool(moments["exp_avg"][grown].any())  # ... and so do their Adam moments
            assert not bool(moments["exp_avg_sq"][grown].any())
            checked.append(name)

    finetune(model, _train_loader(), 30, 1e-2, seed=0, after_step=after_step)
    assert len(checked) >= 4  # several layers at several updates


def test_set_grows_at_random_seeded_and_ends_with_other_masks_than_rigl() -> None:
    ends = {}
    for method, seed in (("rigl", 0), ("set", 0), ("set", 0), ("set", 1)):
        model = _sparse_resnet()
        mask = DynamicMask(model, method, interval=5, steps=30, seed=seed)
        counts = mask.active()
        _train(model, mask, lambda _step: None)
        assert mask.active() == counts
        ends.setdefault((method, seed), []).append(mask.state())
    rigl, set0, set1 = ends[("rigl", 0)][0], ends[("set", 0)], ends[("set", 1)][0]
    assert all(torch.equal(set0[0][n], set0[1][n]) for n in rigl)  # seeded: the same again
    assert any(not torch.equal(rigl[n], set0[0][n]) for n in rigl)
    assert any(not torch.equal(set1[n], set0[0][n]) for n in rigl)  # another seed, other draws


def test_rigl_through_the_cli_keeps_each_layers_sparsity_and_export_writes_plain_zeros(
    searches: Searches, tmp_path: Path, capsys, monkeypatch
) -> None:
    n = str(searches.sparse)
    code, out, err = cli(capsys, monkeypatch, "finetune", "sparse-a", "--trial", n,
                         "--steps", "40", "--sparse", "rigl", "--sparse-interval", "5",
                         "--storage", searches.url)  # fmt: skip
    assert code == 0 and "trained, rigl mask updates every 5 steps" in out, err
    store = get_store(searches.url)
    trial = store.get_trial(store.get_search("sparse-a").search_id, searches.sparse)
    assert trial is not None
    run = store.get_finetune(trial.trial_id)  # its newest complete run: this one
    assert run is not None and run.steps_done == 40 and run.accuracy is not None
    assert run.settings["sparse"] == "rigl" and run.settings["sparse_interval"] == 5
    saved = torch.load(run.path, weights_only=True)
    assert not any(k.endswith(("_orig", "_mask")) for k in saved)  # the mask made permanent

    for name, how in (("tuned.pt", ()), ("inherited.pt", ("--inherited",))):
        code, out, err = cli(capsys, monkeypatch, "export", "sparse-a", "-o",
                             str(tmp_path / name), "--trial", n, *how,
                             "--storage", searches.url)  # fmt: skip
        assert code == 0, err
    assert "fine-tuned weights" in cli(capsys, monkeypatch, "export", "sparse-a", "-o",
                                       str(tmp_path / "again.pt"), "--trial", n,
                                       "--storage", searches.url)[1]  # fmt: skip
    tuned = nasprune.load_subnet(tmp_path / "tuned.pt").state_dict()
    start = nasprune.load_subnet(tmp_path / "inherited.pt")
    names = _weight_names(start)
    assert all(torch.equal(tuned[k], saved[k]) for k in saved)  # the run's weights, as saved
    # each layer has exactly the number of non-zero weights it started with ...
    assert _nonzero_by_layer(tuned, names) == _nonzero_by_layer(start.state_dict(), names)
    # ... in other places: the mask moved
    assert any(not torch.equal(tuned[k] != 0, start.state_dict()[k] != 0) for k in names)


def test_a_run_without_sparse_keeps_the_settings_keys_of_earlier_runs(searches: Searches) -> None:
    result = finetune_trial(
        "sparse-a", searches.sparse, steps=2, storage=searches.url, lr_schedule="constant"
    )
    assert set(result.run.settings) == {"steps", "lr", "distill", "rewind", "seed"}
    sparse = finetune_trial(
        "sparse-a", searches.sparse, steps=2, storage=searches.url, sparse="set",
        lr_schedule="constant",
    )  # fmt: skip
    assert sparse.run.settings == result.run.settings | {"sparse": "set", "sparse_interval": 100}
    assert sparse.run.key != result.run.key
    # The default's decaying rate (since the schedule came) is one key more.
    decayed = finetune_trial("sparse-a", searches.sparse, steps=2, storage=searches.url)
    assert decayed.run.settings == result.run.settings | {"lr_schedule": "cosine"}


def test_an_interrupted_sparse_run_resumes_with_its_mask_to_the_same_weights(
    searches: Searches, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "CHECKPOINT_EVERY", 20)  # a checkpoint every 20 steps, not 100

    def stop_at_30(step: int, _total: int, _loss: float) -> None:
        if step == 30:
            raise KeyboardInterrupt

    kwargs: dict[str, Any] = {"steps": 40, "storage": searches.url, "sparse": "set",
                              "sparse_interval": 5}  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        finetune_trial("sparse-a", searches.sparse, progress=stop_at_30, **kwargs)
    checkpoint = next((searches.folder / "checkpoints" / "finetunes").glob("*.resume.pt"))
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["step"] == 20 and saved["sparse_masks"]
    # the mask was updated at step 20: connections grown then are in it and still 0, so
    # a mask read back from the weights' zeros would lose them
    masks, weights = saved["sparse_masks"], saved["model"]
    assert any(bool((weights[n][m] == 0).any()) for n, m in masks.items())

    resumed = finetune_trial("sparse-a", searches.sparse, **kwargs)
    straight = finetune_trial("sparse-b", searches.sparse, **kwargs)
    assert resumed.resumed_from == 20 and straight.resumed_from == 0
    a = torch.load(resumed.run.path, weights_only=True)
    b = torch.load(straight.run.path, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not checkpoint.exists()


def _finetune_rows(url: str) -> int:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        return int(connection.execute("SELECT count(*) FROM finetunes").fetchone()[0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--sparse", "rigl"), "has no weight sparsity"),
        (("--sparse", "magnitude"), "unknown --sparse method 'magnitude'; known: rigl, set"),
        (("--sparse", "rigl", "--sparse-interval", "0"), "--sparse-interval must be at least 1"),
        (("--sparse", "set", "--qat"), "--sparse and --qat do not combine"),
    ],
)
def test_bad_sparse_input_is_one_line_exit_2_and_writes_nothing(
    searches: Searches, args: tuple[str, ...], message: str, capsys, monkeypatch
) -> None:
    trial = searches.dense if message == "has no weight sparsity" else searches.sparse
    rows = _finetune_rows(searches.url)
    files = sorted((searches.folder / "checkpoints").rglob("*"))
    code, out, err = cli(capsys, monkeypatch, "finetune", "sparse-a", "--trial", str(trial),
                         "--steps", "7", *args, "--storage", searches.url)  # fmt: skip
    assert code == 2 and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert _finetune_rows(searches.url) == rows
    assert sorted((searches.folder / "checkpoints").rglob("*")) == files
