"""The store conformance suite: every test runs against SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
from datetime import UTC

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from storage import (
    SCHEMA_VERSION,
    DuplicateSearchError,
    SearchNotFoundError,
    SearchStatus,
    Store,
    StoreError,
    TrialState,
    get_store,
)
from storage.models import Base

COMPLETE = TrialState.COMPLETE


def _search(store: Store, name: str = "s1") -> int:
    record = store.create_search(
        name,
        config={"space": {"name": "builtin.resnet"}, "budget": 10},
        config_hash="cfg-hash",
        space="builtin.resnet",
        strategy="random",
        budget_trials=10,
        versions={"nasprune": "0.1.0", "torch": "2.4"},
    )
    return record.search_id


def _complete(store: Store, search_id: int, arch_hash: str = "h", **metrics: float) -> int:
    trial = store.create_trial(search_id, {"width": 1}, arch_hash, worker="w")
    store.finish_trial(trial.trial_id, COMPLETE, metrics)
    return trial.number


def test_create_and_get_search_round_trips_every_field(store: Store) -> None:
    created = store.create_search(
        "exp", {"a": [1, 2], "b": {"c": None}}, "hash", "space", "nni.random", 50, {"x": "1"}
    )
    fetched = store.get_search("exp")
    assert fetched == created
    assert fetched.config == {"a": [1, 2], "b": {"c": None}}
    assert fetched.versions == {"x": "1"}
    assert (fetched.space, fetched.strategy, fetched.budget_trials) == ("space", "nni.random", 50)
    assert fetched.status is SearchStatus.CREATED
    assert fetched.created_at.tzinfo is UTC and fetched.finished_at is None
    assert [s.name for s in store.list_searches()] == ["exp"]


def test_duplicate_search_name_raises_duplicate_search_error(store: Store) -> None:
    _search(store, "same")
    with pytest.raises(DuplicateSearchError, match="'same' already exists"):
        _search(store, "same")


def test_unknown_search_name_message_lists_known_names(store: Store) -> None:
    _search(store, "alpha")
    _search(store, "beta")
    with pytest.raises(SearchNotFoundError) as caught:
        store.get_search("gamma")
    message = str(caught.value)
    assert "no search named 'gamma'" in message and "known: alpha, beta" in message
    assert "\n" not in message


def test_set_search_status_sets_finished_at_only_when_finished(store: Store) -> None:
    search_id = _search(store)
    store.set_search_status(search_id, SearchStatus.RUNNING)
    assert store.get_search("s1").finished_at is None
    store.set_search_status(search_id, SearchStatus.COMPLETED)
    done = store.get_search("s1")
    assert done.status is SearchStatus.COMPLETED and done.finished_at is not None


def test_set_budget_changes_the_budget_and_leaves_the_config_and_its_hash(store: Store) -> None:
    search_id = _search(store)
    before = store.get_search("s1")
    raised = store.set_budget(search_id, 25)
    assert raised.budget_trials == 25 and store.get_search("s1") == raised
    assert (raised.config, raised.config_hash) == (before.config, before.config_hash)
    assert raised.updated_at >= before.updated_at
    with pytest.raises(StoreError, match="at least one trial"):
        store.set_budget(search_id, 0)
    with pytest.raises(StoreError, match="no search with id 999"):
        store.set_budget(999, 5)
    assert store.get_search("s1").budget_trials == 25


def test_trial_numbering_is_consecutive_and_unique_per_search(store: Store) -> None:
    first, second = _search(store, "a"), _search(store, "b")
    numbers = [store.create_trial(first, {"i": i}, f"h{i}", "w").number for i in range(5)]
    other = store.create_trial(second, {}, "h", "w")
    assert numbers == [0, 1, 2, 3, 4] and other.number == 0
    trials = store.trials(first)
    assert [t.number for t in trials] == numbers
    assert trials[2].arch == {"i": 2} and trials[2].state is TrialState.RUNNING


@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "store-per-thread"])
def test_concurrent_create_trial_from_two_threads_yields_unique_consecutive_numbers(
    store: Store, store_url: str, shared: bool
) -> None:
    search_id = _search(store)
    per_thread, numbers, errors = 15, [], []

    def work() -> None:
        mine = store if shared else Store(store_url)
        try:
            for _ in range(per_thread):
                numbers.append(mine.create_trial(search_id, {}, "h", "w").number)
        except Exception as exc:  # surfaced by the assert below
            errors.append(exc)
        finally:
            if not shared:
                mine.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(numbers) == list(range(2 * per_thread))
    assert store.count_trials(search_id) == 2 * per_thread


def test_finish_trial_stores_column_and_extra_metrics(store: Store) -> None:
    search_id = _search(store)
    trial = store.create_trial(search_id, {"w": 2}, "h", "worker-1")
    metrics = {"accuracy": 0.91, "latency_ms": 2.5, "params": 1_234_567_890_123, "violation": 0.2}
    done = store.finish_trial(trial.trial_id, COMPLETE, metrics)
    assert done.state is COMPLETE and done.accuracy == pytest.approx(0.91)
    assert done.latency_ms == pytest.approx(2.5) and done.params == 1_234_567_890_123
    assert done.loss is None and done.metrics == {"violation": 0.2}
    assert done.finished_at is not None and done.duration_s is not None and done.duration_s >= 0
    assert store.trials(search_id)[0] == done
    assert done.all_metrics()["violation"] == 0.2


def test_finish_trial_twice_or_with_running_state_raises_store_error(store: Store) -> None:
    trial = store.create_trial(_search(store), {}, "h", "w")
    with pytest.raises(StoreError, match="finished state"):
        store.finish_trial(trial.trial_id, TrialState.RUNNING)
    store.finish_trial(trial.trial_id, TrialState.FAILED, error="boom")
    with pytest.raises(StoreError, match="already failed"):
        store.finish_trial(trial.trial_id, COMPLETE, {"accuracy": 1.0})


def test_heartbeat_moves_heartbeat_at(store: Store) -> None:
    trial = store.create_trial(_search(store), {}, "h", "w")
    store.heartbeat(trial.trial_id)
    beaten = store.trials(trial.search_id)[0]
    assert beaten.heartbeat_at is not None and beaten.heartbeat_at >= trial.started_at


def test_fail_running_trials_fails_only_running_ones_and_counts_them(store: Store) -> None:
    search_id = _search(store)
    _complete(store, search_id, accuracy=0.5)
    for _ in range(3):
        store.create_trial(search_id, {}, "h", "w")
    assert store.fail_running_trials(search_id, "resumed after a crash") == 3
    assert store.count_trials(search_id, [TrialState.RUNNING]) == 0
    failed = store.trials(search_id, [TrialState.FAILED])
    assert [t.number for t in failed] == [1, 2, 3]
    assert all(t.error == "resumed after a crash" and t.finished_at for t in failed)
    assert store.count_trials(search_id, [COMPLETE]) == 1
    assert store.fail_running_trials(search_id, "again") == 0


def test_completed_by_hash_finds_first_complete_trial_with_that_hash(store: Store) -> None:
    search_id = _search(store)
    failed = store.create_trial(search_id, {}, "dup", "w")
    store.finish_trial(failed.trial_id, TrialState.FAILED)
    first = _complete(store, search_id, "dup", accuracy=0.1)
    _complete(store, search_id, "dup", accuracy=0.2)
    found = store.completed_by_hash(search_id, "dup")
    assert found is not None and found.number == first
    assert store.completed_by_hash(search_id, "absent") is None


def test_best_trial_respects_each_limit(store: Store) -> None:
    search_id = _search(store)
    _complete(store, search_id, accuracy=0.95, latency_ms=9.0, params=100, macs=100)
    _complete(store, search_id, accuracy=0.90, latency_ms=2.0, params=900, macs=100)
    _complete(store, search_id, accuracy=0.85, latency_ms=5.0, params=100, macs=900)
    _complete(store, search_id, accuracy=0.80, latency_ms=1.0, params=100, macs=100)
    _complete(store, search_id, accuracy=0.99)  # nothing measured: fails every limit
    running = store.create_trial(search_id, {}, "h", "w")
    assert running.number == 5

    def best(**limits: float) -> int | None:
        trial = store.best_trial(search_id, **limits)  # type: ignore[arg-type]
        return None if trial is None else trial.number

    assert best() == 4
    assert best(max_latency_ms=3.0) == 1
    assert best(max_params=500) == 0
    assert best(max_macs=500) == 0
    assert best(max_params=50) is None
    assert best(max_latency_ms=6.0, max_params=500) == 2
    assert best(max_latency_ms=6.0, max_params=500, max_macs=500) == 3
    assert best(max_latency_ms=0.5) is None


def test_best_trial_orders_by_metric_then_latency_then_number(store: Store) -> None:
    search_id = _search(store)
    _complete(store, search_id, accuracy=0.9, loss=0.3, latency_ms=3.0)
    _complete(store, search_id, accuracy=0.9, loss=0.2, latency_ms=1.0)
    _complete(store, search_id, accuracy=0.9, loss=0.2, latency_ms=1.0)
    _complete(store, search_id, accuracy=0.5, loss=0.1)
    by_accuracy = store.best_trial(search_id)
    by_loss = store.best_trial(search_id, "loss", "minimize")
    assert by_accuracy is not None and by_accuracy.number == 1
    assert by_loss is not None and by_loss.number == 3
    assert store.best_trial(_search(store, "empty")) is None


def test_best_trial_rejects_unknown_metric_and_direction(store: Store) -> None:
    search_id = _search(store)
    with pytest.raises(StoreError, match="accuracy, loss, latency_ms"):
        store.best_trial(search_id, "violation")
    with pytest.raises(StoreError, match="maximize"):
        store.best_trial(search_id, "accuracy", "up")


def _brute_force_front(points: dict[int, tuple[float, ...]], signs: tuple[int, ...]) -> set[int]:
    def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        pairs = [(s * x, s * y) for s, x, y in zip(signs, a, b, strict=True)]
        return all(x >= y for x, y in pairs) and any(x > y for x, y in pairs)

    return {n for n, p in points.items() if not any(dominates(q, p) for q in points.values())}


def test_pareto_front_returns_exactly_the_non_dominated_trials(store: Store) -> None:
    search_id = _search(store)
    rng = random.Random(7)
    points: dict[int, tuple[float, ...]] = {}
    for _ in range(30):
        # a coarse grid makes ties, which must not dominate each other
        accuracy, latency, params = rng.randint(0, 8) / 8, rng.randint(1, 8), rng.randint(1, 8)
        trial = store.create_trial(search_id, {}, "h", "w")
        kind = rng.random()
        if kind < 0.15:
            store.finish_trial(trial.trial_id, TrialState.FAILED, {"accuracy": 1.0})
        elif kind < 0.25:
            store.finish_trial(trial.trial_id, COMPLETE, {"accuracy": accuracy})  # nulls
        else:
            store.finish_trial(
                trial.trial_id,
                COMPLETE,
                {"accuracy": accuracy, "latency_ms": latency, "params": params},
            )
            points[trial.number] = (accuracy, latency, params)
    store.create_trial(search_id, {}, "h", "w")  # running: never on the front
    objectives = [("accuracy", "maximize"), ("latency_ms", "minimize"), ("params", "minimize")]
    front = store.pareto_front(search_id, objectives)
    assert {t.number for t in front} == _brute_force_front(points, (1, -1, -1))
    assert len(front) >= 2
    accuracies = [t.accuracy or 0.0 for t in front]
    assert accuracies == sorted(accuracies, reverse=True)
    two = store.pareto_front(search_id, objectives[:2])
    two_points = {n: p[:2] for n, p in points.items()}
    assert {t.number for t in two} == _brute_force_front(two_points, (1, -1))


def test_pareto_front_rejects_non_column_metrics(store: Store) -> None:
    with pytest.raises(StoreError, match="not a column metric"):
        store.pareto_front(_search(store), [("violation", "minimize")])
    with pytest.raises(StoreError, match="at least one"):
        store.pareto_front(1, [])


def test_latency_cache_round_trips_and_put_is_idempotent(store: Store) -> None:
    key = ("cpu:x86:avx2", "arch-1", 1, (1, 3, 224, 224), 4)
    assert store.get_latency(*key) is None
    first = store.put_latency(*key, median_ms=3.2, p90_ms=3.9, repeats=30)
    again = store.put_latency(*key, median_ms=3.2, p90_ms=3.9, repeats=30)
    fetched = store.get_latency("cpu:x86:avx2", "arch-1", 1, [1, 3, 224, 224], 4)
    assert fetched is not None and fetched.measurement_id == first.measurement_id
    assert again.measurement_id == first.measurement_id
    assert fetched.input_shape == (1, 3, 224, 224) and fetched.median_ms == pytest.approx(3.2)
    assert store.get_latency("cpu:x86:avx2", "arch-1", 1, (1, 3, 224, 224), 8) is None
    remeasured = store.put_latency(*key, median_ms=3.0, p90_ms=3.5, repeats=50)
    assert remeasured.measurement_id == first.measurement_id and remeasured.repeats == 50


def test_checkpoint_put_replaces_the_row_of_an_existing_key(store: Store) -> None:
    assert store.get_checkpoint("k1") is None
    first = store.put_checkpoint("k1", "builtin.resnet", "/ckpt/a.pt", "a" * 64)
    second = store.put_checkpoint("k1", "builtin.resnet", "/ckpt/b.pt", "b" * 64)
    fetched = store.get_checkpoint("k1")
    assert fetched == second and second.checkpoint_id == first.checkpoint_id
    assert fetched.path == "/ckpt/b.pt" and fetched.sha256 == "b" * 64


def test_events_are_appended_in_order(store: Store) -> None:
    search_id = _search(store)
    store.add_event(search_id, "started", "worker w1")
    store.add_event(search_id, "resumed", "2 running trials failed")
    assert [(e.kind, e.message) for e in store.events(search_id)] == [
        ("started", "worker w1"),
        ("resumed", "2 running trials failed"),
    ]
    with pytest.raises(StoreError, match="no search with id"):
        store.add_event(search_id + 100, "x", "y")


def test_reopening_the_database_keeps_data_and_migrations_are_idempotent(
    store: Store, store_url: str
) -> None:
    search_id = _search(store)
    _complete(store, search_id, accuracy=0.7)
    store.close()
    for _ in range(2):
        with Store(store_url) as reopened:
            assert reopened.get_search("s1").search_id == search_id
            assert reopened.count_trials(search_id, [COMPLETE]) == 1


def test_migrated_schema_matches_the_models_at_head_revision(store: Store, store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            assert context.get_current_revision() == SCHEMA_VERSION
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_get_store_resolves_a_url_or_returns_the_instance(store: Store, store_url: str) -> None:
    assert get_store(store) is store
    resolved = get_store(store_url)
    try:
        assert isinstance(resolved, Store) and resolved.url == store_url
    finally:
        resolved.close()
