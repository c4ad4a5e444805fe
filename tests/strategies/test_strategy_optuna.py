"""The Optuna adapters: a real study behind them, params passed to the sampler."""

from __future__ import annotations

import optuna
import pytest

from strategies import StrategyError, create_strategy
from strategies.base import Result


def test_study_records_values_and_failures(dims) -> None:
    strategy = create_strategy("optuna.nsga2", dims, ["maximize", "minimize"], seed=0)
    for i, values in enumerate(([0.5, 2.0], None, [0.7, 1.0])):
        strategy.add([Result(strategy.ask(i), values, strategy.memo())])
    study = strategy.study
    assert study.directions == [
        optuna.study.StudyDirection.MAXIMIZE,
        optuna.study.StudyDirection.MINIMIZE,
    ]
    states = [t.state for t in study.trials]
    assert states == [
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.FAIL,
        optuna.trial.TrialState.COMPLETE,
    ]
    assert study.trials[2].values == [0.7, 1.0]


def test_categorical_samplers_store_the_choices(dims) -> None:
    strategy = create_strategy("optuna.tpe", dims, ["maximize"], seed=0)
    arch = strategy.ask(0)
    assert strategy.study.trials == [], "an ask leaves no trial in the study"
    strategy.add([Result(arch, [1.0], strategy.memo())])
    assert strategy.study.trials[0].params == arch


def test_qmc_suggests_choice_indices(dims) -> None:
    strategy = create_strategy("optuna.qmc", dims, ["maximize"], seed=0)
    asked = []
    for i in range(3):
        asked.append(strategy.ask(i))
        strategy.add([Result(asked[-1], [1.0], strategy.memo())])
    assert isinstance(strategy.study.sampler, optuna.samplers.QMCSampler)
    assert len({tuple(a.values()) for a in asked}) == 3, "the sequence moves on at each ask"
    for arch, trial in zip(asked, strategy.study.trials, strict=True):
        assert {d.name: d.choices[trial.params[d.name]] for d in dims} == arch


def test_params_pass_through_to_the_sampler(dims) -> None:
    strategy = create_strategy("optuna.nsga2", dims, ["maximize"], seed=0, population_size=8)
    sampler = strategy.study.sampler
    assert isinstance(sampler, optuna.samplers.NSGAIISampler)
    assert sampler._population_size == 8


def test_bad_param_values_become_strategy_errors(dims) -> None:
    with pytest.raises(StrategyError, match="population_size"):
        create_strategy("optuna.nsga2", dims, ["maximize"], seed=0, population_size=1)


def test_nsga2_generations_survive_a_rebuild_through_the_memo(dims) -> None:
    strategy = create_strategy("optuna.nsga2", dims, ["maximize"], seed=0, population_size=4)
    results = []
    for i in range(10):
        arch = strategy.ask(i)
        results.append(Result(arch, [float(arch["width"])], strategy.memo()))
        strategy.add(results[-1:])
    generations = [t.system_attrs["NSGAIISampler:generation"] for t in strategy.study.trials]
    assert generations == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    rebuilt = create_strategy("optuna.nsga2", dims, ["maximize"], seed=0, population_size=4)
    rebuilt.add(results)
    assert [t.system_attrs for t in rebuilt.study.trials] == [
        t.system_attrs for t in strategy.study.trials
    ]
