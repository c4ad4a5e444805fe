"""How fast the store answers `best` and `pareto` as a search grows (SQLite, indexed SQL).

    .venv/bin/python benchmarks/bench_store.py [--trials 20000]

Fills a fresh SQLite store with N complete trials of random metrics, then times
`best_trial` under a latency limit and `pareto_front` (median of 20 calls each).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from storage import SearchRecord, Store, TrialState


def timed(call, repeats: int = 20) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def fill_store(store: Store, name: str, trials: int, rng: random.Random) -> SearchRecord:
    """A search of ``trials`` complete trials with random metrics, written one by one."""
    config = {"name": name, "objectives": [{"metric": "accuracy", "direction": "maximize"}]}
    search = store.create_search(name, config, "h", "builtin.mlp", "random", trials, {})
    for i in range(trials):
        trial = store.create_trial(search.search_id, {"i": i}, f"{i:016x}", "bench")
        store.finish_trial(
            trial.trial_id,
            TrialState.COMPLETE,
            {
                "accuracy": rng.random(),
                "latency_ms": rng.uniform(0.01, 5.0),
                "params": rng.randint(1000, 100000),
                "macs": rng.randint(1000, 10**6),
            },
        )
    return search


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20000)
    args = parser.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        start = time.perf_counter()
        search = fill_store(store, "bench", args.trials, rng)
        fill = time.perf_counter() - start
        best = timed(lambda: store.best_trial(search.search_id, max_latency_ms=1.0))
        pareto = timed(
            lambda: store.pareto_front(
                search.search_id, [("accuracy", "maximize"), ("latency_ms", "minimize")]
            )
        )
        print(f"trials: {args.trials}")
        print(f"write (claim + finish): {1000 * fill / args.trials:.2f} ms/trial")
        print(f"best_trial under 1 ms: {best:.2f} ms (median of 20)")
        print(f"pareto_front accuracy/latency: {pareto:.2f} ms (median of 20)")
        store.close()


if __name__ == "__main__":
    main()
