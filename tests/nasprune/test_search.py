"""A real small search end to end through the Python API: run, best, pareto, export, reload."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import nasprune
from nasprune.errors import SearchError
from nasprune.evaluation.data import digits
from nasprune.evaluation.metrics import accuracy_and_loss
from storage import TrialState, get_store


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, make_config) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("search")
    config = make_config(tmp, budget={"trials": 8})
    config["constraints"] = {"params": {"max": 4000}}
    result = nasprune.run(config)
    assert result.completed == 8
    return tmp, config


def test_search_completes_exactly_its_budget_with_every_metric_stored(finished) -> None:
    tmp, config = finished
    store = get_store(config["storage"])
    search = store.get_search("tiny")
    complete = store.trials(search.search_id, [TrialState.COMPLETE])
    assert len(complete) == 8
    for trial in complete:
        assert 0.0 < trial.accuracy <= 1.0
        assert trial.latency_ms > 0 and trial.latency_p90_ms >= trial.latency_ms
        assert trial.params <= 4000 and trial.macs > 0
    assert len({t.arch_hash for t in complete}) == 8, "an architecture was evaluated twice"
    assert search.versions["torch"] and search.config_hash


def test_candidates_over_the_params_limit_are_screened_not_evaluated(finished) -> None:
    tmp, config = finished
    store = get_store(config["storage"])
    search = store.get_search("tiny")
    infeasible = store.trials(search.search_id, [TrialState.INFEASIBLE])
    assert infeasible, "the params limit screens some candidates of this space"
    for trial in infeasible:
        assert trial.params > 4000
        assert trial.accuracy is None and trial.latency_ms is None


def test_trained_supernet_is_reused_by_a_second_search_on_the_same_space(finished) -> None:
    tmp, config = finished
    again = nasprune.run({**config, "name": "tiny-again", "budget": {"trials": 1}})
    assert again.reused_supernet


def test_best_respects_the_latency_limit_and_is_the_most_accurate(finished) -> None:
    tmp, config = finished
    store = get_store(config["storage"])
    complete = store.trials(store.get_search("tiny").search_id, [TrialState.COMPLETE])
    limit = sorted(t.latency_ms for t in complete)[len(complete) // 2]
    best = nasprune.best("tiny", max_latency_ms=limit, storage=config["storage"])
    assert best is not None and best.latency_ms <= limit
    assert best.accuracy == max(t.accuracy for t in complete if t.latency_ms <= limit)
    assert nasprune.best("tiny", max_latency_ms=1e-9, storage=config["storage"]) is None


def test_pareto_front_trades_accuracy_against_latency(finished) -> None:
    tmp, config = finished
    front = nasprune.pareto("tiny", storage=config["storage"])
    assert front
    for a in front:
        for b in front:
            assert not (b.accuracy > a.accuracy and b.latency_ms < a.latency_ms)


def test_exported_subnet_reloads_without_the_supernet_and_keeps_its_accuracy(finished) -> None:
    tmp, config = finished
    best = nasprune.best("tiny", storage=config["storage"])
    assert best is not None
    path = tmp / "small.pt"
    done = nasprune.export("tiny", path, trial=best.number, storage=config["storage"])
    assert done.accuracy == pytest.approx(best.accuracy, abs=1e-9)
    model = nasprune.load_subnet(path)
    assert sum(p.numel() for p in model.parameters()) == best.params
    _, val, _ = digits((64,))
    loader = torch.utils.data.DataLoader(val, batch_size=64)
    accuracy, _ = accuracy_and_loss(model, loader)
    assert accuracy == pytest.approx(best.accuracy, abs=1e-9)


def test_running_a_config_whose_name_exists_is_refused(finished) -> None:
    tmp, config = finished
    with pytest.raises(SearchError, match="already exists"):
        nasprune.run(config)


def test_same_config_and_seed_ask_the_same_architectures(workdir: Path, make_config) -> None:
    sequences = []
    for name, seed in (("first", 0), ("second", 0), ("other-seed", 1)):
        config = make_config(workdir, name=name, seed=seed, budget={"trials": 5})
        nasprune.run(config)
        store = get_store(config["storage"])
        sequences.append([t.arch_hash for t in store.trials(store.get_search(name).search_id)])
    assert sequences[0] == sequences[1]
    assert sequences[0] != sequences[2], "the seed decides the sequence"


@pytest.mark.postgres
def test_a_search_runs_and_answers_queries_on_postgresql(
    workdir: Path, make_config, postgresql_url: str
) -> None:
    config = make_config(workdir, budget={"trials": 4})
    config["storage"] = postgresql_url
    result = nasprune.run(config)
    assert result.completed == 4
    best = nasprune.best("tiny", max_latency_ms=1000.0, storage=postgresql_url)
    assert best is not None and best.accuracy == max(
        t.accuracy for t in nasprune.pareto("tiny", storage=postgresql_url)
    )
    assert nasprune.resume("tiny", storage=postgresql_url).new_trials == 0


def test_a_user_data_entry_point_feeds_the_search(
    workdir: Path, make_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "userdata.py").write_text(
        "import torch\n"
        "from torch.utils.data import TensorDataset\n"
        "def loaders(n=300):\n"
        "    g = torch.Generator().manual_seed(0)\n"
        "    y = torch.randint(10, (n,), generator=g)\n"
        "    noise = 0.1 * torch.randn(n, 64, generator=g)\n"
        "    x = torch.nn.functional.one_hot(y, 64).float() + noise\n"
        "    return TensorDataset(x[:200], y[:200]), TensorDataset(x[200:], y[200:])\n"
    )
    monkeypatch.syspath_prepend(str(workdir))
    config = make_config(workdir, budget={"trials": 3})
    config["data"] = {"entry_point": "userdata:loaders", "params": {"n": 300}, "batch_size": 32}
    result = nasprune.run(config)
    assert result.completed == 3
    assert result.best is not None and result.best.accuracy > 0.5  # one-hot classes are easy
