"""Every shipped example config runs as written (slow: real budgets; `make test-slow`)."""

from __future__ import annotations

from pathlib import Path

import pytest

import nasprune
from nasprune.config import load_config

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.*"))


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_config_runs_to_its_budget(path: Path, workdir: Path) -> None:
    config = load_config(path)
    result = nasprune.run(config, storage=f"sqlite:///{workdir / 'examples.db'}")
    assert result.completed == config.budget.trials
    assert result.best is not None


@pytest.mark.slow
def test_the_bring_your_own_model_example_trains_its_model_and_runs(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = Path(__file__).parents[2]
    monkeypatch.syspath_prepend(str(root))
    from examples.byom import digits_resnet

    config = load_config(root / "examples" / "byom" / "digits-resnet.yaml")
    digits_resnet.train(workdir / config.space.params["weights"], epochs=2)
    config.budget.trials = 6
    result = nasprune.run(config, storage=f"sqlite:///{workdir / 'examples.db'}")
    assert result.completed == 6 and result.best is not None
