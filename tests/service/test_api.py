"""The HTTP API without workers: launching, reading, paging, changing a search; auth and
read-only mode; the allow-list of a posted config; errors are 4xx naming the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_helpers import AUTH, http_config


def launch(client: TestClient, tmp_path: Path, **overrides: object) -> dict:
    response = client.post("/searches", json=http_config(tmp_path, **overrides), headers=AUTH)
    assert response.status_code == 201, response.text
    return response.json()


def test_launch_writes_the_row_and_runs_nothing(client: TestClient, tmp_path: Path) -> None:
    created = launch(client, tmp_path)
    assert created["name"] == "tiny" and created["status"] == "created"
    assert created["budget"] == 4 and created["complete"] == 0
    assert created["config"]["strategy"]["name"] == "random"
    again = client.post("/searches", json=http_config(tmp_path), headers=AUTH)
    assert again.status_code == 409 and "name" in again.json()["detail"]


def test_searches_are_paged_and_the_page_size_is_limited(
    client: TestClient, tmp_path: Path
) -> None:
    for i in range(3):
        launch(client, tmp_path, name=f"s{i}")
    page = client.get("/searches", params={"limit": 2, "offset": 1}).json()
    assert [s["name"] for s in page["items"]] == ["s1", "s2"] and page["total"] == 3
    too_many = client.get("/searches", params={"limit": 101})
    assert too_many.status_code == 400 and "limit" in too_many.json()["detail"]


def test_an_unknown_search_is_404(client: TestClient) -> None:
    for path in ("/searches/nope", "/searches/nope/trials", "/searches/nope/best",
                 "/searches/nope/pareto", "/searches/nope/progress", "/searches/nope/events",
                 "/searches/nope/trials/0", "/compare?names=nope"):  # fmt: skip
        response = client.get(path)
        assert response.status_code == 404, path
        assert "nope" in response.json()["detail"]


def test_a_bad_body_is_4xx_naming_the_field(client: TestClient, tmp_path: Path) -> None:
    wrong_type = client.post("/searches", json={"name": 3}, headers=AUTH)
    assert wrong_type.status_code == 422
    assert wrong_type.json()["detail"][0]["loc"] == ["body", "name"]
    not_json = client.post(
        "/searches", content=b"{", headers={**AUTH, "content-type": "application/json"}
    )
    assert not_json.status_code == 422
    bad_space = http_config(tmp_path, space={"name": "builtin.mlp", "params": {"bogus": 1}})
    response = client.post("/searches", json=bad_space, headers=AUTH)
    assert response.status_code == 400 and "space.params" in response.json()["detail"]
    bad_strategy = http_config(tmp_path, strategy={"name": "random", "params": {"nope": 1}})
    response = client.post("/searches", json=bad_strategy, headers=AUTH)
    assert response.status_code == 400 and "nope" in response.json()["detail"]
    budget = client.patch("/searches/tiny", json={"budget_trials": 0}, headers=AUTH)
    assert budget.status_code == 422  # the body is checked before the search is looked up
    assert budget.json()["detail"][0]["loc"] == ["body", "budget_trials"]
    # An integer the store's columns cannot hold is the request's mistake, not a 500 (found by
    # the OpenAPI fuzzer: a budget of 6.8e21 trials overflowed SQLite's INTEGER).
    huge = http_config(tmp_path, budget={"trials": 6847273259926758096896})
    response = client.post("/searches", json=huge, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "budget", "trials"]
    budget = client.patch("/searches/tiny", json={"budget_trials": 2**31}, headers=AUTH)
    assert budget.status_code == 422


def test_a_config_may_name_only_what_the_server_allows(client: TestClient, tmp_path: Path) -> None:
    refused = {
        "data.entry_point": http_config(tmp_path, data={"entry_point": "os:system"}),
        "space.params.model": http_config(
            tmp_path, space={"name": "derived", "params": {"model": "os:system"}}
        ),
        "space.name": http_config(tmp_path, space={"name": "derived", "params": {}}),
        "storage": http_config(tmp_path, storage="sqlite:////tmp/elsewhere.db"),
        "supernet.checkpoint_dir": http_config(
            tmp_path, supernet={"epochs": 1, "checkpoint_dir": "../../etc"}
        ),
    }
    for field, config in refused.items():
        response = client.post("/searches", json=config, headers=AUTH)
        assert response.status_code == 400, (field, response.text)
        assert field in response.json()["detail"]
    assert client.get("/searches").json()["total"] == 0


def test_mutations_need_the_token(client: TestClient, tmp_path: Path) -> None:
    config = http_config(tmp_path)
    assert client.post("/searches", json=config).status_code == 401
    wrong = {"Authorization": "Bearer not-it"}
    assert client.post("/searches", json=config, headers=wrong).status_code == 401
    launch(client, tmp_path)
    assert client.post("/searches/tiny/cancel").status_code == 401
    assert client.patch("/searches/tiny", json={"budget_trials": 9}).status_code == 401
    assert client.get("/searches/tiny").json()["status"] == "created"


def test_without_a_token_the_service_is_read_only(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client(f"sqlite:///{tmp_path / 'ro.db'}", token=None)
    response = client.post("/searches", json=http_config(tmp_path), headers=AUTH)
    assert response.status_code == 403 and "read-only" in response.json()["detail"]
    assert client.get("/health").json()["read_only"] is True
    assert client.get("/searches").status_code == 200


def test_cancel_resume_and_budget(client: TestClient, tmp_path: Path) -> None:
    launch(client, tmp_path)
    cancelled = client.post("/searches/tiny/cancel", headers=AUTH)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.get("/searches/tiny/progress").json()["finished"] is True
    assert client.post("/searches/tiny/cancel", headers=AUTH).status_code == 409
    resumed = client.post("/searches/tiny/resume", headers=AUTH)
    assert resumed.status_code == 200 and resumed.json()["status"] == "running"
    assert client.post("/searches/tiny/resume", headers=AUTH).status_code == 409
    raised = client.patch("/searches/tiny", json={"budget_trials": 9}, headers=AUTH)
    assert raised.status_code == 200 and raised.json()["budget"] == 9


def test_a_large_body_is_413(client: TestClient) -> None:
    body = b'{"name": "' + b"x" * 1_100_000 + b'"}'
    response = client.post(
        "/searches", content=body, headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 413


def test_the_service_describes_itself(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    assert "nasprune" in client.get("/version").json()["versions"]
    assert set(client.get("/spaces").json()) == {"builtin.mlp", "builtin.cnn"}
    assert "optuna.tpe" in client.get("/strategies").json()
    assert client.get("/devices").json() == []
    document = client.get("/openapi.json").json()
    assert "/searches/{name}/best" in document["paths"]


def test_export_refuses_paths(client: TestClient, tmp_path: Path) -> None:
    launch(client, tmp_path)
    for trial in ("../../etc/passwd", "0/../../x", "%2e%2e"):
        response = client.get("/searches/tiny/export", params={"trial": trial})
        assert response.status_code == 422, trial
    for name in ("..%2F..%2Fetc", "../tiny", "tiny%2F..%2F..%2Fx"):
        response = client.get(f"/searches/{name}/export", params={"trial": 0})
        assert 400 <= response.status_code < 500, name
    bad = client.get("/searches/tiny/export", params={"trial": 0, "format": "../x"})
    assert bad.status_code == 422
    assert not (tmp_path / "x").exists()


def test_not_found_and_name_taken_keep_their_kind_so_any_route_answers_by_type(
    tmp_path: Path,
) -> None:
    """A missing trial was a plain StoreError ("the store cannot be reached": 503), and a
    missing search was recognised only by peeking at the exception's cause."""
    from nasprune.api import record_search
    from nasprune.config import parse_config
    from nasprune.errors import NameTakenError, NotFoundError, user_errors
    from nasprune.service.errors import status_of
    from nasprune.store_access import find_trial
    from storage import Store

    config = parse_config(http_config(tmp_path))
    store = Store(f"sqlite:///{tmp_path / 'kinds.db'}")
    record = record_search(store, config)
    for lookup in (lambda: find_trial(store, record, 7), lambda: store.get_search("nope")):
        with pytest.raises(NotFoundError) as missing, user_errors():
            lookup()
        assert status_of(missing.value) == 404
    with pytest.raises(NameTakenError) as taken, user_errors():
        record_search(store, config)
    assert status_of(taken.value) == 409


def test_a_page_of_searches_costs_a_few_queries_not_several_per_search(
    client: TestClient, tmp_path: Path
) -> None:
    """Each listed search cost about seven queries (a count per state, its best, its time)."""
    from sqlalchemy import Engine, event

    for i in range(6):
        launch(client, tmp_path, name=f"s{i}")
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        page = client.get("/searches", params={"limit": 5})
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert page.status_code == 200 and len(page.json()["items"]) == 5
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) <= 3, reads  # the searches, their tallies, their best trials


SERVE_PROBE = """
import json, sys
from fastapi.testclient import TestClient
from nasprune.service.app import create_app
from nasprune.service.settings import ServiceSettings
app = create_app(ServiceSettings(storage=sys.argv[1], token="t"))
auth = {"Authorization": "Bearer t"}
with TestClient(app) as client:
    started = "torch" in sys.modules
    assert client.post("/searches", json=json.loads(sys.argv[2]), headers=auth).status_code == 201
    space = {"name": "builtin.mlp", "params": {"bogus": 1}}
    bad = json.loads(sys.argv[2]) | {"name": "bad", "space": space}
    refused = client.post("/searches", json=bad, headers=auth)
    assert refused.status_code == 400 and "space.params" in refused.json()["detail"], refused.text
    posted = "torch" in sys.modules
    for path in ("/searches", "/searches/tiny", "/searches/tiny/best", "/searches/tiny/trials"):
        assert client.get(path).status_code == 200, path
read = "torch" in sys.modules
print(json.dumps({"at_start": started, "after_posts": posted, "after_reads": read}))
"""


def test_the_service_starts_creates_searches_and_answers_reads_without_loading_torch(
    tmp_path: Path, store_url: str
) -> None:
    """create_app imported the facade (nasprune.api) and POST /searches built the space in the
    server process: both loaded torch, a second of start-up and hundreds of megabytes for a
    server that only opens a store. The space is now checked in a child process of its own,
    and a bad one is still refused in one line."""
    import json
    import subprocess
    import sys

    found = subprocess.run(
        [sys.executable, "-c", SERVE_PROBE, store_url, json.dumps(http_config(tmp_path))],
        capture_output=True,
        text=True,
    )
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout) == {
        "at_start": False,
        "after_posts": False,
        "after_reads": False,
    }
