"""Latency you can trust: prediction accuracy, repeatability, calibration time, screening.

    .venv/bin/python benchmarks/bench_latency.py            # or: make bench-latency

On this machine's CPU (one thread, batch 1, the default measurement protocol), for the
built-in CNN space (examples/cnn-digits.yaml) and for a space derived from a residual CNN
(examples/byom/digits_resnet.py; latency does not depend on the weights, so the untrained
model is used and nothing needs training first):

1. `calibrate`: its wall time, units and whole networks timed, the predictor chosen.
2. 50 held-out random subnetworks (drawn with another seed than the calibration's), each
   measured afresh with the default protocol and predicted: the share within +-10% of the
   measurement (target >= 90%), the median and 90th-percentile error.
3. Repeatability: 5 subnetworks each measured 5 times with the default protocol: the
   coefficient of variation of the 5 medians (target <= 3%).
4. Screening (built-in CNN): the same random-strategy search with a tight latency limit,
   once without a calibration and once with: candidates screened (accuracy evaluations
   saved), evaluations over the limit, wall time, best accuracy within the limit.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
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
from nasprune.latency.units import runnable  # noqa: E402
from search_spaces import SearchSpace  # noqa: E402
from storage import TrialState, get_store  # noqa: E402

HELD_OUT = 50
REPEATS = 5
REPEATED_SUBNETS = 5
SEARCH_TRIALS = 30


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


def accuracy_of_prediction(config: SearchConfig, space: SearchSpace) -> dict[str, float]:
    store = get_store(str(config.storage))
    backend = create_backend(config.latency)
    calibrated = calibrate(config)
    print(f"  calibrate: {calibrated.seconds:.1f} s, {calibrated.units} units, "
          f"{calibrated.networks} networks; predictor {calibrated.model} (CV median error "
          + ", ".join(f"{k} {v:.1%}" for k, v in calibrated.errors.items()) + ")")  # fmt: skip
    predictor = load_predictor(store, calibrated.on, space)
    assert predictor is not None
    errors, fresh_units = [], 0
    for arch in held_out(space, HELD_OUT, seed=2026):
        structure = space.structure(arch)
        found = predictor.predict(structure, space.input_shape, measure=_refuse)
        assert found is not None
        fresh_units += found.measured_units
        measured = backend.measure(runnable(structure), space.input_shape).median_ms
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
    backend = create_backend(config.latency)
    cvs = []
    for arch in held_out(space, REPEATED_SUBNETS, seed=7):
        module = runnable(space.structure(arch))
        medians = [backend.measure(module, space.input_shape).median_ms for _ in range(REPEATS)]
        cvs.append(statistics.stdev(medians) / statistics.mean(medians))
    print(f"  repeatability: CV of {REPEATS} re-measurements, per subnet: "
          + ", ".join(f"{cv:.1%}" for cv in cvs)
          + f"; median {statistics.median(cvs):.1%} (target <= 3%)")  # fmt: skip
    return statistics.median(cvs)


def screening(config: SearchConfig, space: SearchSpace, tmp: Path) -> None:
    backend = create_backend(config.latency)
    figures = sorted(
        backend.measure(runnable(space.structure(a)), space.input_shape).median_ms
        for a in held_out(space, 20, seed=99)
    )
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


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for label, config in configs(tmp).items():
            print(f"{label} (threads 1, batch 1, default protocol):")
            space = space_with_state(config)
            accuracy_of_prediction(config, space)
            repeatability(config, space)
            if label == "builtin.cnn":
                screening(config, space, tmp)


if __name__ == "__main__":
    main()
