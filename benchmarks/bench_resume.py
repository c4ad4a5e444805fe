"""What resuming a long search costs: a strategy rebuilt from the stored history in one pass.

    .venv/bin/python benchmarks/bench_resume.py [--trials 1000 10000] [--skip-optuna]

1. For every registered strategy and each history size: the time to rebuild it from N
   finished trials (one ``add``) and the median cost of an ask afterwards (3 asks).
2. Resuming a search of the largest N trials stored in SQLite, to its first new candidate:
   open the store, read the finished trials, rebuild the strategy, ask. Supernet loading,
   data preparation and importing Optuna or NNI are not included (they do not grow with the
   history; the import is printed first, and Optuna's figure excludes its import too).
3. Beside it, in the same run: Optuna's own resume of the same trials in an Optuna SQLite
   study, ``optuna.load_study`` then the first TPE ``ask`` with its suggestions.

The history is N distinct networks of a random search over builtin.mlp (up to 6 layers of 8
widths), with two objectives: accuracy rising with latency, plus noise.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert  # noqa: E402

from nasprune.search.proposer import Proposer  # noqa: E402
from search_spaces import arch_hash, create_space  # noqa: E402
from storage import Store, TrialState  # noqa: E402
from storage.tables import trials as trials_table  # noqa: E402
from storage.tables import utcnow  # noqa: E402
from strategies import create_strategy, list_strategies  # noqa: E402
from strategies.base import Result, draw_seed  # noqa: E402

SPACE = {"max_depth": 6, "widths": [8, 16, 24, 32, 48, 64, 96, 128]}
DIRECTIONS = ["maximize", "minimize"]
RESUMED = ("random", "nni.regularized_evolution", "optuna.tpe")


def history(space, n: int, rng: random.Random) -> list[tuple[dict, list[float]]]:
    out, seen = [], set()
    while len(out) < n:
        arch = space.canonical(space.sample(rng))
        if arch_hash(arch) in seen:
            continue  # a search evaluates each network once
        seen.add(arch_hash(arch))
        size = sum(v for k, v in arch.items() if k.startswith("width")) * arch["depth"]
        latency = 0.01 + size / 4000 + rng.uniform(0, 0.02)
        accuracy = 0.8 + 0.15 * (1 - 2.718 ** (-size / 400)) + rng.gauss(0, 0.01)
        out.append((arch, [accuracy, latency]))
    return out


def strategy_costs(space, sizes: list[int], rng: random.Random) -> None:
    print("strategy rebuild and ask, in-process (rebuild: one add of N results; ask: median of 3)")
    print(f"{'strategy':28} " + " ".join(f"{f'rebuild@{n}':>12} {f'ask@{n}':>10}" for n in sizes))
    data = {n: history(space, n, rng) for n in sizes}
    for name in sorted(list_strategies()):
        cells = []
        for n in sizes:
            strategy = create_strategy(name, space.dimensions(), DIRECTIONS, 0)
            results = [Result(a, v, None, proposed=False) for a, v in data[n]]
            start = time.perf_counter()
            strategy.add(results)
            rebuild = time.perf_counter() - start
            asks = []
            for attempt in range(3):
                start = time.perf_counter()
                strategy.ask(draw_seed(0, n, attempt))
                asks.append(time.perf_counter() - start)
            strategy.close()
            cells.append(f"{rebuild:>11.3f}s {statistics.median(asks):>9.3f}s")
        print(f"{name:28} " + " ".join(cells), flush=True)


def fill(store: Store, name: str, strategy: str, rows: list[tuple[dict, list[float]]]) -> int:
    config = {"name": name, "objectives": [{"metric": "accuracy", "direction": "maximize"}]}
    search = store.create_search(name, config, "h", "builtin.mlp", strategy, len(rows) + 10, {})
    now = utcnow()
    values = [
        {
            "search_id": search.search_id,
            "number": i,
            "arch_json": json.dumps(arch, sort_keys=True),
            "arch_hash": arch_hash(arch),
            "state": TrialState.COMPLETE.value,
            "accuracy": acc,
            "latency_ms": lat,
            "metrics_json": "{}",
            "memo_json": json.dumps({"proposed": False, "strategy": None}),
            "worker": "bench",
            "started_at": now,
            "heartbeat_at": now,
            "finished_at": now,
        }
        for i, (arch, (acc, lat)) in enumerate(rows)
    ]
    engine = create_engine(store.url)
    with engine.begin() as connection:
        connection.execute(insert(trials_table), values)
    engine.dispose()
    return search.search_id


def resume_seconds(url: str, name: str, strategy_name: str, space) -> tuple[float, str]:
    """Open the store, rebuild the strategy from the history, and propose the next trial;
    the total, and where it went."""
    start = time.perf_counter()
    store = Store(url)
    search = store.get_search(name)
    finished = store.finished_trials(search.search_id)
    read = time.perf_counter()
    strategy = create_strategy(strategy_name, space.dimensions(), DIRECTIONS, 0)
    proposer = Proposer(strategy, space, 0)
    proposer.add(finished, lambda t: [t.accuracy, t.latency_ms])
    rebuilt = time.perf_counter()
    candidate = proposer.next(store.count_trials(search.search_id))
    end = time.perf_counter()
    store.close()
    how = "the strategy's" if candidate.proposed else "the proposer's own, after re-proposals"
    parts = (
        f"read {read - start:.2f} s, rebuild {rebuilt - read:.2f} s, "
        f"propose {end - rebuilt:.2f} s ({how})"
    )
    return end - start, parts


def optuna_seconds(url: str, space, rows: list[tuple[dict, list[float]]]) -> float:
    """Optuna's own resume of the same trials: load_study, then the first TPE ask."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {
        d.name: optuna.distributions.CategoricalDistribution(list(d.choices))
        for d in space.dimensions()
    }
    study = optuna.create_study(study_name="bench", storage=url, directions=DIRECTIONS)
    for i in range(0, len(rows), 1000):
        study.add_trials(
            [
                optuna.trial.create_trial(params=a, distributions=distributions, values=v)
                for a, v in rows[i : i + 1000]
            ]
        )
    start = time.perf_counter()
    loaded = optuna.load_study(
        study_name="bench", storage=url, sampler=optuna.samplers.TPESampler(seed=0)
    )
    trial = loaded.ask()
    for name, distribution in distributions.items():
        trial.suggest_categorical(name, distribution.choices)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--skip-optuna", action="store_true")
    parser.add_argument("--skip-strategies", action="store_true")
    args = parser.parse_args()
    space = create_space("builtin.mlp", **SPACE)
    rng = random.Random(0)
    if not args.skip_strategies:
        strategy_costs(space, args.trials, rng)
    n = max(args.trials)
    rows = history(space, n, rng)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = Store(url)
        for name in RESUMED:
            fill(store, name, name, rows)
        store.close()
        print(f"\nresume of a {n}-trial search on SQLite to its first new candidate")
        for name in RESUMED:  # the libraries load once per process, whatever the history
            start = time.perf_counter()
            create_strategy(name, space.dimensions(), DIRECTIONS, 0).close()
            print(f"  (loading {name}'s library first: {time.perf_counter() - start:.2f} s)")
        for name in RESUMED:
            seconds, parts = resume_seconds(url, name, name, space)
            print(f"  nasprune {name:28} {seconds:7.2f} s  ({parts})")
        if not args.skip_optuna:
            optuna_url = f"sqlite:///{Path(tmp) / 'optuna.db'}"
            seconds = optuna_seconds(optuna_url, space, rows)
            print(f"  optuna load_study + first TPE ask     {seconds:7.2f} s")


if __name__ == "__main__":
    main()
