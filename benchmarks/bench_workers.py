"""How well workers share a search: throughput with 1, 2 and 4 worker processes.

    .venv/bin/python benchmarks/bench_workers.py [--trials 40] [--sleep 0.5] [--postgres]

Each trial's evaluation is replaced by a fixed sleep (the worker processes load
``benchmarks/sleepy_worker.py``), so the figure measures coordination through the store —
claiming trials, leases and heartbeats, proposals from a strategy rebuilt from the history,
finishing — not the two cores of this machine. Everything else is the real search: a real
space, strategy (random) and store. Throughput is trials per second between the first trial's
start and the last one's finish; the ideal with N workers is N / sleep.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "support")]

from nasprune.api import record_search  # noqa: E402
from nasprune.config import parse_config  # noqa: E402
from storage import Store, TrialState  # noqa: E402

WORKER = Path(__file__).resolve().parent / "sleepy_worker.py"


def config(name: str, trials: int, folder: Path) -> dict:
    return {
        "name": name,
        "space": {"name": "builtin.mlp", "params": {"max_depth": 4, "widths": [16, 32, 64, 128]}},
        "supernet": {"epochs": 0, "checkpoint_dir": str(folder / "checkpoints")},
        "strategy": {"name": "random"},
        "budget": {"trials": trials},
        "execution": {"lease_s": 30},
    }


def throughput(url: str, name: str, workers: int, sleep: float) -> tuple[float, int]:
    env = {**os.environ, "NASPRUNE_STORAGE": url, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, str(WORKER), name, str(sleep)], env=env)
        for _ in range(workers)
    ]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"a worker failed with exit status {proc.returncode}")
    store = Store(url)
    search = store.get_search(name)
    trials = store.trials(search.search_id)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == search.budget_trials, "the budget must hold exactly"
    assert len({t.number for t in trials}) == len(trials)
    first = min(t.started_at for t in trials)
    last = max(t.finished_at for t in complete if t.finished_at)
    store.close()
    return len(complete) / (last - first).total_seconds(), len(trials)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--sleep", type=float, default=0.5)
    parser.add_argument("--postgres", action="store_true", help="also on a throwaway server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        urls = {"sqlite": f"sqlite:///{folder / 'bench.db'}"}
        if args.postgres:
            from pg_server import create_database, postgres_server

            urls["postgresql"] = create_database(stack.enter_context(postgres_server()))
        print(f"{args.trials} trials, evaluation = sleep {args.sleep} s, strategy random")
        for backend, url in urls.items():
            rates = {}
            for workers in (1, 2, 4):
                name = f"bench-{workers}"
                cfg = parse_config(config(name, args.trials, folder))
                _create(cfg, url)
                rates[workers], made = throughput(url, name, workers, args.sleep)
                ideal = workers / args.sleep
                print(
                    f"  {backend:10} {workers} worker(s): {rates[workers]:5.2f} trials/s "
                    f"({rates[workers] / ideal:.0%} of ideal; {made} trials made)",
                    flush=True,
                )
            speedup = rates[4] / rates[1]
            print(f"  {backend:10} speed-up with 4 workers: {speedup:.2f}x (target >= 3.5x)")


def _create(cfg, url: str) -> None:
    """Create the search without running it (the worker processes do the work)."""
    store = Store(url)
    record_search(store, cfg)
    store.close()


if __name__ == "__main__":
    main()
