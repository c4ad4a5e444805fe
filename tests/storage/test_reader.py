"""The read-only Reader answers as the Store does, on SQLite and PostgreSQL; a database that is
not at head is opened as a Store instead, which migrates it; bad URLs fail as a Store's do."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from storage import SCHEMA_VERSION, Reader, Store, StoreError, TrialState, get_reader

OLD_DATABASE = Path(__file__).parent / "data" / "nasprune-0001.sqlite3"  # written at revision 0001


def test_a_reader_of_a_database_at_head_answers_as_its_store(store: Store, store_url: str) -> None:
    search = store.create_search("s", {"k": 1}, "h", "derived", "random", 5, {})
    for number, accuracy in enumerate((0.5, 0.7, 0.6)):
        trial = store.create_trial(search.search_id, {"n": number}, f"a{number}", worker="w")
        metrics = {"accuracy": accuracy, "latency_ms": 1.0 + number}
        store.finish_trial(trial.trial_id, TrialState.COMPLETE, metrics)
    store.add_event(search.search_id, "reference", "{}")
    with get_reader(store_url) as reader:
        assert type(reader) is Reader
        assert reader.get_search("s") == store.get_search("s")
        assert reader.list_searches() == store.list_searches()
        assert reader.trials(search.search_id) == store.trials(search.search_id)
        best = reader.best_trial(search.search_id, max_latency_ms=2.5)
        assert best is not None and best.accuracy == 0.7
        objectives = [("accuracy", "maximize"), ("latency_ms", "minimize")]
        front = reader.pareto_front(search.search_id, objectives)
        assert [t.number for t in front] == [1, 0]
        assert reader.events(search.search_id) == store.events(search.search_id)
        assert reader.devices() == []


def test_a_reader_is_returned_as_is() -> None:
    with get_reader("sqlite://") as reader:
        assert get_reader(reader) is reader


def test_a_database_behind_head_is_opened_as_a_store_that_migrates_it(tmp_path: Path) -> None:
    copy = tmp_path / "old.sqlite3"
    shutil.copy(OLD_DATABASE, copy)
    with get_reader(f"sqlite:///{copy}") as reader:
        assert isinstance(reader, Store)
        assert reader.get_search("old-search").name == "old-search"
    with get_reader(f"sqlite:///{copy}") as reader:
        assert type(reader) is Reader
        with reader._connection() as connection:
            assert connection.exec_driver_sql("select * from alembic_version").all() == [
                (SCHEMA_VERSION,)
            ]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "cannot parse storage URL"),
        ("nosuchdb://host/name", "unknown database dialect 'nosuchdb'"),
        ("sqlite:////nonexistent-dir/x.db", "does not exist"),
    ],
)
def test_a_url_that_cannot_be_opened_fails_as_for_a_store(url: str, expected: str) -> None:
    with pytest.raises(StoreError) as caught:
        get_reader(url)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_a_file_that_is_not_a_database_fails_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(b"not a database" * 600)
    with pytest.raises(StoreError, match="not a database") as caught:
        get_reader(f"sqlite:///{path}")
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_trial_pages_sort_nulls_last_page_by_key_and_points_are_columns(store: Store) -> None:
    search = store.create_search("p", {"k": 1}, "h", "derived", "random", 10, {})
    for number in range(7):
        trial = store.create_trial(search.search_id, {"n": number}, f"a{number}", worker="w")
        if number == 4:
            store.finish_trial(trial.trial_id, TrialState.FAILED, error="boom")
        else:
            metrics = {"accuracy": 0.1 * (number % 3), "latency_ms": 1.0 + number}
            store.finish_trial(trial.trial_id, TrialState.COMPLETE, metrics)
    sid = search.search_id

    by_accuracy = store.trial_page(sid, order_by="accuracy", descending=True, limit=10)
    assert [t.number for t in by_accuracy] == [2, 5, 1, 0, 3, 6, 4]  # ties by number, null last
    assert [t.number for t in store.trial_page(sid, limit=2, offset=5)] == [5, 6]

    for descending, expected in ((False, list(range(7))), (True, list(range(6, -1, -1)))):
        seen: list[int] = []
        after = None
        while page := store.trial_page(sid, descending=descending, limit=3, after=after):
            seen += [t.number for t in page]
            after = page[-1].number
        assert seen == expected
    complete = store.trial_page(sid, [TrialState.COMPLETE], limit=10, after=3)
    assert [t.number for t in complete] == [5, 6]
    with pytest.raises(StoreError, match="number order"):
        store.trial_page(sid, order_by="accuracy", after=3)

    points = store.trial_points(sid, [TrialState.COMPLETE])
    assert [p[:2] for p in points] == [(n, "complete") for n in (0, 1, 2, 3, 5, 6)]
    assert points[1][2] == pytest.approx(0.1) and points[1][4] == pytest.approx(2.0)
    assert len(points[0]) == 8  # number, state and the six column metrics
