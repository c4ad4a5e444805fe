"""The NNI adapters: quiet, NNI's own algorithms underneath, failures kept out of learning."""

from __future__ import annotations

import random

import numpy as np
import pytest

from strategies import create_strategy, list_strategies
from strategies.base import Result

NNI_NAMES = sorted(name for name in list_strategies() if name.startswith("nni."))


@pytest.mark.parametrize("name", NNI_NAMES)
def test_creating_and_driving_prints_nothing(name: str, dims, driver, objectives, capfd) -> None:
    capfd.readouterr()
    strategy = create_strategy(name, dims, ["maximize", "minimize"], seed=5)
    driver(strategy, objectives, 30)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


@pytest.mark.parametrize("name", NNI_NAMES)
def test_global_random_generators_are_left_untouched(name: str, dims, driver, objectives) -> None:
    py_state, np_state = random.getstate(), np.random.get_state()
    driver(create_strategy(name, dims, ["maximize", "minimize"], seed=5), objectives, 30)
    assert random.getstate() == py_state
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state, strict=True))


def test_regularized_evolution_uses_nni_and_its_defaults(dims) -> None:
    from nni.nas.strategy import RegularizedEvolution

    strategy = create_strategy("nni.regularized_evolution", dims, ["maximize"], seed=0)
    evolution = strategy._evolution
    assert isinstance(evolution, RegularizedEvolution)
    assert (evolution.population_size, evolution.sample_size) == (20, 5)
    assert (evolution.mutation_prob, evolution.crossover) == (0.2, False)


def test_regularized_evolution_keeps_failures_out_of_the_population(dims) -> None:
    strategy = create_strategy(
        "nni.regularized_evolution", dims, ["minimize"], seed=0, population_size=4, sample_size=2
    )
    told = []
    for i in range(10):
        arch = strategy.ask(i)
        failed = i % 2 == 0
        strategy.add([Result(arch, None if failed else [float(arch["width"])])])
        if not failed:
            told.append(-float(arch["width"]))  # NNI maximises: a minimised value is negated
    population = [individual.y for individual in strategy._evolution._population]
    assert population == told[-4:]
    assert strategy._evolution._running_models == []


def test_regularized_evolution_rejects_a_sample_size_above_the_population(dims) -> None:
    from strategies import StrategyError

    with pytest.raises(StrategyError, match="sample_size"):
        create_strategy(
            "nni.regularized_evolution",
            dims,
            ["maximize"],
            seed=0,
            population_size=3,
            sample_size=5,
        )


@pytest.mark.parametrize("name", ["nni.grid", "nni.random", "nni.tpe", "nni.regularized_evolution"])
def test_exhausted_tuners_keep_answering(name: str, dims, driver) -> None:
    small = dims[:2]  # 12 architectures
    asked = driver(create_strategy(name, small, ["maximize"], seed=0), lambda a: [1.0], 20)
    assert len({tuple(a.values()) for a in asked[:12]}) == 12
    assert all(a["width"] in small[0].choices for a in asked[12:])
