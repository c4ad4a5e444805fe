"""Elastic mode with ``evaluation.finetune_steps``: each candidate is checked, extracted and
trained on its own before its accuracy is measured, the shared supernet is left as it was,
and the export computes what the search scored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import nasprune
from nasprune.config import SearchConfig
from nasprune.evaluation.candidates import candidate_steps
from nasprune.evaluation.metrics import accuracy_and_loss
from nasprune.evaluation.stored import StoredSearch, open_stored
from search_spaces import create_space
from storage import TrialState, get_store


def _supernet_state(config: dict[str, Any]) -> tuple[StoredSearch, dict[str, torch.Tensor]]:
    store = get_store(config["storage"])
    ctx = open_stored(store, store.get_search(config["name"]))
    return ctx, {k: v.detach().clone() for k, v in ctx.source.named_parameters()}


@pytest.mark.parametrize("space", ["builtin.cnn", "derived"])
def test_a_trained_candidate_leaves_the_supernet_as_it_was_and_exports_as_scored(
    space: str, workdir: Path, make_config
) -> None:
    config = make_config(workdir, name="trained", budget={"trials": 3})
    config["strategy"] = {"name": "random"}  # the same architectures in both searches
    config["supernet"] = {"steps": 40, "checkpoint_dir": str(workdir / "checkpoints")}
    config["space"] = {"name": "builtin.cnn", "params": {}}
    if space == "derived":
        model = {"model": "zoo:resnet", "model_args": {"in_channels": 1, "widths": [8, 16, 32]}}
        config["space"] = {"name": "derived", "params": model | {"input_shape": [1, 1, 8, 8]}}
    config["evaluation"] = {"finetune_steps": 0}
    untrained = nasprune.run(config | {"name": "as-inherited"})
    config["evaluation"] = {"finetune_steps": 20}
    result = nasprune.run(config)
    assert result.completed == config["budget"]["trials"]
    assert result.reused_supernet  # the same supernet: finetune_steps is not in its recipe

    ctx, before = _supernet_state(config)
    store = get_store(config["storage"])
    trials = [t for t in store.trials(ctx.record.search_id) if t.state == TrialState.COMPLETE]
    for trial in trials:
        measured, subnet = ctx.candidate(trial.arch)
        assert measured is subnet  # measured on the trained standalone subnet
        assert accuracy_and_loss(subnet, ctx.loaders.val)[0] == pytest.approx(trial.accuracy)
    for name, tensor in ctx.source.named_parameters():  # (batch norms are recalibrated)
        assert torch.equal(tensor, before[name]), f"{name} changed by a candidate's training"

    best = result.best
    assert best is not None
    done = nasprune.export("trained", workdir / "t.pt", trial=best.number,
                           storage=config["storage"])  # fmt: skip
    assert done.accuracy == pytest.approx(best.accuracy, abs=1e-6)
    alone = nasprune.load_subnet(workdir / "t.pt")
    assert accuracy_and_loss(alone, ctx.loaders.val)[0] == pytest.approx(best.accuracy)
    # The same architectures as inherited from the supernet score otherwise.
    inherited = {tuple(sorted(map(str, t.arch.items()))): t.accuracy for t in store.trials(
        store.get_search(untrained.name).search_id)}  # fmt: skip
    trained = {tuple(sorted(map(str, t.arch.items()))): t.accuracy for t in trials}
    shared = inherited.keys() & trained.keys()
    assert shared and any(inherited[k] != trained[k] for k in shared)


def test_unset_candidate_steps_are_50_from_trained_weights_and_200_from_random_ones(
    workdir: Path, make_config
) -> None:
    builtin = create_space("builtin.cnn")
    derived = create_space("derived", model="zoo:resnet", input_shape=[1, 1, 8, 8],
                           model_args={"in_channels": 1, "widths": [8, 16, 32]})  # fmt: skip
    config = make_config(workdir)
    del config["evaluation"]
    unset = SearchConfig.model_validate(config)
    assert unset.evaluation.finetune_steps is None
    assert candidate_steps(unset, builtin) == 200
    assert candidate_steps(unset, derived) == 50
    for steps in (0, 7):
        given = SearchConfig.model_validate(config | {"evaluation": {"finetune_steps": steps}})
        assert candidate_steps(given, builtin) == candidate_steps(given, derived) == steps
