"""The command line as a user meets it: one-line errors with exit 2, tables and stable JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import cli

from storage import get_store

BAD_CONFIGS = {
    "unknown_top_level_key": ({"bogus": 1}, "bogus"),
    "bad_direction": ({"objectives": [{"metric": "accuracy", "direction": "up"}]}, "direction"),
    "unknown_metric": ({"objectives": [{"metric": "speed", "direction": "maximize"}]}, "metric"),
    "negative_budget": ({"budget": {"trials": -1}}, "budget.trials"),
    "unknown_strategy": ({"strategy": {"name": "optuna.nope"}}, "optuna.nope"),
    "unknown_space": ({"space": {"name": "builtin.nope"}}, "builtin.nope"),
    "unknown_latency_device": ({"latency": {"device": "tpu"}}, "tpu"),
    "unknown_latency_backend": ({"latency": {"backend": "tvm"}}, "tvm"),
    "bad_entry_point": ({"data": {"entry_point": "no_such_module_xyz:load"}}, "no_such_module_xyz"),
    "bad_space_param": (
        {"space": {"name": "builtin.mlp", "params": {"depth_max": 2}}},
        "depth_max",
    ),
    "bad_strategy_param": ({"strategy": {"name": "optuna.tpe", "params": {"bogus": 1}}}, "bogus"),
    "strategy_param_of_a_wrong_type": (
        {"strategy": {"name": "optuna.tpe", "params": {"n_startup_trials": "x"}}},
        "param 'n_startup_trials' expects int >= 0, got 'x'",
    ),
}

BAD_STRATEGY_PARAMS = {
    "optuna.tpe": ({"n_startup_trials": "x"}, "expects int >= 0, got 'x'"),
    "optuna.nsga2": ({"population_size": 10.5}, "expects int >= 2, got 10.5"),
    "optuna.qmc": ({"qmc_type": "latin"}, "expects 'sobol' | 'halton', got 'latin'"),
    "optuna.cmaes": ({"sigma0": "1e-3"}, "write 1.0e-3"),
    "optuna.random": ({"bogus": 1}, "known params: none"),
    "nni.regularized_evolution": ({"mutation_prob": 2}, "expects float in [0, 1], got 2"),
    "nni.tpe": ({"tpe_args": {"n_startup_jobs": "x"}}, "'tpe_args.n_startup_jobs' expects"),
    "nni.evolution": ({"population_size": 0}, "expects int >= 1, got 0"),
    "random": ({"population_size": 4}, "has no param 'population_size'"),
    "optuna.tpe (a Python object)": ({"gamma": 0.1}, "param 'gamma' takes a Python object"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_one_line_error_exit_2_and_writes_no_row(
    case: str, workdir: Path, make_config, write_config, capsys, monkeypatch
) -> None:
    change, needle = BAD_CONFIGS[case]
    config = {**make_config(workdir), **change}
    path = write_config(workdir / "bad.yaml", config)
    code, out, err = cli(capsys, monkeypatch, "run", str(path))
    assert code == 2
    assert needle in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    db = workdir / "store.db"
    if db.exists():
        assert get_store(f"sqlite:///{db}").list_searches() == []


@pytest.mark.parametrize("case", sorted(BAD_STRATEGY_PARAMS))
def test_bad_strategy_param_is_one_line_naming_it_exit_2_and_the_store_stays_empty(
    case: str, workdir: Path, make_config, write_config, capsys, monkeypatch
) -> None:
    params, needle = BAD_STRATEGY_PARAMS[case]
    name = case.split()[0]
    url = f"sqlite:///{workdir / 'store.db'}"
    get_store(url).close()  # the store exists already: the run must add nothing to it
    config = make_config(workdir, strategy={"name": name, "params": params})
    path = write_config(workdir / "bad.yaml", config)
    code, _, err = cli(capsys, monkeypatch, "run", str(path), "--storage", url)
    assert code == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"bad.yaml: strategy {name!r}" in err and needle in " ".join(err.split())
    assert get_store(url).list_searches() == []


def test_missing_config_file_and_invalid_yaml_are_refused(
    workdir: Path, capsys, monkeypatch
) -> None:
    code, _, err = cli(capsys, monkeypatch, "run", "nope.yaml")
    assert code == 2 and "not found" in err
    (workdir / "broken.yaml").write_text("name: [unclosed\n")
    code, _, err = cli(capsys, monkeypatch, "run", "broken.yaml")
    assert code == 2 and "not valid YAML" in err


def test_unknown_search_name_lists_the_known_ones(workdir: Path, capsys, monkeypatch) -> None:
    code, _, err = cli(
        capsys, monkeypatch, "best", "ghost", "--storage", f"sqlite:///{workdir}/x.db"
    )
    assert code == 2 and "ghost" in err and "Traceback" not in err


def test_corrupt_database_is_refused_and_left_intact(workdir: Path, capsys, monkeypatch) -> None:
    db = workdir / "corrupt.db"
    db.write_bytes(b"this is not a database" * 100)
    before = db.read_bytes()
    code, _, err = cli(capsys, monkeypatch, "status", "--storage", f"sqlite:///{db}")
    assert code == 2 and "Traceback" not in err
    assert db.read_bytes() == before


def test_run_best_pareto_status_compare_export_through_the_cli(
    workdir: Path, make_config, write_config, capsys, monkeypatch
) -> None:
    path = write_config(workdir / "tiny.yaml", make_config(workdir))
    url = f"sqlite:///{workdir / 'store.db'}"
    monkeypatch.setenv("NASPRUNE_STORAGE", url)
    code, out, err = cli(capsys, monkeypatch, "run", str(path), "--quiet")
    assert code == 0, err
    assert "6/6 trials complete" in out

    code, out, _ = cli(capsys, monkeypatch, "best", "tiny", "--max-latency-ms", "1000", "--json")
    assert code == 0
    best = json.loads(out)
    assert best["search"] == "tiny"
    assert set(best["trial"]) >= {"number", "arch", "accuracy", "latency_ms", "params", "macs"}

    code, out, _ = cli(capsys, monkeypatch, "best", "tiny", "--max-latency-ms", "0.0000001")
    assert code == 1

    code, out, _ = cli(capsys, monkeypatch, "pareto", "tiny", "--json")
    assert code == 0 and json.loads(out)["trials"]

    code, out, _ = cli(capsys, monkeypatch, "status", "--json")
    assert code == 0 and json.loads(out)[0]["complete"] == 6

    code, out, _ = cli(capsys, monkeypatch, "compare", "tiny", "tiny", "--max-latency-ms", "1000")
    assert code == 0 and "tiny" in out
    fronts = workdir / "fronts.png"
    code, out, err = cli(capsys, monkeypatch, "compare", "tiny", "tiny", "--hypervolume",
                         "--plot", str(fronts), "--json")  # fmt: skip
    assert code == 0, err
    volumes = [row["hypervolume"] for row in json.loads(out)]
    assert volumes[0] == volumes[1] and 0.0 < volumes[0] < 1.0
    assert fronts.read_bytes().startswith(b"\x89PNG")

    code, out, err = cli(
        capsys,
        monkeypatch,
        "export",
        "tiny",
        "--trial",
        str(best["trial"]["number"]),
        "-o",
        str(workdir / "small.pt"),
    )
    assert code == 0, err
    assert (workdir / "small.pt").is_file()

    code, out, err = cli(
        capsys, monkeypatch, "export", "tiny", "--max-latency-ms", "1000", "-o", "best.pt"
    )
    assert code == 0, err
    assert f"trial {best['trial']['number']}," in out  # the same best trial as `best`

    code, _, err = cli(capsys, monkeypatch, "export", "tiny", "-o", "x.pt")
    assert code == 2 and "exactly one of" in err

    code, _, err = cli(capsys, monkeypatch, "export", "tiny", "--trial", "999", "-o", "x.pt")
    assert code == 2 and "999" in err


def test_listing_commands_and_schema(capsys, monkeypatch) -> None:
    code, out, _ = cli(capsys, monkeypatch, "strategies")
    assert code == 0 and "optuna.nsga2" in out and "nni.regularized_evolution" in out
    code, out, _ = cli(capsys, monkeypatch, "spaces")
    assert code == 0 and "builtin.mlp" in out and "builtin.cnn" in out
    code, out, _ = cli(capsys, monkeypatch, "schema")
    assert code == 0 and "budget" in json.loads(out)["properties"]


def test_help_does_not_import_torch() -> None:
    code = "import sys; from nasprune.cli import app; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_every_example_config_validates() -> None:
    from nasprune.config import load_config

    examples = sorted(Path(__file__).parents[2].joinpath("examples").glob("*.*"))
    assert len(examples) >= 3
    for path in examples:
        load_config(path)
