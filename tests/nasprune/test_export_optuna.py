"""`nasprune export-optuna`: a real search read back with `optuna.load_study` as Optuna sees it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import optuna
import pytest
from cli_support import cli

import nasprune
from nasprune import queries, store_access
from nasprune.config import SpaceConfig, stored_config
from nasprune.exporting.optuna import _distributions
from search_spaces import create_space
from storage import Store, TrialRecord, TrialState, get_store

LIMIT_MS = 1000.0  # every real trial of the tiny search is feasible
HAS_PLOTLY = importlib.util.find_spec("plotly") is not None


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory, make_config) -> str:
    """Two real searches in one store: ``multi`` (accuracy up, latency down, a latency limit,
    plus one trial of each other kind added by hand) and ``single`` (accuracy alone)."""
    workdir = tmp_path_factory.mktemp("export_optuna")
    config = make_config(workdir, name="multi")
    config["objectives"] = [
        {"metric": "accuracy", "direction": "maximize"},
        {"metric": "latency_ms", "direction": "minimize"},
    ]
    config["constraints"] = {"latency_ms": {"max": LIMIT_MS}}
    nasprune.run(config)
    nasprune.run(make_config(workdir, name="single") | {"budget": {"trials": 4}})
    _add_other_kinds(get_store(str(config["storage"])), "multi")
    return str(config["storage"])


def _add_other_kinds(store: Store, name: str) -> None:
    """A complete trial over the latency limit, a screened one, a failed one, a running one."""
    search = store.get_search(name)
    first = store.trials(search.search_id)[0]

    def trial() -> TrialRecord:
        return store.create_trial(search.search_id, first.arch, first.arch_hash, "by-hand")

    slow = {"accuracy": 0.01, "loss": 9.0, "latency_ms": LIMIT_MS + 5, "params": 7, "macs": 9}
    store.finish_trial(trial().trial_id, TrialState.COMPLETE, slow)
    screened = {"params": 7, "macs": 9, "violated": "latency_ms (predicted)", "screened": "why"}
    store.finish_trial(trial().trial_id, TrialState.INFEASIBLE, screened)
    store.finish_trial(trial().trial_id, TrialState.FAILED, {}, error="out of memory")
    trial()  # left running


def _export(capsys, monkeypatch, storage: str, target: str, *args: str) -> tuple[int, str, str]:
    return cli(capsys, monkeypatch, "export-optuna", *args, "--to", target, "--storage", storage)


def _by_number(study: optuna.Study) -> dict[int, optuna.trial.FrozenTrial]:
    return {t.user_attrs["nasprune_number"]: t for t in study.trials}


def _stored(storage: str, name: str) -> list[TrialRecord]:
    store = store_access.open_reader(storage)
    return store.trials(store.get_search(name).search_id)


def test_export_writes_every_finished_trial_with_its_arch_values_and_state(
    searched: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    target = f"sqlite:///{tmp_path / 'optuna.db'}"
    code, out, _ = _export(capsys, monkeypatch, searched, target, "multi")
    trials = _stored(searched, "multi")
    finished = [t for t in trials if t.state.is_finished()]
    assert code == 0
    assert out.strip() == (
        f"wrote {len(finished)} trials of multi to study multi in {target} (1 running, skipped)"
    )
    study = optuna.load_study(study_name="multi", storage=target)
    assert study.directions == [
        optuna.study.StudyDirection.MAXIMIZE,
        optuna.study.StudyDirection.MINIMIZE,
    ]
    exported = _by_number(study)
    assert sorted(exported) == [t.number for t in finished]
    assert [t.user_attrs["nasprune_number"] for t in study.trials] == sorted(exported)
    for trial in finished:
        got = exported[trial.number]
        assert got.params == trial.arch
        assert got.user_attrs["arch_hash"] == trial.arch_hash
        assert got.datetime_start == trial.started_at.astimezone().replace(tzinfo=None)
        assert got.datetime_complete is not None and got.datetime_complete >= got.datetime_start
        if trial.state is TrialState.COMPLETE:
            assert got.state is optuna.trial.TrialState.COMPLETE
            assert got.values == [trial.accuracy, trial.latency_ms]
            assert got.user_attrs["params"] == trial.params
            assert got.system_attrs["constraints"] == [trial.latency_ms - LIMIT_MS]
        else:  # the screened (infeasible, never evaluated) and the failed trial
            assert got.state is optuna.trial.TrialState.FAIL
            assert got.values is None and "constraints" not in got.system_attrs
    states = [t.state for t in finished]
    assert states.count(TrialState.INFEASIBLE) == 1 and states.count(TrialState.FAILED) == 1
    failed = next(t for t in finished if t.state is TrialState.FAILED)
    assert exported[failed.number].user_attrs["error"] == "out of memory"


def test_each_parameter_is_a_categorical_over_its_dimensions_choices(
    searched: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    target = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert _export(capsys, monkeypatch, searched, target, "multi")[0] == 0
    cfg = stored_config(store_access.open_reader(searched).get_search("multi"))
    space = create_space(cfg.space.name, **cfg.space.params)
    choices = {d.name: list(d.choices) for d in space.dimensions()}
    for trial in optuna.load_study(study_name="multi", storage=target).trials:
        assert {k: list(d.choices) for k, d in trial.distributions.items()} == choices


def test_best_trials_are_nasprune_pareto_front_of_the_feasible_trials(
    searched: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    target = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert _export(capsys, monkeypatch, searched, target, "multi")[0] == 0
    study = optuna.load_study(study_name="multi", storage=target)
    feasible = [t for t in study.trials if all(c <= 0 for c in t.constraints.values())]
    assert len(feasible) < len(study.trials)  # the slow trial counts as infeasible
    front = {t.number for t in queries.pareto("multi", storage=searched)}
    assert front and {t.user_attrs["nasprune_number"] for t in study.best_trials} == front


@pytest.mark.skipif(not HAS_PLOTLY, reason="Optuna's plots need plotly")
def test_optunas_plots_draw_the_exported_studies(
    searched: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    target = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert _export(capsys, monkeypatch, searched, target, "multi")[0] == 0
    assert _export(capsys, monkeypatch, searched, target, "single")[0] == 0
    multi = optuna.load_study(study_name="multi", storage=target)
    single = optuna.load_study(study_name="single", storage=target)
    assert single.best_trial.value == queries.best("single", storage=searched).accuracy
    figures = [
        optuna.visualization.plot_pareto_front(multi, target_names=["accuracy", "latency_ms"]),
        optuna.visualization.plot_optimization_history(single),
        optuna.visualization.plot_param_importances(single),
    ]
    assert all(figure.data for figure in figures)
    hovers = [trace.hovertemplate or "" for trace in figures[0].data]
    assert any("Infeasible Trial" in hover for hover in hovers)  # the constraints were read


def test_unknown_search_is_one_line_exit_2(
    searched: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    target = f"sqlite:///{tmp_path / 'optuna.db'}"
    code, _, err = _export(capsys, monkeypatch, searched, target, "nope")
    assert code == 2 and "nope" in err and len(err.strip().splitlines()) == 1


def test_an_existing_study_is_refused_unless_overwritten(
    searched: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    target = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert _export(capsys, monkeypatch, searched, target, "single", "--study-name", "s")[0] == 0
    code, _, err = _export(capsys, monkeypatch, searched, target, "single", "--study-name", "s")
    assert code == 2 and "'s' already exists" in err and len(err.strip().splitlines()) == 1
    code, _, _ = _export(
        capsys, monkeypatch, searched, target, "single", "--study-name", "s", "--overwrite"
    )
    assert code == 0
    assert optuna.get_all_study_names(target) == ["s"]
    assert len(optuna.load_study(study_name="s", storage=target).trials) == len(
        _stored(searched, "single")
    )


def test_a_space_that_cannot_be_built_gives_the_values_seen_and_says_so(searched: str) -> None:
    record = store_access.open_reader(searched).get_search("single")
    cfg = stored_config(record)
    elsewhere = cfg.model_copy(update={"space": SpaceConfig(name="derived.not-here")})
    trials = _stored(searched, "single")
    distributions, note = _distributions(elsewhere, trials)
    seen: dict[str, set[Any]] = {}
    for trial in trials:
        for key, value in trial.arch.items():
            seen.setdefault(key, set()).add(value)
    assert {k: set(d.choices) for k, d in distributions.items()} == seen
    assert note is not None and "derived.not-here" in note and "values seen" in note
