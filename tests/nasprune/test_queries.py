"""The read-only commands answer from the store without loading the deep-learning stack."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import cli

import nasprune
from nasprune import queries
from nasprune.queries import limits_of_record, objectives_of

HEAVY = ("torch", "optuna", "nni", "torch_pruning", "onnxruntime", "alembic", "sqlalchemy.orm")
PROBE = """
import io, json, sys
from contextlib import redirect_stdout
from nasprune.cli import main
heavy = set(json.loads(sys.argv[2]))
sys.argv = ["nasprune", *json.loads(sys.argv[1])]
buffer = io.StringIO()
try:
    with redirect_stdout(buffer):
        main()
except SystemExit:
    pass
names = set(sys.modules) | {m.split(".")[0] for m in sys.modules}
print(json.dumps({"loaded": sorted(names & heavy), "out": buffer.getvalue()}))
"""
# The query API alone, without the command line (whose Typer loads pydantic).
LIGHT = ("sqlalchemy.orm", "torch", "optuna", "nni", "pydantic", "alembic")
QUERY_PROBE = """
import json, sys
from nasprune import queries
trial = queries.best("q", max_latency_ms=50.0, storage=sys.argv[1])
loaded = sorted(set(sys.modules) & set(json.loads(sys.argv[2])))
print(json.dumps({"loaded": loaded, "number": trial.number}))
"""


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory, make_config) -> str:
    workdir = tmp_path_factory.mktemp("queries")
    config = make_config(workdir, name="q") | {"budget": {"trials": 3}}
    config["objectives"] = [
        {"metric": "accuracy", "direction": "maximize"},
        {"metric": "latency_ms", "direction": "minimize"},
    ]
    config["constraints"] = {"latency_ms": {"max": 50.0}}
    nasprune.run(config)
    return str(config["storage"])


@pytest.mark.parametrize(
    "args",
    [["best", "q", "--json"], ["best", "q"], ["pareto", "q", "--json"], ["status", "--json"],
     ["compare", "q", "q", "--max-latency-ms", "5"]],
)  # fmt: skip
def test_query_commands_load_neither_torch_nor_optuna_nor_nni(
    args: list[str], searched: str
) -> None:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([*args, "--storage", searched]),
         json.dumps(HEAVY)],
        capture_output=True, text=True, check=True, cwd=Path(searched[10:]).parent,
    )  # fmt: skip
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    assert "q" in result["out"]


def test_a_best_query_loads_neither_the_orm_nor_alembic_nor_pydantic(searched: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", QUERY_PROBE, searched, json.dumps(LIGHT)],
        capture_output=True, text=True, check=True, cwd=Path(searched[10:]).parent,
    )  # fmt: skip
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    found = nasprune.best("q", max_latency_ms=50.0, storage=searched)
    assert found is not None and result["number"] == found.number


def test_objectives_and_limits_come_from_the_stored_config(searched: str) -> None:
    record = nasprune.api.open_store(searched).get_search("q")
    assert objectives_of(record) == [("accuracy", "maximize"), ("latency_ms", "minimize")]
    assert limits_of_record(record) == {"max_latency_ms": 50.0}
    assert nasprune.best("q", storage=searched) == nasprune.api.best("q", storage=searched)


def test_a_read_only_command_runs_with_the_collector_paused_and_restores_it(
    searched: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    during: list[bool] = []
    monkeypatch.setattr(queries, "status", lambda *_, **__: during.append(gc.isenabled()) or [])
    code, out, _ = cli(capsys, monkeypatch, "status", "--storage", searched)
    assert (code, out.strip(), during) == (0, "no searches in this store", [False])
    assert gc.isenabled()


def test_best_means_within_the_searchs_constraints_everywhere_and_a_given_limit_replaces_one(
    tmp_path: Path, make_config, capsys, monkeypatch
) -> None:
    """Every trial of this search is measured over its latency constraint (and so stored
    complete, not screened): `best` without flags named one anyway, while `status` and the
    table after `run` named none."""
    config = make_config(tmp_path, name="tight") | {"budget": {"trials": 2}}
    config["constraints"] = {"latency_ms": {"max": 1e-6}}
    result = nasprune.run(config)
    storage = str(config["storage"])
    assert result.best is None  # the table after `run`
    assert nasprune.best("tight", storage=storage) is None
    monkeypatch.setenv("NASPRUNE_STORAGE", storage)
    _, out, _ = cli(capsys, monkeypatch, "status", "--json")
    assert json.loads(out)[0]["best"] is None
    _, out, _ = cli(capsys, monkeypatch, "best", "tight", "--json")
    assert json.loads(out)["trial"] is None
    loose = nasprune.best("tight", max_latency_ms=1e9, storage=storage)  # what would 1e9 ms buy?
    assert loose is not None and loose.latency_ms > 1e-6


def test_hypervolume_is_the_area_a_front_dominates_up_to_the_reference() -> None:
    from nasprune.queries import hypervolume

    # shares 0.25 (value 0.5) and 0.5 (value 0.8) of a 4 ms reference: 0.25*0.5 + 0.5*0.8
    assert hypervolume([(1.0, 0.5), (2.0, 0.8)], 4.0) == pytest.approx(0.525)
    # a dominated point and one past the reference add nothing
    assert hypervolume([(1.0, 0.5), (2.0, 0.8), (3.0, 0.7), (5.0, 1.0)], 4.0) == pytest.approx(
        0.525
    )
    assert hypervolume([], 4.0) == 0.0
