"""Determinism across fresh processes (what resuming relies on) and a quiet NNI import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# Runs in fresh interpreters with different PYTHONHASHSEEDs; prints one JSON line.
SCRIPT = """
import json, logging, sys
from search_spaces.dimensions import Dimension, arch_hash
from strategies import create_strategy
from strategies.base import Result, draw_seed

DIMS = [Dimension("w", "width", (8, 16, 24, 32)), Dimension("d", "depth", (1, 2, 3)),
        Dimension("k", "kernel", (3, 5, 7)), Dimension("e", "expand", (0.5, 1.0, 2.0))]

def objective(arch):
    if arch["k"] == 7 and arch["d"] == 1:
        return None
    return [arch["w"] * arch["d"] + arch["k"] * arch["e"], arch["w"] * arch["e"]]

def hashes(name):
    strategy = create_strategy(name, DIMS, ["maximize", "minimize"], seed=11)
    out = []
    for i in range(25):
        arch = strategy.ask(draw_seed(11, i, 0))
        strategy.add([Result(arch, objective(arch), strategy.memo())])
        out.append(arch_hash(arch))
    strategy.close()
    return out

result = {name: hashes(name) for name in NAMES}
root = logging.getLogger()
result["root_logger"] = [root.level, len(root.handlers)]
print(json.dumps(result))
"""

NAMES = ["optuna.tpe", "nni.evolution", "nni.regularized_evolution"]


def launch(repo_root: str, hash_seed: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    code = f"NAMES = {NAMES!r}\n{SCRIPT}"
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=repo_root,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_fresh_processes_with_other_hash_seeds_ask_the_same_sequence(repo_root: str) -> None:
    runs = [launch(repo_root, seed) for seed in ("1", "4242")]
    outputs = [run.communicate(timeout=120) for run in runs]
    for run, (_out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
        assert err == "", "importing and driving NNI/Optuna must not write to stderr"
    first, second = (json.loads(out) for out, _ in outputs)
    assert first == second
    assert first["root_logger"] == [30, 0], "the root logger must stay unconfigured"
    namespace: dict[str, object] = {"NAMES": NAMES}
    exec(SCRIPT.replace("print(json.dumps(result))", ""), namespace)  # in this process too
    result = namespace["result"]
    assert isinstance(result, dict)
    assert {name: result[name] for name in NAMES} == {name: first[name] for name in NAMES}
