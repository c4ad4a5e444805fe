from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def tiny_config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """A real but small search: elastic MLP on digits, a few epochs, a handful of trials, each
    candidate trained 20 steps."""
    config: dict[str, Any] = {
        "name": "tiny",
        "seed": 0,
        "storage": f"sqlite:///{tmp_path / 'store.db'}",
        "space": {"name": "builtin.mlp", "params": {"max_depth": 3, "widths": [16, 32, 64]}},
        "data": {"builtin": "digits", "batch_size": 64},
        "supernet": {"epochs": 3, "checkpoint_dir": str(tmp_path / "checkpoints")},
        # each candidate trains on its own as by default, but briefly (the default: 200 steps)
        "evaluation": {"finetune_steps": 20},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "latency": {"threads": 1, "batch_size": 1, "warmup": 2, "repeats": 5},
        "strategy": {"name": "optuna.tpe", "params": {"n_startup_trials": 3}},
        "budget": {"trials": 6},
    }
    for key, value in overrides.items():
        config[key] = value
    return config


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NASPRUNE_STORAGE", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def make_config():
    """The :func:`tiny_config` builder, for tests that need several configs."""
    return tiny_config
