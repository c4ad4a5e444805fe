"""Queries at scale: `best`, `pareto`, `status` and `compare` on 100,000 trials, beside Optuna.

    .venv/bin/python benchmarks/bench_scale.py [--trials 100000] [--postgres | --no-postgres]

On SQLite (a file) and on PostgreSQL (a throwaway server started with pg_ctl in a temporary
directory, as the tests do; by default when pg_ctl is found), with the same data:

* nasprune: a search of N complete trials whose accuracy rises with latency (a trade-off, with
  noise; accuracy to 4 decimals as on a 10,000-image validation set, latency a float), written
  with bulk Core inserts. Timed in-process through `nasprune.queries` on one open reader (no
  result is cached between calls): `best` with no limit and under the 10th, 50th and 90th
  percentile of latency, and `pareto` (accuracy against latency).
* Optuna: a two-objective study (maximize accuracy, minimize latency) of the same N trials with
  the same three architecture parameters, in an Optuna RDB storage of the same kind (another
  SQLite file; another database on the same server). Timed: `study.best_trials`, and the best
  trial under each limit as a user finds it (`study.get_trials(states=COMPLETE)`, filter, max),
  once with a study loaded afresh for each call (what a script pays), once with one study whose
  cache holds every trial (a long-lived process). Optuna's own way in, `study.add_trials`, runs
  one transaction per trial (3.7 ms a trial on SQLite here: 6 minutes for 100,000), so the
  study's rows are bulk-inserted into Optuna's tables through its SQLAlchemy models instead
  (`--optuna-add-trials` takes the slow route). The bench then checks that Optuna loads N
  trials and that both tools find the same front and the same best trials.
* `status` of a small search and `compare` of two small searches (200 trials each), in a store
  that holds only them and in one where another search holds the N trials, timed call by call
  in turn: the two should not differ.

Figures are medians of repeated calls, in ms. On PostgreSQL every database gets `VACUUM
ANALYZE` after the fill (what autovacuum does within a minute of a bulk insert); SQLite files
are queried as filled (nasprune never runs ANALYZE).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent  # the checkout this benchmark belongs to
sys.path[:0] = [str(Path(__file__).parent), str(ROOT), str(ROOT / "tests" / "support")]

import optuna  # noqa: E402
from bench_store import timed  # noqa: E402
from optuna.distributions import IntDistribution, distribution_to_json  # noqa: E402
from optuna.storages._rdb import models as optuna_models  # noqa: E402
from optuna.trial import FrozenTrial, create_trial  # noqa: E402
from optuna.trial import TrialState as OptunaState  # noqa: E402
from pg_server import create_database, pg_bindir, postgres_server  # noqa: E402
from sqlalchemy import Connection, insert, text  # noqa: E402

from nasprune import queries  # noqa: E402
from storage import Reader, Store, TrialRecord, get_reader  # noqa: E402
from storage.engine import create_store_engine  # noqa: E402
from storage.tables import trials, utcnow  # noqa: E402

BATCH = 5000  # rows per INSERT
SMALL = 200  # trials of each small search
SPACE = {  # the architecture parameters of every trial, as Optuna distributions
    "depth": IntDistribution(2, 12),
    "width": IntDistribution(16, 256, step=16),
    "kernel": IntDistribution(3, 7, step=2),
}
TARGETS = {"best": "< 20", "pareto": "< 300"}


@dataclass(frozen=True)
class Trial:
    arch: dict[str, int]
    accuracy: float
    latency_ms: float


def trade_off(count: int, seed: int) -> list[Trial]:
    """Trials whose accuracy rises with latency and saturates, plus noise."""
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        arch = {n: rng.randrange(d.low, d.high + 1, d.step) for n, d in SPACE.items()}
        latency = rng.lognormvariate(math.log(3.0), 0.6)
        accuracy = 0.95 - 0.35 * math.exp(-latency / 2.5) + rng.gauss(0.0, 0.001)
        made.append(Trial(arch, round(min(max(accuracy, 0.0), 1.0), 4), latency))
    return made


def percentile(values: list[float], share: float) -> float:
    return round(sorted(values)[int(share * (len(values) - 1))], 2)


# nasprune


def add_search(url: str, name: str, data: list[Trial], limit_ms: float) -> None:
    """A search of ``data`` as complete trials, inserted in batches in one transaction."""
    config = {
        "name": name,
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "constraints": {"latency_ms": {"max": limit_ms}},  # `status` shows the best within
    }
    with Store(url) as store:
        search = store.create_search(name, config, "h", "bench", "random", len(data), {})
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            for start in range(0, len(data), BATCH):
                chunk = enumerate(data[start : start + BATCH], start=start)
                rows = [trial_row(search.search_id, number, t) for number, t in chunk]
                connection.execute(insert(trials), rows)
    finally:
        engine.dispose()


def trial_row(search_id: int, number: int, trial: Trial) -> dict[str, Any]:
    now = utcnow()
    arch = json.dumps(trial.arch, sort_keys=True)
    depth, width, kernel = trial.arch["depth"], trial.arch["width"], trial.arch["kernel"]
    return {
        "search_id": search_id,
        "number": number,
        "arch_json": arch,
        "arch_hash": hashlib.sha256(arch.encode()).hexdigest()[:16],
        "state": "complete",
        "accuracy": trial.accuracy,
        "latency_ms": trial.latency_ms,
        "latency_p90_ms": trial.latency_ms * 1.1,
        "params": depth * width**2 * kernel**2,
        "macs": int(trial.latency_ms * 1e7),
        "metrics_json": "{}",
        "worker": "bench",
        "started_at": now,
        "heartbeat_at": now,
        "finished_at": now,
        "duration_s": 1.0,
    }


# Optuna


def add_study(url: str, data: list[Trial], add_trials: bool) -> None:
    """A two-objective study of ``data``: through add_trials, or bulk-inserted rows."""
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(storage=storage, study_name="big", directions=DIRECTIONS)
    if add_trials:
        for start in range(0, len(data), BATCH):
            study.add_trials([frozen(t) for t in data[start : start + BATCH]])
    else:
        with storage.engine.begin() as connection:
            bulk_insert(connection, study._study_id, data)
    storage.remove_session()
    storage.engine.dispose()


DIRECTIONS = ["maximize", "minimize"]


def frozen(trial: Trial) -> FrozenTrial:
    values = [trial.accuracy, trial.latency_ms]
    return create_trial(values=values, params=dict(trial.arch), distributions=dict(SPACE))


def bulk_insert(connection: Connection, study_id: int, data: list[Trial]) -> None:
    """The rows that add_trials writes (a trial, its two values, its parameters)."""
    models = optuna_models
    finite = models.TrialValueModel.TrialValueType.FINITE
    as_json = {name: distribution_to_json(d) for name, d in SPACE.items()}
    now = utcnow()
    for start in range(0, len(data), BATCH):
        chunk = list(enumerate(data[start : start + BATCH], start=start + 1))  # ids from 1
        connection.execute(
            insert(models.TrialModel.__table__),
            [
                {"trial_id": i, "number": i - 1, "study_id": study_id,
                 "state": OptunaState.COMPLETE, "datetime_start": now, "datetime_complete": now}
                for i, _ in chunk
            ],
        )  # fmt: skip
        connection.execute(
            insert(models.TrialValueModel.__table__),
            [
                {"trial_id": i, "objective": k, "value": value, "value_type": finite}
                for i, t in chunk
                for k, value in enumerate((t.accuracy, t.latency_ms))
            ],
        )
        connection.execute(
            insert(models.TrialParamModel.__table__),
            [
                {"trial_id": i, "param_name": name, "param_value": float(value),
                 "distribution_json": as_json[name]}
                for i, t in chunk
                for name, value in t.arch.items()
            ],
        )  # fmt: skip


def optuna_best_under(study: optuna.Study, limit_ms: float) -> FrozenTrial | None:
    """The most accurate trial within the latency limit, as an Optuna user finds it."""
    complete = study.get_trials(deepcopy=False, states=(OptunaState.COMPLETE,))
    within = [t for t in complete if t.values[1] <= limit_ms]
    return max(within, key=lambda t: t.values[0], default=None)


# timing


@dataclass
class Figures:
    """Median ms by query on one backend: nasprune's, Optuna's with a study loaded afresh
    for each call, and Optuna's with one study whose cache holds every trial."""

    ours: dict[str, float] = field(default_factory=dict)
    fresh: dict[str, float] = field(default_factory=dict)
    warm: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def seconds(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def timed_in_turn(calls: list[Callable[[], Any]], repeats: int) -> list[float]:
    """Median ms of each call, the calls made in turn so that load on the machine hits all."""
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(repeats):
        for spent, call in zip(times, calls, strict=True):
            spent.append(seconds(call))
    return [statistics.median(spent) * 1000 for spent in times]


def time_ours(
    big: Reader, lean: Reader, limits: dict[str, float], repeats: int
) -> dict[str, float]:
    def best(limit: float | None) -> Callable[[], Any]:
        return lambda: queries.best("big", max_latency_ms=limit, storage=big)

    def status(reader: Reader) -> Callable[[], Any]:
        return lambda: queries.status("small-a", storage=reader)

    def compare(reader: Reader) -> Callable[[], Any]:
        under = [x for x in limits.values() if x is not None][:2]
        return lambda: queries.compare(["small-a", "small-b"], max_latency_ms=under, storage=reader)

    found = {label: timed(best(limit), repeats) for label, limit in limits.items()}
    found["pareto"] = timed(lambda: queries.pareto("big", storage=big), repeats)
    for name, ask in (("status small-a", status), ("compare small-a small-b", compare)):
        alone, beside = timed_in_turn([ask(lean), ask(big)], repeats)
        found[f"{name}, alone"], found[f"{name}, beside the big one"] = alone, beside
    return found


def time_optuna(url: str, limits: dict[str, float], repeats: int, warm_repeats: int) -> Figures:
    def fresh() -> optuna.Study:
        return optuna.load_study(study_name="big", storage=url)

    def under(limit: float | None) -> Callable[[optuna.Study], Any]:
        return lambda study: optuna_best_under(study, math.inf if limit is None else limit)

    asks = {label: under(limit) for label, limit in limits.items()}
    asks["pareto"] = lambda study: study.best_trials
    figures = Figures()
    for label, ask in asks.items():
        figures.fresh[label] = timed(lambda ask=ask: ask(fresh()), repeats)
    study = fresh()
    study.get_trials(deepcopy=False)  # fills the cache
    for label, ask in asks.items():
        figures.warm[label] = timed(lambda ask=ask: ask(study), warm_repeats)
    return figures


def check_agreement(
    url: str, count: int, front: list[TrialRecord], best: dict[float, TrialRecord | None]
) -> str:
    """Both tools hold the same trials and find the same front and the same best trials."""
    study = optuna.load_study(study_name="big", storage=url)
    assert len(study.get_trials(deepcopy=False)) == count, "Optuna holds another count"
    ours = sorted((t.accuracy, t.latency_ms) for t in front)
    theirs = sorted((t.values[0], t.values[1]) for t in study.best_trials)
    assert ours == theirs, f"fronts differ: {len(ours)} trials, Optuna's {len(theirs)}"
    for limit, trial in best.items():
        other = optuna_best_under(study, limit)
        assert trial is not None and other is not None and trial.accuracy == other.values[0]
    return f"front of {len(front)} trials, the same as Optuna's best_trials; best trials agree"


# a backend


def settle(url: str) -> None:
    """VACUUM ANALYZE on PostgreSQL, as autovacuum does shortly after a bulk insert."""
    if not url.startswith("postgresql"):
        return
    engine = create_store_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def run_backend(
    new_database: Callable[[], str], data: list[Trial], limits: dict[str, float], args: Any
) -> Figures:
    """Fill the three databases, time both tools, check they agree."""
    big_url, lean_url, optuna_url = new_database(), new_database(), new_database()
    notes = [f"nasprune fill: {seconds(lambda: add_search(big_url, 'big', data, 3.0)):.1f} s"]
    for url in (big_url, lean_url):
        for name, seed in (("small-a", 1), ("small-b", 2)):
            add_search(url, name, trade_off(SMALL, seed), 3.0)
    route = "add_trials" if args.optuna_add_trials else "bulk insert into its tables"
    spent = seconds(lambda: add_study(optuna_url, data, args.optuna_add_trials))
    notes.append(f"Optuna fill ({route}): {spent:.1f} s")
    for url in (big_url, lean_url, optuna_url):
        settle(url)
    with get_reader(big_url) as big, get_reader(lean_url) as lean:
        ours = time_ours(big, lean, limits, args.repeats)
        front = queries.pareto("big", storage=big)
        within = [x for x in limits.values() if x is not None]
        best = {x: queries.best("big", max_latency_ms=x, storage=big) for x in within}
    figures = time_optuna(optuna_url, limits, args.optuna_repeats, args.optuna_warm_repeats)
    figures.ours = ours
    figures.notes = [*notes, check_agreement(optuna_url, len(data), front, best)]
    return figures


@contextmanager
def sqlite_databases() -> Iterator[Callable[[], str]]:
    """New SQLite files in a temporary directory."""
    with tempfile.TemporaryDirectory() as tmp:
        names = iter(range(1_000))
        yield lambda: f"sqlite:///{Path(tmp) / str(next(names))}.db"


@contextmanager
def postgres_databases() -> Iterator[Callable[[], str]]:
    """New databases on a throwaway server (tests/support/pg_server.py)."""
    with postgres_server() as base:
        yield lambda: create_database(base)


# the table


def print_table(args: Any, limits: dict[str, float], results: dict[str, Figures]) -> None:
    print(
        f"\n{args.trials:,} trials, accuracy rising with latency; median ms of "
        f"{args.repeats} calls (nasprune), {args.optuna_repeats} (Optuna fresh: a study loaded "
        f"for each call), {args.optuna_warm_repeats} (Optuna warm: its cache filled)"
    )
    header = ["query", "target"]
    for backend in results:
        header += [f"{backend}: nasprune", "Optuna fresh", "Optuna warm"]
    rows = [header]
    for name in next(iter(results.values())).ours:
        row = [name, TARGETS.get(name.split(" ")[0].rstrip(","), "alone = beside")]
        for figures in results.values():
            row += [fmt(figures.ours[name]), fmt(figures.fresh.get(name))]
            row.append(fmt(figures.warm.get(name)))
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        cells = [cell.rjust(width) for cell, width in zip(row, widths, strict=True)]
        print("  ".join([row[0].ljust(widths[0]), *cells[1:]]))
    for backend, figures in results.items():
        for note in figures.notes:
            print(f"{backend}: {note}")


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument(
        "--postgres",
        action=argparse.BooleanOptionalAction,
        help="also on PostgreSQL (default: when pg_ctl is found)",
    )
    parser.add_argument("--repeats", type=int, default=20, help="calls per nasprune query")
    parser.add_argument("--optuna-repeats", type=int, default=1, help="calls, fresh study")
    parser.add_argument("--optuna-warm-repeats", type=int, default=3, help="calls, warm study")
    parser.add_argument(
        "--optuna-add-trials", action="store_true", help="fill Optuna with add_trials (slow)"
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = trade_off(args.trials, 0)
    latencies = [t.latency_ms for t in data]
    limits: dict[str, Any] = {"best, no limit": None}
    for share in (0.1, 0.5, 0.9):
        limit = percentile(latencies, share)
        limits[f"best <= {limit} ms (p{round(share * 100)} latency)"] = limit
    backends: dict[str, Callable[[], AbstractContextManager[Callable[[], str]]]] = {
        "SQLite": sqlite_databases
    }
    if args.postgres or (args.postgres is None and pg_bindir() is not None):
        backends["PostgreSQL"] = postgres_databases
    results = {}
    for backend, databases in backends.items():
        print(f"{backend}: filling and timing ...", flush=True)
        with databases() as new_database:
            results[backend] = run_backend(new_database, data, limits, args)
    print_table(args, limits, results)


if __name__ == "__main__":
    main()
