"""How long `nasprune best` takes as a whole command, beside the query it runs.

    .venv/bin/python benchmarks/bench_queries.py [--trials 5000]

Fills a fresh SQLite store (as bench_store.py does), then prints the median wall time of the
command `nasprune best NAME --max-latency-ms 1` run as a new process (what a deployment
script pays: interpreter start, imports, opening the store, the query, the table), and the
median of the same query in-process. The gap is start-up; the command loads no torch.
The command runs as `python -m nasprune` with this checkout first on PYTHONPATH, so that it
times the code beside this file even where another checkout is installed in the venv.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout this benchmark belongs to
sys.path[:0] = [str(Path(__file__).parent), str(ROOT)]

from bench_store import fill_store, timed  # noqa: E402

from nasprune.queries import best  # noqa: E402
from storage import Store  # noqa: E402


def checkout_env() -> dict[str, str]:
    """The environment in which `python -m nasprune` imports this checkout's code."""
    inherited = os.environ.get("PYTHONPATH")
    path = str(ROOT) if not inherited else os.pathsep.join([str(ROOT), inherited])
    env = {**os.environ, "PYTHONPATH": path}
    probe = "import nasprune, storage; print(nasprune.__file__); print(storage.__file__)"
    found = subprocess.run(
        [sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True
    ).stdout.split()
    assert all(Path(f).is_relative_to(ROOT) for f in found), f"imported {found}, not {ROOT}"
    return env


def command_seconds(args: list[str], repeats: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "nasprune", *args], check=True, capture_output=True, env=env
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        with Store(url) as store:
            fill_store(store, "bench", args.trials, random.Random(0))
            in_process = timed(lambda: best("bench", max_latency_ms=1.0, storage=store))
        query = ["best", "bench", "--max-latency-ms", "1", "--storage", url]
        env = checkout_env()
        whole = command_seconds(query, args.repeats, env)
        startup = command_seconds(["--help"], args.repeats, env)
    print(f"trials: {args.trials}")
    print(f"`nasprune best` as a command: {whole:.3f} s wall (median of {args.repeats}); "
          f"target < 0.4 s")  # fmt: skip
    print(f"`nasprune --help` as a command: {startup:.3f} s wall (interpreter and CLI start)")
    print(f"the same query in-process: {in_process:.2f} ms (median of 20)")


if __name__ == "__main__":
    main()
