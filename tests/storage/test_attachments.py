"""Artifacts and fine-tuning runs, on SQLite and PostgreSQL; upgrading an old database file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from storage import SCHEMA_VERSION, Store, StoreError, TrialState

OLD_DATABASE = Path(__file__).parent / "data" / "nasprune-0001.sqlite3"  # written at revision 0001


def _search_and_trial(store: Store) -> tuple[int, int]:
    search = store.create_search("s", {}, "h", "derived", "random", 5, {})
    trial = store.create_trial(search.search_id, {"w": 1}, "a", worker="w")
    store.finish_trial(trial.trial_id, TrialState.COMPLETE, {"accuracy": 0.5})
    return search.search_id, trial.trial_id


def test_an_artifact_round_trips_and_the_first_writer_wins(store: Store) -> None:
    search_id, _ = _search_and_trial(store)
    assert store.get_artifact(search_id, "importance") is None
    first = store.put_artifact(search_id, "importance", {"scores": {"conv": [0.5, 1.5]}})
    again = store.put_artifact(search_id, "importance", {"scores": {"conv": [9.0, 9.0]}})
    assert again.content == first.content == {"scores": {"conv": [0.5, 1.5]}}
    assert store.get_artifact(search_id, "importance") == first
    with pytest.raises(StoreError, match="no search with id"):
        store.put_artifact(search_id + 10, "importance", {})


def test_a_finetune_run_is_updated_in_place_and_found_by_key_or_as_latest_complete(
    store: Store,
) -> None:
    _, trial_id = _search_and_trial(store)
    settings = {"steps": 10, "distill": True}
    running = store.put_finetune(
        trial_id, "k1", settings, steps_done=4, complete=False, path="/tmp/x.pt", sha256=None
    )
    assert not running.complete and store.get_finetune(trial_id) is None
    done = store.put_finetune(
        trial_id,
        "k1",
        settings,
        steps_done=10,
        complete=True,
        path="/tmp/x.pt",
        sha256="ab",
        accuracy=0.9,
        test_accuracy=0.88,
    )
    assert done.finetune_id == running.finetune_id and done.complete
    assert store.get_finetune(trial_id, "k1") == done == store.get_finetune(trial_id)
    assert (done.accuracy, done.test_accuracy, done.settings) == (0.9, 0.88, settings)
    with pytest.raises(StoreError, match="no trial"):
        store.put_finetune(
            trial_id + 99, "k", {}, steps_done=0, complete=False, path=None, sha256=None
        )


def test_a_database_written_at_revision_0001_upgrades_and_keeps_its_rows(tmp_path: Path) -> None:
    copy = tmp_path / "old.sqlite3"
    shutil.copy(OLD_DATABASE, copy)
    with Store(f"sqlite:///{copy}") as store:
        search = store.get_search("old-search")
        trials = store.trials(search.search_id)
        assert [t.accuracy for t in trials] == [0.5, 0.6, 0.7]
        # revision 0005's columns get their defaults in the old rows
        assert [(t.attempts, t.lease_expires_at, t.memo) for t in trials] == [(1, None, None)] * 3
        assert store.finished_trials(search.search_id) == trials
        assert store.events(search.search_id)[0].kind == "reference"
        store.put_artifact(search.search_id, "importance", {"ok": True})
        assert store.acquire_lock(search.search_id, "supernet", "w", lease_s=60) is True
        added = store.create_trial(search.search_id, {}, "h", "w", memo={"m": 1}, lease_s=60)
        assert added.number == 3 and added.memo == {"m": 1} and added.attempts == 1
    import sqlite3

    connection = sqlite3.connect(copy)
    try:
        assert connection.execute("select version_num from alembic_version").fetchall() == [
            (SCHEMA_VERSION,)
        ]
    finally:
        connection.close()
