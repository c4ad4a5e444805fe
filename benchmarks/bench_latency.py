"""Latency you can trust from one process to the next: prediction accuracy, repeatability
across processes, calibration time, screening.

    .venv/bin/python benchmarks/bench_latency.py [--flow-only]     # or: make bench-latency

One thread, batch 1, the default measurement protocol otherwise, on this machine's CPU.

1. The user's flow (issue 15), each step a process of its own, every one pinned to the same
   core: ``nasprune calibrate`` on the built-in CNN (examples/cnn-digits.yaml), ``nasprune run``
   (24 trials), into which a CPU-burning process pinned to that core comes when half of the
   trials are done (and leaves when the search ends), ``nasprune latency-report``, then
   ``nasprune measure --all --remeasure`` twice. The flow runs twice, its steps interleaved,
   each in a store of its own: with the relative protocol (the default: each figure a ratio to
   the space's largest subnet times the device's anchor) and with the old absolute one
   (``latency.relative: false``). For each: the share of the search's trials predicted within
   +-10% of their measurement (target >= 90%), the median and 90th-percentile error, the
   repeatability across processes (each trial's coefficient of variation over the three
   processes that measured it, the search and the two re-measurements; the median over the
   trials, target <= 3%) and the machine's speed drift that the report shows.
2. In one process, for the built-in CNN and a space derived from a residual CNN
   (examples/byom/digits_resnet.py; latency does not depend on the weights, so the untrained
   model is used): ``calibrate``'s time, units, networks and predictor; 50 held-out random
   subnetworks measured afresh and predicted (share within +-10%, errors); 5 subnetworks
   each measured 5 times (median coefficient of variation); and, on the built-in CNN,
   screening: the same random-strategy search with a tight latency limit without and with a
   calibration.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nasprune  # noqa: E402
from nasprune.config import SearchConfig, load_config, parse_config  # noqa: E402
from nasprune.evaluation.stored import space_with_state  # noqa: E402
from nasprune.latency import create_backend  # noqa: E402
from nasprune.latency.calibrate import calibrate  # noqa: E402
from nasprune.latency.predictor import load_predictor  # noqa: E402
from nasprune.latency.recorded import recorded_latency, this_device  # noqa: E402
from nasprune.latency.reference import largest_subnet_reference  # noqa: E402
from nasprune.latency.units import runnable  # noqa: E402
from search_spaces import SearchSpace, arch_hash  # noqa: E402
from storage import TrialState, get_store  # noqa: E402

HELD_OUT = 50
REPEATS = 5
REPEATED_SUBNETS = 5
SEARCH_TRIALS = 30
FLOW_TRIALS = 24
PROTOCOLS = {"relative": True, "absolute (before)": False}
CORE = max(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
NASPRUNE = [sys.executable, "-c", "from nasprune.cli import main; main()"]


# 1. The user's flow, one process per step


def flow_config(tmp: Path, relative: bool) -> Path:
    config = load_config(ROOT / "examples" / "cnn-digits.yaml").model_dump(mode="json")
    label = "relative" if relative else "absolute"
    config["storage"] = f"sqlite:///{tmp / f'flow-{label}.db'}"
    config["supernet"] |= {"epochs": 5, "checkpoint_dir": str(tmp / "checkpoints")}
    config["latency"] = {"threads": 1, "batch_size": 1, "relative": relative}
    config["budget"] = {"trials": FLOW_TRIALS}
    path = tmp / f"flow-{label}.json"
    path.write_text(json.dumps(config))
    return path


def _pinned() -> None:
    if CORE is not None:
        os.sched_setaffinity(0, {CORE})


def nasprune_process(label: str, *args: str, burn_after: tuple[Path, int] | None = None) -> str:
    """Run ``nasprune ARGS`` in a process of its own pinned to CORE; with ``burn_after`` (a
    store and a number of complete trials), a CPU burner joins CORE once the store has that
    many complete trials, until the process ends. Returns its stdout."""
    started = time.monotonic()
    process = subprocess.Popen(
        [*NASPRUNE, *args], stdout=subprocess.PIPE, text=True, preexec_fn=_pinned
    )
    burner = None
    while burn_after is not None and burner is None and process.poll() is None:
        time.sleep(0.2)
        if _complete_trials(burn_after[0]) >= burn_after[1]:
            burner = subprocess.Popen(
                [sys.executable, "-c", "while True: pass"], preexec_fn=_pinned
            )
    out, _ = process.communicate()
    if burner is not None:
        burner.kill()
        burner.wait()
    if process.returncode != 0:
        raise SystemExit(f"nasprune {' '.join(args)} failed ({process.returncode})")
    if burn_after is not None and burner is None:
        raise SystemExit("the search ended before the burner started")
    burnt = "" if burner is None else ", a CPU burner on its core from half-way"
    print(f"  {label}: nasprune {args[0]}: {time.monotonic() - started:.1f} s{burnt}", flush=True)
    return out


def _complete_trials(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
            query = "select count(*) from trials where state = 'complete'"
            return int(connection.execute(query).fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


def _figures(db: Path) -> dict[str, float]:
    """The store's whole-network figures (not units), by key."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "select arch_hash, median_ms from latency_measurements "
            "where arch_hash not like 'unit:%'"
        ).fetchall()
    return {str(key): float(ms) for key, ms in rows}


def _trial_figures(db: Path) -> dict[str, float]:
    """Each complete trial's figure as its search measured it, by latency key."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "select latency_key, latency_ms from trials "
            "where state = 'complete' and latency_key is not null"
        ).fetchall()
    return {str(key): float(ms) for key, ms in rows}


def users_flow(tmp: Path) -> None:
    where = "" if CORE is None else f", every process pinned to core {CORE}"
    print(f"1. the user's flow: builtin.cnn, {FLOW_TRIALS} trials, one process per step{where}; "
          f"a CPU burner joins that core when half the search's trials are done")  # fmt: skip
    flows = {label: flow_config(tmp, relative) for label, relative in PROTOCOLS.items()}
    dbs = {label: tmp / f"flow-{'relative' if r else 'absolute'}.db" for label, r in
           PROTOCOLS.items()}  # fmt: skip
    name = "digits-cnn"
    rows: dict[str, dict[str, Any]] = {label: {} for label in PROTOCOLS}
    for label, path in flows.items():
        out = nasprune_process(label, "calibrate", str(path), "--quiet")
        rows[label]["calibrate"] = out.strip().splitlines()
    for label, path in flows.items():
        half = (dbs[label], FLOW_TRIALS // 2)
        nasprune_process(label, "run", str(path), "--quiet", burn_after=half)
        rows[label]["figures"] = [_trial_figures(dbs[label])]
    for label in flows:
        url = f"sqlite:///{dbs[label]}"
        out = nasprune_process(label, "latency-report", name, "--json", "--storage", url)
        rows[label]["report"] = json.loads(out)
    for _ in range(2):
        for label in flows:
            url = f"sqlite:///{dbs[label]}"
            nasprune_process(label, "measure", name, "--all", "--remeasure", "--storage", url)
            rows[label]["figures"].append(_figures(dbs[label]))
    for label, row in rows.items():
        report, cvs = row["report"], _cvs(row["figures"])
        drift = report.get("speed_drift") or {}
        calibration = report.get("calibration_speed_drift") or {}
        print(f"  {label}: {report['share_within_10pct']:.0%} of {report['trials']} trials "
              f"predicted within +-10% (target >= 90%), median error "
              f"{report['median_error']:.1%}, 90th percentile {report['p90_error']:.1%} "
              f"(predictor {report['model']}); repeatability across 3 processes: median CV "
              f"{statistics.median(cvs):.1%}, worst {max(cvs):.1%} over {len(cvs)} trials "
              f"(target <= 3%)")  # fmt: skip
        if drift.get("referenced"):
            print(f"    machine speed against the reference: search {drift['low']:+.0%}.."
                  f"{drift['high']:+.0%} ({drift['drifted']} of {drift['referenced']} figures "
                  f"flagged), calibration {calibration['low']:+.0%}..{calibration['high']:+.0%} "
                  f"({calibration['drifted']} of {calibration['referenced']} flagged)")  # fmt: skip
        print(f"    calibrate said: {row['calibrate'][-1]}")


def _cvs(figures: list[dict[str, float]]) -> list[float]:
    """Each key's coefficient of variation over the processes that measured it."""
    keys = set(figures[0]).intersection(*figures[1:])
    found = []
    for key in sorted(keys):
        values = [f[key] for f in figures]
        found.append(statistics.stdev(values) / statistics.mean(values))
    return found


# 2. In one process


def configs(tmp: Path) -> dict[str, SearchConfig]:
    cnn = load_config(ROOT / "examples" / "cnn-digits.yaml").model_dump(mode="json")
    resnet = load_config(ROOT / "examples" / "byom" / "digits-resnet.yaml").model_dump(mode="json")
    resnet["space"]["params"]["weights"] = None  # latency does not depend on the weights
    resnet["space"]["params"]["importance"] = {"criterion": "l2", "batches": 1}
    found = {}
    for label, config in (("builtin.cnn", cnn), ("derived residual CNN", resnet)):
        config["storage"] = f"sqlite:///{tmp / 'bench.db'}"
        config["supernet"] |= {"epochs": 5, "checkpoint_dir": str(tmp / "checkpoints")}
        config["latency"] = {"threads": 1, "batch_size": 1}  # the default protocol otherwise
        found[label] = parse_config(config)
    return found


def held_out(space: SearchSpace, count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [space.sample(rng) for _ in range(count)]


def measured_ms(config: SearchConfig, space: SearchSpace, arch: dict[str, Any]) -> float:
    """The subnet measured afresh as a search measures it (stored under a key of its own)."""
    store = get_store(str(config.storage))
    backend = create_backend(config.latency)
    on = this_device(backend, space.input_shape)
    module = runnable(space.structure(arch))
    key = f"bench:{arch_hash(space.canonical(arch))}"
    reference = largest_subnet_reference(space)  # as the search and calibrate time them
    return recorded_latency(store, backend, on, module, key, True, reference=reference)[0].median_ms


def accuracy_of_prediction(config: SearchConfig, space: SearchSpace) -> dict[str, float]:
    store = get_store(str(config.storage))
    calibrated = calibrate(config)
    print(f"  calibrate: {calibrated.seconds:.1f} s, {calibrated.units} units, "
          f"{calibrated.networks} networks; predictor {calibrated.model} (CV median error "
          + ", ".join(f"{k} {v:.1%}" for k, v in calibrated.errors.items()) + "); "
          + calibrated.drift.sentence())  # fmt: skip
    predictor = load_predictor(store, calibrated.on, space)
    assert predictor is not None
    errors = []
    for arch in held_out(space, HELD_OUT, seed=2026):
        found = predictor.predict(space.structure(arch), space.input_shape, measure=_refuse)
        assert found is not None
        measured = measured_ms(config, space, arch)
        errors.append((found.latency_ms - measured) / measured)
    within = sum(abs(e) <= 0.10 for e in errors) / len(errors)
    ordered = sorted(abs(e) for e in errors)
    print(f"  {HELD_OUT} held-out subnets: {within:.0%} predicted within +-10% (target >= 90%); "
          f"median error {statistics.median(ordered):.1%}, 90th percentile "
          f"{ordered[int(0.9 * (len(ordered) - 1))]:.1%}, mean signed error "
          f"{statistics.mean(errors):+.1%}")  # fmt: skip
    return {"within": within, "calibrate_s": calibrated.seconds}


def _refuse(unit: Any) -> float:
    raise AssertionError(f"unit {unit.key} is missing from the table")


def repeatability(config: SearchConfig, space: SearchSpace) -> float:
    cvs = []
    for arch in held_out(space, REPEATED_SUBNETS, seed=7):
        figures = [measured_ms(config, space, arch) for _ in range(REPEATS)]
        cvs.append(statistics.stdev(figures) / statistics.mean(figures))
    print(f"  repeatability in one process: CV of {REPEATS} re-measurements, per subnet: "
          + ", ".join(f"{cv:.1%}" for cv in cvs)
          + f"; median {statistics.median(cvs):.1%} (target <= 3%)")  # fmt: skip
    return statistics.median(cvs)


def screening(config: SearchConfig, space: SearchSpace, tmp: Path) -> None:
    figures = sorted(measured_ms(config, space, a) for a in held_out(space, 20, seed=99))
    limit = round(figures[len(figures) // 4], 4)  # tight: three subnets in four are slower
    rows = {}
    for label, screen in (("without screening", False), ("with screening", True)):
        run = config.model_dump(mode="json") | {
            "name": f"screen-{screen}",
            "storage": f"sqlite:///{tmp / f'screen-{screen}.db'}",
            "constraints": {"latency_ms": {"max": limit}},
            "strategy": {"name": "random"},
            "budget": {"trials": SEARCH_TRIALS},
        }
        if screen:
            calibrate(parse_config(run))
        result = nasprune.run(run)
        store = get_store(run["storage"])
        search = store.get_search(result.name)
        trials = store.trials(search.search_id)
        evaluated = [t for t in trials if t.state == TrialState.COMPLETE]
        rows[label] = {
            "seconds": store.trial_seconds(search.search_id),  # screening included
            "evaluated": len(evaluated),
            "over": sum(t.latency_ms is not None and t.latency_ms > limit for t in evaluated),
            "screened": sum("screened" in t.metrics for t in trials),
            "best": None if result.best is None else result.best.accuracy,
        }
    print(f"  screening, random strategy, {SEARCH_TRIALS} evaluated trials, latency limit "
          f"{limit} ms (a quarter of random subnets are under it):")  # fmt: skip
    for label, row in rows.items():
        best = "-" if row["best"] is None else f"{row['best']:.4f}"
        print(f"    {label}: {row['screened']} candidates screened (no accuracy evaluation), "
              f"{row['over']} of {row['evaluated']} evaluations over the limit, "
              f"{row['seconds']:.1f} s in trials, best within the limit {best}")  # fmt: skip


def in_one_process(tmp: Path) -> None:
    print("2. in one process (threads 1, batch 1, default protocol):")
    for label, config in configs(tmp).items():
        print(f" {label}:")
        space = space_with_state(config)
        accuracy_of_prediction(config, space)
        repeatability(config, space)
        if label == "builtin.cnn":
            screening(config, space, tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flow-only", action="store_true", help="only the user's flow")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        users_flow(tmp)
        if not args.flow_only:
            in_one_process(tmp)


if __name__ == "__main__":
    main()
