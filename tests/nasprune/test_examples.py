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
