"""Where the time of the demo search goes: supernet training, then seconds per trial.

    .venv/bin/python benchmarks/bench_search.py [--config examples/mlp-digits.yaml]

Runs the config into a fresh SQLite store in a temp dir (so the supernet is trained), then
prints the wall time of the whole search, the training time and the mean trial time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import nasprune
from nasprune.config import load_config
from storage import TrialState, get_store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="examples/mlp-digits.yaml")
    args = parser.parse_args()
    config = load_config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        config.supernet.checkpoint_dir = str(Path(tmp) / "checkpoints")
        start = time.perf_counter()
        result = nasprune.run(config, storage=url)
        total = time.perf_counter() - start
        store = get_store(url)
        trials = store.trials(store.get_search(config.name).search_id)
        durations = [t.duration_s for t in trials if t.state == TrialState.COMPLETE]
        evaluating = sum(t.duration_s or 0.0 for t in trials)
        print(
            f"config: {args.config} ({result.completed} complete trials, "
            f"{len(trials)} in all), {os.cpu_count()} CPUs"
        )
        print(f"whole search: {total:.1f} s")
        print(f"supernet training and setup: {total - evaluating:.1f} s")
        print(
            f"per complete trial: {statistics.mean(durations) * 1000:.0f} ms mean, "
            f"{statistics.median(durations) * 1000:.0f} ms median"
        )


if __name__ == "__main__":
    main()
