"""The pruning methods users know by name, compared on the same models (issue 18).

    .venv/bin/pip install -e '.[bench]'           # data
    .venv/bin/python benchmarks/bench_methods.py  # or: make bench-methods

For each setting (digits with the ResNet of examples/byom, which saturates; MNIST-1D with the
residual 1-D CNN, which does not; dense models trained here once and cached by
``benchmarks/dense_models.py``), in one run:

1. Criteria: every importance criterion nasprune has, on the dense model, every channel group at
   keep 0.5 and at keep 0.3 (blocks kept), ``per_group`` and ``global``: test accuracy before
   fine-tuning (batch norms recalibrated) and after the same short fine-tune (``--steps`` Adam
   steps, lr 1e-3, seed 0), and the time the criterion took on the dense model.
2. Sparse training, through the commands themselves: a prune-mode search of the dense model
   with ``granularity: global``, ``keep_ratios: [0.5, 1.0]``, ``sparsity: [0.5, 0.8]`` and the
   ``grid`` strategy evaluates all six networks; the one at keep 0.5 with 50% and with 80% of
   its weights zeroed (global magnitude, the sparsity dimension's method) is fine-tuned
   (``nasprune finetune``) ``--steps`` steps with the mask held (plain masking), with
   ``--sparse rigl`` and with ``--sparse set`` (``--sparse-interval`` a tenth of the steps);
   test accuracy, and the weights' sparsity at the end.
3. Lottery tickets (``nasprune lottery``): the keep-0.5 network without sparsity, ``--rounds``
   rounds of iterative magnitude pruning (20% of the remaining weights a round, ``--steps``
   steps a round, rewound to the weights at step ``--steps // 10``) against the paper's
   control, the same masks with random initialisation (``reinit=True``).

Every figure comes from this one run; nothing is tuned to a target.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nasprune  # noqa: E402
from benchmarks import dense_models, tasks  # noqa: E402
from benchmarks.bench_quality import space_params  # noqa: E402
from nasprune.evaluation.finetune import finetune  # noqa: E402
from nasprune.evaluation.metrics import accuracy_and_loss, recalibrate_bn  # noqa: E402
from nasprune.finetuning.lottery import lottery_trial  # noqa: E402
from nasprune.finetuning.runs import finetune_trial  # noqa: E402
from search_spaces import create_space  # noqa: E402
from search_spaces.derived.criteria import CRITERIA  # noqa: E402
from storage import TrialRecord, TrialState, get_store  # noqa: E402

SETTINGS = {  # name: (task, dense model)
    "digits-resnet": ("digits", "digits_resnet"),
    "mnist1d-rescnn": ("mnist1d", "rescnn"),
}
KEEPS = (0.5, 0.3)
GRANULARITIES = ("per_group", "global")
LR = 1e-3


class Data:
    """A task's loaders: shuffled training batches (seeded), validation and test."""

    def __init__(self, task: str) -> None:
        train, val, test = getattr(tasks, task)(seed=0)
        self.train = DataLoader(
            train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0)
        )
        self.val = DataLoader(val, batch_size=256)
        self.test = DataLoader(test, batch_size=256)
        loader = DataLoader(train, batch_size=64)  # the criteria's batches: the first four
        self.batches = [batch for batch, _ in zip(loader, range(4), strict=False)]

    def accuracy(self, module: nn.Module) -> float:
        return accuracy_and_loss(module, self.test)[0]


def derived(task: str, model: str, **params: Any) -> Any:
    settings = space_params(task, model) | {"blocks": "none", "keep_ratios": [0.3, 0.5, 1.0]}
    return create_space("derived", **(settings | params))


def tuned(module: nn.Module, data: Data, steps: int) -> nn.Module:
    module = copy.deepcopy(module)
    finetune(module, data.train, steps, LR, seed=0)
    return module.eval()


def criteria_table(setting: str, data: Data, steps: int) -> None:
    """Part 1."""
    task, model = SETTINGS[setting]
    print(f"\n### {setting}: criteria, every group at keep {' and '.join(map(str, KEEPS))}")
    head = " | ".join(f"{g} {k}: before / after" for k in KEEPS for g in GRANULARITIES)
    print(f"\n| criterion | {head} | seconds |")
    print("|---" * (2 + len(KEEPS) * len(GRANULARITIES)) + "|")
    for criterion in sorted(CRITERIA.names()):
        cells, seconds = [], 0.0
        for keep in KEEPS:
            for granularity in GRANULARITIES:
                importance = {"criterion": criterion, "batches": len(data.batches)}
                space = derived(task, model, granularity=granularity, importance=importance)
                started = time.perf_counter()
                state = space.fit_state(iter(data.batches), seed=0)
                seconds = max(seconds, time.perf_counter() - started)
                space.load_state(state)
                arch = {d.name: keep for d in space.dimensions()}
                module = space.extract(space.dense_model(), arch)
                recalibrate_bn(module, [x for x, _ in data.batches])
                before = data.accuracy(module)
                after = data.accuracy(tuned(module, data, steps))
                cells.append(f"{100 * before:.1f} / {100 * after:.1f}")
        print(f"| {criterion} | " + " | ".join(cells) + f" | {seconds:.1f} |", flush=True)


def methods_search(setting: str, workdir: Path) -> tuple[str, str, list[TrialRecord]]:
    """The search parts 2 and 3 start from: its name, store and complete trials."""
    task, model = SETTINGS[setting]
    params = space_params(task, model) | {
        "granularity": "global", "keep_ratios": [0.5, 1.0], "blocks": "none",
        "sparsity": [0.5, 0.8],
    }  # fmt: skip
    config = {
        "name": f"{setting}-methods",
        "seed": 0,
        "storage": f"sqlite:///{workdir / 'methods.db'}",
        "space": {"name": "derived", "params": params},
        "data": {"entry_point": f"benchmarks.tasks:{task}", "params": {"seed": 0}},
        "supernet": {"checkpoint_dir": str(workdir / "checkpoints")},
        "evaluation": {"mode": "prune", "finetune_steps": 0},
        "latency": {"threads": 1},
        "strategy": {"name": "grid"},
        "budget": {"trials": 6},
    }
    store = get_store(config["storage"])
    if config["name"] not in {s.name for s in store.list_searches()}:
        nasprune.run(config)
    record = store.get_search(config["name"])
    return config["name"], config["storage"], store.trials(record.search_id, [TrialState.COMPLETE])


def _at(trials: list[TrialRecord], sparsity: float) -> TrialRecord:
    """The keep-0.5 network with ``sparsity``."""
    return next(
        t for t in trials
        if float(t.arch.get("sparsity", 0.0)) == sparsity
        and all(v == 0.5 for k, v in t.arch.items() if k != "sparsity")
    )  # fmt: skip


def zero_share(path: str) -> float:
    """The share of the conv and linear weights that are zero in a saved state dict."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    weights = [v for k, v in state.items() if k.endswith("weight") and v.dim() > 1]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def sparse_table(setting: str, name: str, url: str, trials: list[TrialRecord], steps: int) -> None:
    interval = max(1, steps // 10)
    print(f"\n### {setting}: sparse training, keep 0.5, {steps} steps (masks moved every "
          f"{interval})\n")  # fmt: skip
    print("| sparsity | plain masking | RigL | SET |")
    print("|---|---|---|---|")
    for sparsity in (0.5, 0.8):
        trial = _at(trials, sparsity)
        cells = []
        for method in (None, "rigl", "set"):
            done = finetune_trial(  # at the constant rate of every other table here
                name, trial.number, steps=steps, storage=url, sparse=method,
                sparse_interval=interval, lr_schedule="constant",
            ).run  # fmt: skip
            assert done.path is not None
            cells.append(f"{100 * float(done.test_accuracy or 0):.1f}% "
                         f"({100 * zero_share(done.path):.1f}% zeros)")  # fmt: skip
        print(f"| {sparsity:.0%} | " + " | ".join(cells) + " |", flush=True)


def lottery_table(
    setting: str, name: str, url: str, trials: list[TrialRecord], steps: int, rounds: int
) -> None:
    trial, rewind = _at(trials, 0.0), steps // 10
    kw = {"rounds": rounds, "rate": 0.2, "steps": steps, "rewind_step": rewind, "storage": url}
    ticket = lottery_trial(name, trial.number, **kw)  # type: ignore[arg-type]
    control = lottery_trial(name, trial.number, reinit=True, **kw)  # type: ignore[arg-type]
    print(f"\n### {setting}: lottery tickets, keep 0.5, 20% a round, {steps} steps a round, "
          f"rewound to step {rewind}\n")  # fmt: skip
    print("| round | sparsity | rewound (the ticket) | random re-initialisation (control) |")
    print("|---|---|---|---|")
    by_round = {r.number: r for r in control.rounds}
    for found in ticket.rounds:
        other = by_round.get(found.number)
        theirs = "-" if other is None else f"{100 * float(other.run.test_accuracy or 0):.1f}%"
        ours = f"{100 * float(found.run.test_accuracy or 0):.1f}%"
        print(f"| {found.number} | {100 * found.sparsity:.1f}% | {ours} | {theirs} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--steps", type=int, default=100, help="fine-tuning steps a model")
    parser.add_argument("--rounds", type=int, default=4, help="lottery-ticket rounds")
    parser.add_argument("--parts", nargs="+", default=["criteria", "sparse", "lottery"])
    parser.add_argument(
        "--workdir", type=Path, default=None, help="an earlier run's folder: its runs are reused"
    )
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-methods-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"{args.steps} fine-tuning steps a model, {args.rounds} lottery rounds", flush=True)
    for setting in args.settings:
        task, model = SETTINGS[setting]
        data = Data(task)
        dense, _ = dense_models.trained(model, task)
        print(f"\n## {setting}: dense {model}, test {100 * data.accuracy(dense):.1f}%")
        if "criteria" in args.parts:
            criteria_table(setting, data, args.steps)
        if {"sparse", "lottery"} & set(args.parts):
            name, url, trials = methods_search(setting, workdir)
            if "sparse" in args.parts:
                sparse_table(setting, name, url, trials, args.steps)
            if "lottery" in args.parts:
                lottery_table(setting, name, url, trials, args.steps, args.rounds)


if __name__ == "__main__":
    main()
