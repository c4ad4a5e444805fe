"""Loading a config checks the strategy's params against their types, before any row is written;
a stored config is read back as it was stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import cli

import nasprune
from nasprune.config import SearchConfig, load_config, parse_config, stored_config
from nasprune.errors import ConfigError
from storage import get_store
from strategies import MissingDependencyError, Strategy
from strategies import registry as registry_module
from strategies.registry import register_strategy


def test_load_config_refuses_a_param_of_the_wrong_type_in_one_line(
    tmp_path: Path, write_config
) -> None:
    path = write_config(
        tmp_path / "c.yaml",
        {"name": "c", "strategy": {"name": "nni.evolution", "params": {"population_size": 8.0}}},
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: strategy 'nni.evolution': param 'population_size' expects int >= 1, got 8.0"
    )


def test_toml_ints_and_floats_are_told_apart(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        'name = "t"\n[strategy]\nname = "optuna.nsga2"\nparams = {crossover_prob = 1}\n'
    )
    assert load_config(good).strategy.params == {"crossover_prob": 1}  # kept as written
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "t"\n[strategy]\nname = "optuna.nsga2"\nparams = {population_size = 8.0}\n'
    )
    with pytest.raises(ConfigError, match="'population_size' expects int >= 2, got 8.0"):
        load_config(bad)


def test_unknown_strategy_and_unknown_param_fail_at_load_with_the_known_names() -> None:
    with pytest.raises(ConfigError, match="unknown strategy 'optuna.nope'; known: greedy, grid, "):
        parse_config({"name": "x", "strategy": {"name": "optuna.nope"}})
    with pytest.raises(ConfigError, match="no param 'sample_size'; known params: population_size"):
        parse_config(
            {"name": "x", "strategy": {"name": "nni.evolution", "params": {"sample_size": 2}}}
        )


def test_a_config_object_built_in_python_is_checked_before_any_row(
    workdir: Path, make_config
) -> None:
    config = SearchConfig.model_validate(make_config(workdir))
    config.strategy.params = {"n_startup_trials": "3"}
    with pytest.raises(ConfigError, match="'n_startup_trials' expects int >= 0, got '3'"):
        nasprune.run(config)
    assert not (workdir / "store.db").exists()


def test_a_search_stored_before_params_were_typed_still_reads_back(tmp_path: Path) -> None:
    store = get_store(f"sqlite:///{tmp_path / 'old.db'}")
    config = {
        "name": "old",
        "strategy": {"name": "optuna.tpe", "params": {"n_startup_trials": 5.0}},
    }
    store.create_search("old", config, "hash", "builtin.mlp", "optuna.tpe", 10, {})
    assert stored_config(store.get_search("old")).strategy.params == {"n_startup_trials": 5.0}


@pytest.fixture
def needs_a_missing_library():
    def load() -> type[Strategy]:
        raise MissingDependencyError("test.needs_lib needs foo: pip install foo")

    register_strategy("test.needs_lib", "Needs a library that is not installed", load)
    yield "test.needs_lib"
    registry_module._REGISTRY.pop("test.needs_lib")


def test_a_strategy_whose_library_is_missing_still_gives_its_install_hint(
    needs_a_missing_library: str, workdir: Path, make_config, write_config, capsys, monkeypatch
) -> None:
    config = make_config(workdir, strategy={"name": needs_a_missing_library, "params": {}})
    assert load_config(write_config(workdir / "c.yaml", config)).strategy.name == "test.needs_lib"
    code, _, err = cli(capsys, monkeypatch, "run", str(workdir / "c.yaml"))
    assert code == 2 and "pip install foo" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    db = workdir / "store.db"
    assert not db.exists() or get_store(f"sqlite:///{db}").list_searches() == []
