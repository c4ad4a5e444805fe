"""How long `nasprune best` takes as a whole command, beside the query it runs.

    .venv/bin/python benchmarks/bench_queries.py [--trials 5000]

Fills a fresh SQLite store (as bench_store.py does), then prints the median wall time of the
command `nasprune best NAME --max-latency-ms 1` run as a new process (what a deployment
script pays: interpreter start, imports, opening the store, the query, the table), and the
median of the same query in-process. The gap is start-up; the command loads no torch.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_store import fill_store, timed  # noqa: E402

from nasprune.queries import best  # noqa: E402
from storage import Store  # noqa: E402


def command_seconds(args: list[str], repeats: int) -> float:
    nasprune = Path(sys.executable).parent / "nasprune"
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([str(nasprune), *args], check=True, capture_output=True)
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
        whole = command_seconds(query, args.repeats)
        startup = command_seconds(["--help"], args.repeats)
    print(f"trials: {args.trials}")
    print(f"`nasprune best` as a command: {whole:.3f} s wall (median of {args.repeats}); "
          f"target < 0.4 s")  # fmt: skip
    print(f"`nasprune --help` as a command: {startup:.3f} s wall (interpreter and CLI start)")
    print(f"the same query in-process: {in_process:.2f} ms (median of 20)")


if __name__ == "__main__":
    main()
