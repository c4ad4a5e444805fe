"""Every registered strategy drives a real search to its budget, and a resume replays its
history without divergence (the strategy asks the same architectures again)."""

from __future__ import annotations

from pathlib import Path

import pytest

import nasprune
from storage import TrialState, get_store
from strategies import list_strategies


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("every-strategy")


@pytest.mark.parametrize("name", sorted(list_strategies()))
def test_strategy_runs_a_search_and_replays_it_without_divergence(
    name: str, shared: Path, make_config
) -> None:
    config = make_config(
        shared,
        name=f"s-{name}",
        objectives=[
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "params", "direction": "minimize"},
        ],
        strategy={"name": name, "params": {}},
        budget={"trials": 5},
    )
    config["supernet"]["epochs"] = 1
    result = nasprune.run(config)
    assert result.completed == 5
    store = get_store(config["storage"])
    search = store.get_search(config["name"])
    complete = store.trials(search.search_id, [TrialState.COMPLETE])
    assert len({t.arch_hash for t in complete}) == 5

    again = nasprune.resume(config["name"], storage=config["storage"])
    assert again.new_trials == 0
    assert [e.message for e in store.events(search.search_id) if e.kind == "replay"] == []
