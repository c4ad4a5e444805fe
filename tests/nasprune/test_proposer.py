"""The proposer: new networks only, a seeded fallback when the strategy repeats itself, and a
replay of stored trials that continues exactly as the uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasprune.proposer import Candidate, Exhausted, Proposer
from search_spaces import arch_hash, create_space
from storage import Store, TrialState
from strategies import Strategy, create_strategy

SPACE = {"max_depth": 2, "widths": [16, 32, 64]}  # 1 + 3 (depth 1) ... 3 + 9 = 12 networks


def objective(arch: dict) -> list[float]:
    return [float(arch["depth"] * 100 + arch["width_1"] + arch["width_2"] / 10)]


def drive(proposer: Proposer, steps: int, store: Store, search_id: int) -> list[Candidate]:
    """Run the loop's protocol for ``steps`` candidates, storing each as a complete trial."""
    seen = []
    for _ in range(steps):
        candidate = proposer.next()
        trial = store.create_trial(search_id, candidate.arch, candidate.key, "test")
        store.finish_trial(
            trial.trial_id, TrialState.COMPLETE, {"accuracy": objective(candidate.arch)[0]}
        )
        proposer.inform(candidate, objective(candidate.arch))
        seen.append(candidate)
    return seen


def fresh(name: str = "optuna.tpe", seed: int = 0) -> Proposer:
    space = create_space("builtin.mlp", **SPACE)
    strategy = create_strategy(name, space.dimensions(), ["maximize"], seed, n_startup_trials=3)
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
        proposer.next()


class Stubborn(Strategy):
    """Always proposes the largest network; records what it observes."""

    name = "stubborn"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.observed: list[dict] = []

    def ask(self) -> dict:
        return {d.name: d.largest for d in self.dimensions}

    def tell(self, arch: dict, values) -> None:
        pass

    def observe(self, arch: dict, values) -> None:
        self.observed.append(arch)


def test_a_strategy_that_repeats_itself_gets_seeded_unseen_networks_to_observe(
    tmp_path: Path,
) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    space = create_space("builtin.mlp", **SPACE)
    runs = []
    for name in ("first", "second"):
        strategy = Stubborn(space.dimensions(), ["maximize"], 0)
        seen = drive(Proposer(strategy, space, 0), 12, store, new_search(store, name))
        assert seen[0].proposed and not any(c.proposed for c in seen[1:])
        assert strategy.observed == [c.arch for c in seen[1:]]
        runs.append([c.key for c in seen])
    assert len(set(runs[0])) == 12
    assert runs[0] == runs[1], "the fallback is seeded, so replay can follow it"


def test_replay_of_a_prefix_continues_like_the_uninterrupted_run(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    straight = [c.key for c in drive(fresh(), 12, store, new_search(store, "straight"))]

    resumed_id = new_search(store, "resumed")
    drive(fresh(), 7, store, resumed_id)
    proposer = fresh()
    pending = proposer.replay(
        store.trials(resumed_id),
        told=lambda t: [t.accuracy],
        diverged=lambda t: pytest.fail(f"replay diverged at trial {t.number}"),
    )
    assert pending is None
    rest = [c.key for c in drive(proposer, 5, store, resumed_id)]
    assert [t.arch_hash for t in store.trials(resumed_id)][:7] + rest == straight


def test_replay_returns_the_interrupted_candidate_to_retry_first(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    search_id = new_search(store, "killed")
    drive(fresh(), 3, store, search_id)
    proposer = fresh()
    proposer.replay(store.trials(search_id), lambda t: [t.accuracy], lambda t: None)
    next_one = proposer.next()
    trial = store.create_trial(search_id, next_one.arch, next_one.key, "dead")
    store.fail_running_trials(search_id, "interrupted: killed")

    replayer = fresh()
    pending = replayer.replay(store.trials(search_id), lambda t: [t.accuracy], lambda t: None)
    assert pending is not None and pending.arch == trial.arch
    assert arch_hash(pending.arch) == trial.arch_hash
