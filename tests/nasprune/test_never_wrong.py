"""Searches of models torch-pruning alone would prune wrongly: the wrong group is refused before
any row is written and every trial is scored on a checked model, in both modes; a refusal after
the search's row is written leaves it failed (never ``running``), with the reason, and the CLI
says it in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_support import cli

import nasprune
from nasprune.errors import NasPruneError
from storage import SearchStatus, TrialState, get_store


def _config(tmp_path: Path, model: str, mode: str, **model_args: Any) -> dict[str, Any]:
    return {
        "name": f"{model}-{mode}",
        "seed": 0,
        "storage": f"sqlite:///{tmp_path / 'store.db'}",
        "space": {
            "name": "derived",
            "params": {
                "model": f"zoo:{model}",
                "model_args": {"in_channels": 1, **model_args},
                "input_shape": [1, 1, 8, 8],
            },
        },
        "data": {"builtin": "digits", "batch_size": 64},
        "supernet": {"epochs": 1, "checkpoint_dir": str(tmp_path / "checkpoints")},
        "evaluation": {"mode": mode, "finetune_steps": 0},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "latency": {"warmup": 1, "repeats": 3},
        "strategy": {"name": "random"},
        "budget": {"trials": 2},  # the stem alone: 8 or 16 channels
    }


@pytest.mark.parametrize("mode", ["prune", "elastic"])
def test_a_permute_reshape_model_is_searched_without_its_wrongly_pruned_group(
    mode: str, workdir: Path
) -> None:
    config = _config(workdir, "permute_head", mode, size=8)
    result = nasprune.run(config)
    assert result.completed == 2
    store = get_store(config["storage"])
    search = store.get_search(result.name)
    trials = store.trials(search.search_id)
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    assert all(set(t.arch) == {"stem"} for t in trials)  # 'conv' was refused, stays dense


def test_a_refusal_after_the_row_is_written_leaves_a_failed_search_with_its_reason(
    workdir: Path, capsys, monkeypatch
) -> None:
    # Channel masks cannot emulate a model that normalises its channels before a layer reads
    # them: elastic mode refuses it when the supernet is first built, after the row exists.
    config = _config(workdir, "normalized", "elastic")
    with pytest.raises(NasPruneError, match="elastic mode cannot emulate"):
        nasprune.run(config)
    store = get_store(config["storage"])
    search = store.get_search(config["name"])
    assert search.status == SearchStatus.FAILED
    failed = [e.message for e in store.events(search.search_id) if e.kind == "failed"]
    assert len(failed) == 1 and "elastic mode cannot emulate" in failed[0]

    # the CLI says so in one line, exit 2, and the name is not stuck: resume is offered
    monkeypatch.setenv("NASPRUNE_STORAGE", config["storage"])
    code, _, err = cli(capsys, monkeypatch, "resume", config["name"])
    assert code == 2 and "elastic mode cannot emulate" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert store.get_search(config["name"]).status == SearchStatus.FAILED

    # the same model in prune mode, whose candidates are each checked, searches fine
    prune = _config(workdir, "normalized", "prune")
    assert nasprune.run(prune).completed == 2


def test_the_cli_says_the_refused_group_in_one_line_and_runs_the_search(
    workdir: Path, write_config, capsys, monkeypatch
) -> None:
    config = _config(workdir, "permute_head", "prune", size=8)
    monkeypatch.setenv("NASPRUNE_STORAGE", config["storage"])
    code, _, err = cli(capsys, monkeypatch, "run", str(write_config(workdir / "p.yaml", config)))
    assert code == 0, err
    refused = [line for line in err.splitlines() if "refused" in line]
    assert refused == [
        "derived space: group 'conv' is refused and stays dense: pruned, it computes other "
        "values than the dense model with those channels zeroed, first at layer 'fc' (by 0.13)"
    ]
