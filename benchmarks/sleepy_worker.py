"""A `nasprune worker` whose evaluation is a fixed sleep (for bench_workers.py).

python benchmarks/sleepy_worker.py NAME SECONDS   (storage from $NASPRUNE_STORAGE)
"""

from __future__ import annotations

import sys
import time
from typing import Any

import nasprune.search.loop
from nasprune import api
from storage import TrialState


def sleepy(session: Any, trial: Any, heartbeat: Any) -> tuple[TrialState, dict[str, Any], None]:
    time.sleep(float(sys.argv[2]))
    heartbeat()
    return TrialState.COMPLETE, {"accuracy": 0.5 + trial.number * 1e-6, "latency_ms": 1.0}, None


if __name__ == "__main__":
    nasprune.search.loop.evaluate = sleepy  # the loop's own evaluation, replaced by a fixed cost
    api.worker(sys.argv[1])
