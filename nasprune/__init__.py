"""nasprune: find the best subnetwork of a neural network under hardware constraints.

The public API is imported lazily so that ``import nasprune`` (and ``nasprune --help``) stays
fast: torch, optuna and NNI load when a function that needs them is first called.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = {
    "run": "nasprune.api",
    "resume": "nasprune.api",
    "worker": "nasprune.api",
    "best": "nasprune.queries",
    "pareto": "nasprune.queries",
    "status": "nasprune.queries",
    "compare": "nasprune.queries",
    "export": "nasprune.exporting.subnet",
    "load_subnet": "nasprune.exporting.subnet",
    "load_config": "nasprune.config",
    "derive_space": "search_spaces.derived",
    "finetune_trial": "nasprune.finetuning.runs",
    "validate_proxy": "nasprune.finetuning.proxy",
    "SearchConfig": "nasprune.config",
}

__all__ = sorted(_API) + ["NasPruneError", "__version__"]

from nasprune.errors import NasPruneError  # noqa: E402  (light: no heavy imports)


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'nasprune' has no attribute {name!r}")
