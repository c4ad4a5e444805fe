"""The strategies that read the trials' metrics and the limits (``rl``, ``uniform``,
``greedy``) drive a real search under a latency limit, and a search stopped and resumed asks
what the uninterrupted one asked: the metrics they learn come from the store."""

from __future__ import annotations

from pathlib import Path

import pytest

import nasprune
from storage import TrialRecord, TrialState, get_store

LARGEST = {"depth": 3, "width_1": 64, "width_2": 64, "width_3": 64}
# Below any network's latency: every trial breaks it, so the strategies are told no values
# and learn from what the trials measured.
LIMIT_MS = 1e-6


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("under-limits")


def search(shared: Path, make_config, name: str, strategy: str, budget: int) -> list[TrialRecord]:
    config = make_config(
        shared,
        name=name,
        constraints={"latency_ms": {"max": LIMIT_MS}},
        strategy={"name": strategy, "params": {}},
        budget={"trials": budget},
    )
    config["supernet"]["epochs"] = 1
    assert nasprune.run(config).completed == budget
    store = get_store(config["storage"])
    return store.trials(store.get_search(name).search_id)


def one_step_smaller(arch: dict, than: dict) -> bool:
    """Whether ``arch`` is ``than`` with one dimension one choice smaller, canonically (an
    MLP's widths past its depth are the smallest)."""
    widths = (16, 32, 64)
    moved = [k for k in than if arch[k] != than[k]]
    if arch["depth"] == than["depth"] - 1:
        unused = f"width_{than['depth']}"
        return set(moved) <= {"depth", unused} and arch[unused] == widths[0]
    return len(moved) == 1 and widths.index(arch[moved[0]]) == widths.index(than[moved[0]]) - 1


@pytest.mark.parametrize("strategy", ["rl", "uniform", "greedy"])
def test_a_search_under_a_latency_limit_resumes_as_it_would_have_gone_on(
    strategy: str, shared: Path, make_config
) -> None:
    straight = search(shared, make_config, f"{strategy}-straight", strategy, 6)
    assert all(t.state == TrialState.COMPLETE and t.latency_ms > LIMIT_MS for t in straight)
    search(shared, make_config, f"{strategy}-split", strategy, 3)
    nasprune.resume(f"{strategy}-split", trials=6, storage=f"sqlite:///{shared / 'store.db'}")
    store = get_store(f"sqlite:///{shared / 'store.db'}")
    split = store.trials(store.get_search(f"{strategy}-split").search_id)
    assert [t.arch_hash for t in split] == [t.arch_hash for t in straight]

    archs = [t.arch for t in straight]
    if strategy in ("uniform", "greedy"):
        assert archs[0] == LARGEST
    if strategy == "uniform":  # then the thinnest, at full depth
        assert archs[1] == {"depth": 3, "width_1": 16, "width_2": 16, "width_3": 16}
    if strategy == "greedy":  # then the largest's four smaller neighbours, then one step on
        assert all(one_step_smaller(a, LARGEST) for a in archs[1:5])
        assert any(one_step_smaller(archs[5], a) for a in archs[1:5])
        assert all((t.memo or {}).get("proposed") for t in straight)
