"""The proposer: new networks only, a seeded fallback when the strategy repeats itself, and a
strategy rebuilt from the stored trials in one pass that continues as the uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasprune.search.proposer import Candidate, Exhausted, Proposer
from search_spaces import create_space
from storage import Store, TrialState
from strategies import Strategy, create_strategy
from strategies.base import Result

SPACE = {"max_depth": 2, "widths": [16, 32, 64]}  # 1 + 3 (depth 1) ... 3 + 9 = 12 networks


def objective(arch: dict) -> list[float]:
    return [float(arch["depth"] * 100 + arch["width_1"] + arch["width_2"] / 10)]


def told(trial) -> list[float]:
    return [trial.accuracy]


def drive(proposer: Proposer, steps: int, store: Store, search_id: int) -> list[Candidate]:
    """Run the loop's protocol for ``steps`` candidates, storing each as a complete trial."""
    seen = []
    for _ in range(steps):
        candidate = proposer.next(store.count_trials(search_id))
        trial = store.create_trial(
            search_id, candidate.arch, candidate.key, "test", memo=candidate.memo
        )
        finished = store.finish_trial(
            trial.trial_id, TrialState.COMPLETE, {"accuracy": objective(candidate.arch)[0]}
        )
        proposer.add([finished], told)
        seen.append(candidate)
    return seen


def fresh(name: str = "optuna.tpe", seed: int = 0) -> Proposer:
    space = create_space("builtin.mlp", **SPACE)
    params = {"n_startup_trials": 3} if name == "optuna.tpe" else {}
    strategy = create_strategy(name, space.dimensions(), ["maximize"], seed, **params)
    return Proposer(strategy, space, seed)


def new_search(store: Store, name: str) -> int:
    return store.create_search(name, {}, "h", "builtin.mlp", "optuna.tpe", 12, {}).search_id


def test_every_network_is_evaluated_once_then_the_space_is_exhausted(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    proposer = fresh()
    seen = drive(proposer, 12, store, new_search(store, "a"))
    assert len({c.key for c in seen}) == 12
    for c in seen:  # widths past the depth are canonical (smallest), so one network, one hash
        if c.arch["depth"] == 1:
            assert c.arch["width_2"] == 16
    with pytest.raises(Exhausted):
        proposer.next(12)


class Stubborn(Strategy):
    """Always proposes the largest network; records what it is given."""

    name = "stubborn"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.given: list[tuple[dict, bool]] = []

    def ask(self, seed: int) -> dict:
        return {d.name: d.largest for d in self.dimensions}

    def add(self, results) -> None:
        self.given.extend((r.arch, r.proposed) for r in results)


def test_a_strategy_that_repeats_itself_gets_seeded_unseen_networks(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    space = create_space("builtin.mlp", **SPACE)
    runs = []
    for name in ("first", "second"):
        strategy = Stubborn(space.dimensions(), ["maximize"], 0)
        seen = drive(Proposer(strategy, space, 0), 12, store, new_search(store, name))
        assert seen[0].proposed and not any(c.proposed for c in seen[1:])
        assert strategy.given == [(c.arch, c.proposed) for c in seen]
        runs.append([c.key for c in seen])
    assert len(set(runs[0])) == 12
    assert runs[0] == runs[1], "the fallback is seeded, so a rebuilt search follows it"


@pytest.mark.parametrize("name", ["optuna.tpe", "optuna.nsga2", "nni.regularized_evolution"])
def test_a_rebuild_from_a_prefix_continues_like_the_uninterrupted_run(
    tmp_path: Path, name: str
) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    straight = [c.key for c in drive(fresh(name), 12, store, new_search(store, "straight"))]

    resumed_id = new_search(store, "resumed")
    drive(fresh(name), 7, store, resumed_id)
    proposer = fresh(name)
    assert proposer.add(store.trials(resumed_id), told) == 7
    rest = [c.key for c in drive(proposer, 5, store, resumed_id)]
    assert [t.arch_hash for t in store.trials(resumed_id)][:7] + rest == straight


def test_networks_other_workers_run_are_not_proposed(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    search_id = new_search(store, "busy")
    drive(fresh(), 3, store, search_id)
    first = fresh()
    first.add(store.trials(search_id), told)
    taken = first.next(3)
    second = fresh()
    second.add(store.trials(search_id), told)
    assert second.next(3).key == taken.key, "same history, same seed, same proposal"
    assert second.next(3, busy={taken.key}).key != taken.key


def test_a_trial_interrupted_before_leases_is_not_learnt(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    search_id = new_search(store, "killed")
    drive(fresh(), 3, store, search_id)
    candidate = fresh().next(3)
    store.create_trial(search_id, candidate.arch, candidate.key, "dead")
    store.fail_running_trials(search_id, "interrupted: killed")
    proposer = fresh()
    assert proposer.add(store.trials(search_id), told) == 3
    assert candidate.key not in proposer.known


class Recorder(Stubborn):
    """Keeps the results it is given."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.results: list[Result] = []

    def add(self, results) -> None:
        self.results.extend(results)


def test_the_strategy_learns_what_each_trial_measured_from_the_store(tmp_path: Path) -> None:
    """Its metrics (columns and extra ones), whatever the objectives; text is left out."""
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    search_id = new_search(store, "measured")
    space = create_space("builtin.mlp", **SPACE)
    strategy = Recorder(space.dimensions(), ["maximize"], 0)
    proposer = Proposer(strategy, space, 0)
    candidate = proposer.next(0)
    trial = store.create_trial(search_id, candidate.arch, candidate.key, "test")
    measured = {"accuracy": 0.5, "latency_ms": 3.0, "params": 1200, "latency_drift": 1.1}
    store.finish_trial(trial.trial_id, TrialState.COMPLETE, measured | {"violated": "latency_ms"})
    proposer.add(store.trials(search_id), lambda t: None)  # over the limit: no values
    (result,) = strategy.results
    assert result.values is None
    assert result.metrics == measured
    assert isinstance(result.metrics["params"], float)
