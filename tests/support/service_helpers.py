"""Helpers of the HTTP service's tests (tests/service): the token and a config to post."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def http_config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """The tests' tiny config as a client would post it: no storage, relative checkpoints."""
    config: dict[str, Any] = {
        "name": "tiny",
        "seed": 0,
        "space": {"name": "builtin.mlp", "params": {"max_depth": 3, "widths": [16, 32, 64]}},
        "data": {"builtin": "digits", "batch_size": 64},
        "supernet": {"epochs": 3, "checkpoint_dir": "checkpoints"},
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "params", "direction": "minimize"},
        ],
        "latency": {"threads": 1, "batch_size": 1, "warmup": 2, "repeats": 5},
        "strategy": {"name": "random"},
        "budget": {"trials": 4},
        "execution": {"lease_s": 5.0},
    }
    config.update(overrides)
    return config
