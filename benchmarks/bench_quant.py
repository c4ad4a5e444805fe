"""int8 chosen with the channels against int8 applied after pruning (issue 17), on ONNX Runtime.

    .venv/bin/pip install -e '.[bench]'         # data
    .venv/bin/python benchmarks/bench_quant.py  # or: make bench-quant

For each setting (digits with the ResNet of examples/byom, which saturates; MNIST-1D with the
residual 1-D CNN, which does not), in one run and with one seed each (``--seeds``):

1. the dense model, trained here once and cached (``benchmarks/dense_models.py``);
2. two searches of the space derived from it, with the defaults (elastic mode, ``optuna.tpe``,
   accuracy and latency as the objectives, latency on the ``onnxruntime`` backend at batch 1 on
   one thread, ``--trials`` each): one fp32-only, one joint, whose space adds
   ``quantization: {dims: per_layer}`` (every convolution and linear layer may run in int8);
3. under 30%, 50% and 70% of the dense fp32 model's latency, the rows:
   - *pruned fp32*: the fp32 search's best network under the limit (the search's accuracy);
   - *prune-then-quantize*: the sequential pipeline, fp32 choice first, then every layer in
     int8: among the fp32 search's networks, the most accurate (fp32 search accuracy) whose
     all-int8 model measures under the limit (each quantized and timed, most accurate first);
   - *joint*: the joint search's best network under the limit (its accuracy is fake int8);
   and, once, *dense fp32* (as trained) and *dense int8* (every layer in int8, calibrated
   after training: post-training quantization);
4. every subnet fine-tuned the same way (``--finetune-steps`` Adam steps, lr 1e-3, seed 0; a
   model with int8 layers fake-quantized during them, as ``finetune --qat`` does; the dense
   models are not: more steps at that rate only shake a converged model), then its
   test accuracy as it deploys (an int8 model as ONNX Runtime's QDQ model), its latency at
   batch 1 and 64 in one final pass (ONNX Runtime, one thread, against the reference network
   like every figure), and the size of its ONNX file.

The int8 models are calibrated on the joint search's calibration batches (its training data).
Every figure comes from this one run; nothing is tuned to a target.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nasprune  # noqa: E402
from benchmarks import dense_models  # noqa: E402
from benchmarks.bench_quality import best_under, space_params  # noqa: E402
from nasprune.config import LatencyConfig  # noqa: E402
from nasprune.evaluation.finetune import finetune  # noqa: E402
from nasprune.evaluation.metrics import accuracy_and_loss  # noqa: E402
from nasprune.evaluation.stored import StoredSearch, open_stored  # noqa: E402
from nasprune.latency.recorded import this_device  # noqa: E402
from nasprune.latency.reference import largest_subnet_reference  # noqa: E402
from nasprune.latency.registry import create_backend  # noqa: E402
from nasprune.onnx_export import onnx_bytes  # noqa: E402
from nasprune.quantization import FakeInt8, Int8Model, quantizable  # noqa: E402
from search_spaces import create_space  # noqa: E402
from storage import TrialRecord, TrialState, get_store  # noqa: E402

SETTINGS = {  # name: (task, dense model)
    "digits-resnet": ("digits", "digits_resnet"),
    "mnist1d-rescnn": ("mnist1d", "rescnn"),
}
LIMITS = (0.3, 0.5, 0.7)  # shares of the dense fp32 model's latency at batch 1
BATCHES = (1, 64)
LR = 1e-3
Measure = Callable[[nn.Module], float]


def search_config(setting: str, joint: bool, seed: int, trials: int, workdir: Path) -> dict:
    task, model = SETTINGS[setting]
    params = space_params(task, model)
    if joint:
        params["quantization"] = {"dims": "per_layer"}
    return {
        "name": f"{setting}-{'joint' if joint else 'fp32'}-s{seed}",
        "seed": seed,
        "storage": f"sqlite:///{workdir / 'quant.db'}",
        "space": {"name": "derived", "params": params},
        "data": {"entry_point": f"benchmarks.tasks:{task}", "params": {"seed": 0}},
        "supernet": {"checkpoint_dir": str(workdir / "checkpoints")},
        "latency": {"backend": "onnxruntime", "threads": 1, "batch_size": 1},
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms", "direction": "minimize"},
        ],
        "budget": {"trials": trials},
    }


def searched(cfg: dict[str, Any]) -> tuple[StoredSearch, list[TrialRecord], float]:
    """The search's context, its complete trials and its wall time (run unless an earlier run
    in ``--workdir`` finished it)."""
    store = get_store(cfg["storage"])
    if cfg["name"] not in {s.name for s in store.list_searches()}:
        nasprune.run(cfg)
    record = store.get_search(cfg["name"])
    found = store.trials(record.search_id)
    ends = [t.finished_at for t in found if t.finished_at is not None]
    seconds = (max(ends) - min(t.started_at for t in found)).total_seconds() if ends else 0.0
    complete = [t for t in found if t.state == TrialState.COMPLETE]
    return open_stored(store, record), complete, seconds


def measure_fn(space_config: dict[str, Any], url: str, batch: int) -> Measure:
    """Milliseconds of a module (an :class:`Int8Model` as its QDQ model) under ONNX Runtime on
    one thread at ``batch``, relative to the space's largest subnet (the searches' reference)
    times the anchor the searches' store holds for this device: the searches' unit, in
    whatever minute it is taken."""
    backend = create_backend(LatencyConfig(backend="onnxruntime", threads=1, batch_size=batch))
    space = create_space(space_config["name"], **space_config["params"])
    reference = largest_subnet_reference(space)  # as the searches' figures
    input_shape = reference.input_shape
    now = backend.measure_against(reference.module, input_shape, reference).reference_ms
    on = this_device(backend, input_shape)
    anchor = get_store(url).anchor(on, reference.key, now).anchor_ms

    def measure(module: nn.Module) -> float:
        return backend.measure_against(module, input_shape, reference).ratio * anchor

    return measure


@dataclass
class Model:
    """A row's model after the common fine-tuning."""

    module: nn.Module  # fp32 weights
    int8: tuple[str, ...]  # layers that run in int8
    accuracy: float  # test accuracy as deployed
    size: int  # bytes of its ONNX file (QDQ when it has int8 layers)
    latency: dict[int, float]  # batch -> ms, set by the final pass

    def deployed(self, calibration: Sequence[torch.Tensor]) -> nn.Module:
        return Int8Model(self.module, self.int8, calibration) if self.int8 else self.module


class Finisher:
    """Fine-tunes each model the same way (fake-quantized where it has int8 layers), scores it
    as deployed and keeps it for the final timing pass."""

    def __init__(self, ctx: StoredSearch, steps: int) -> None:
        self.ctx, self.steps = ctx, steps
        self.calibration = ctx.int8_calibration
        self.models: dict[str, Model] = {}

    def add(self, key: str, module: nn.Module, int8: Sequence[str], tune: bool = True) -> str:
        """``module`` (a copy) with ``int8`` layers, fine-tuned unless not ``tune``."""
        if key in self.models:
            return key
        module = copy.deepcopy(module).eval()
        if tune:
            fake = FakeInt8(module, list(int8), self.calibration) if int8 else None
            finetune(module, self.ctx.loaders.train, self.steps, LR, seed=0)
            if fake is not None:
                fake.remove()
        test = self.ctx.loaders.test or self.ctx.loaders.val
        if int8:
            quantized = Int8Model(module, int8, self.calibration)
            scored: nn.Module = quantized.deployed()
            size = len(quantized.qdq())
        else:
            scored, size = module, len(onnx_bytes(module, self.calibration[0][:1]))
        accuracy = accuracy_and_loss(scored, test)[0]
        self.models[key] = Model(module.eval(), tuple(int8), accuracy, size, {})
        return key

    def time_all(self, measures: dict[int, Measure]) -> None:
        """One final pass: every model at every batch size, one after the other."""
        for batch, measure in measures.items():
            for model in self.models.values():
                model.latency[batch] = measure(model.deployed(self.calibration))


def int8_latency(
    ctx: StoredSearch, trial: TrialRecord, calibration: Sequence[torch.Tensor], measure: Measure
) -> tuple[nn.Module, float]:
    subnet = ctx.subnet(trial)
    return subnet, measure(Int8Model(subnet, quantizable(subnet), calibration))


def prune_then_quantize(
    ctx: StoredSearch,
    trials: Sequence[TrialRecord],
    limit_ms: float,
    calibration: Sequence[torch.Tensor],
    measure: Measure,
    timed: dict[int, float],
) -> tuple[TrialRecord, nn.Module] | None:
    """The most accurate fp32 network whose all-int8 model measures under ``limit_ms``
    (``timed`` keeps the int8 figures of the networks already quantized)."""
    ranked = sorted(trials, key=lambda t: (-float(t.accuracy or 0.0), t.number))
    for trial in ranked:
        if trial.number not in timed:
            _, timed[trial.number] = int8_latency(ctx, trial, calibration, measure)
        if timed[trial.number] <= limit_ms:
            return trial, ctx.subnet(trial)
    return None


def run_setting(setting: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    task, model = SETTINGS[setting]
    dense, _ = dense_models.trained(model, task)
    config = search_config(setting, True, 0, 1, workdir)
    url = config["storage"]
    measures = {batch: measure_fn(config["space"], url, batch) for batch in BATCHES}
    dense_ms = statistics.median(measures[1](dense) for _ in range(3))
    params = sum(p.numel() for p in dense.parameters())
    print(f"\n## {setting}: dense {model}, {params:,} params, ONNX Runtime fp32 "
          f"{dense_ms:.3f} ms at batch 1", flush=True)  # fmt: skip

    rows: dict[tuple[str, int, float], str | None] = {}
    finisher: Finisher | None = None
    seconds: dict[str, list[float]] = {"fp32": [], "joint": []}
    for seed in range(args.seeds):
        fp32_ctx, fp32_trials, fp32_s = searched(
            search_config(setting, False, seed, args.trials, workdir)
        )
        joint_ctx, joint_trials, joint_s = searched(
            search_config(setting, True, seed, args.trials, workdir)
        )
        seconds["fp32"].append(fp32_s)
        seconds["joint"].append(joint_s)
        print(f"  seed {seed}: fp32 search {len(fp32_trials)} trials in {fp32_s:.0f} s, joint "
              f"{len(joint_trials)} in {joint_s:.0f} s", flush=True)  # fmt: skip
        if finisher is None:
            finisher = Finisher(joint_ctx, args.finetune_steps)
            # the dense model as trained (more steps at lr 1e-3 only shake a converged model),
            # and its int8 model calibrated after training
            finisher.add("dense fp32", dense, [], tune=False)
            finisher.add("dense int8", dense, quantizable(dense), tune=False)
        timed: dict[int, float] = {}
        for share in LIMITS:
            limit = share * dense_ms
            chosen = best_under(fp32_trials, limit)
            rows[("pruned fp32", seed, share)] = None if chosen is None else finisher.add(
                f"fp32:{seed}:{chosen.arch_hash}", fp32_ctx.subnet(chosen), []
            )  # fmt: skip
            found = prune_then_quantize(
                fp32_ctx, fp32_trials, limit, finisher.calibration, measures[1], timed
            )
            rows[("prune-then-quantize", seed, share)] = None if found is None else finisher.add(
                f"ptq:{seed}:{found[0].arch_hash}", found[1], quantizable(found[1])
            )  # fmt: skip
            chosen = best_under(joint_trials, limit)
            if chosen is None:
                rows[("joint", seed, share)] = None
                continue
            layers = joint_ctx.space.int8_layers(chosen.arch)
            rows[("joint", seed, share)] = finisher.add(
                f"joint:{seed}:{chosen.arch_hash}", joint_ctx.subnet(chosen), layers
            )
        print(f"  seed {seed}: {len(timed)} fp32 networks quantized whole to find the "
              f"prune-then-quantize picks", flush=True)  # fmt: skip
    assert finisher is not None
    finisher.time_all(measures)
    report(setting, args, finisher, rows, dense_ms, seconds)
    return {"rows": rows, "models": finisher.models, "dense_ms": dense_ms}


def report(
    setting: str,
    args: argparse.Namespace,
    finisher: Finisher,
    rows: dict[tuple[str, int, float], str | None],
    dense_ms: float,
    seconds: dict[str, list[float]],
) -> None:
    models = finisher.models
    dense = models["dense fp32"]
    print(f"\n| {setting} | limit | test accuracy | ms at batch 1 | ms at batch 64 | speed-up "
          f"(b1) | int8 layers | ONNX file |")  # fmt: skip
    print("|---" * 8 + "|")

    def line(label: str, limit: str, keys: list[str | None]) -> None:
        got = [models[k] for k in keys if k]
        if not got:
            print(f"| {label} | {limit} | none under the limit | | | | | |")
            return
        acc = _spread([m.accuracy for m in got])
        b1 = statistics.median(m.latency[1] for m in got)
        b64 = statistics.median(m.latency[64] for m in got)
        layers = "/".join(f"{len(m.int8)}" for m in got)
        size = statistics.median(m.size for m in got) / 1024
        none = "" if len(got) == len(keys) else f" [{len(keys) - len(got)} none]"
        print(f"| {label} | {limit} | {acc}{none} | {b1:.3f} | {b64:.3f} | "
              f"{dense.latency[1] / b1:.2f}x | {layers} | {size:.1f} KiB |")  # fmt: skip

    line("dense fp32", "-", ["dense fp32"])
    line("dense int8", "-", ["dense int8"])
    for share in LIMITS:
        limit = f"{int(100 * share)}% ({share * dense_ms:.3f} ms)"
        for label in ("pruned fp32", "prune-then-quantize", "joint"):
            line(label, limit, [rows[(label, s, share)] for s in range(args.seeds)])
    fp32_s, joint_s = _mean(seconds["fp32"]), _mean(seconds["joint"])
    print(f"\n  search wall time: fp32 {fp32_s} s, joint {joint_s} s")
    fast = [
        (dense.latency[1] / m.latency[1], m.accuracy)
        for (label, _, _), k in rows.items()
        if label == "joint" and k and (m := models[k]).accuracy >= dense.accuracy - 0.01
    ]
    best = max(fast, default=None)
    print(
        "  fastest joint model within 1 point of the dense fp32 model's accuracy: "
        + ("none" if best is None else f"{best[0]:.2f}x at {best[1]:.1%}")
        + f" (dense fp32 {dense.accuracy:.1%})",
        flush=True,
    )


def _spread(values: Sequence[float]) -> str:
    mean = statistics.mean(values)
    if len(values) == 1:
        return f"{100 * mean:.1f}%"
    return f"{100 * mean:.1f} +- {100 * statistics.stdev(values):.1f}%"


def _mean(values: Sequence[float]) -> str:
    return f"{statistics.mean(values):.0f}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--finetune-steps", type=int, default=150)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="an earlier run's folder: finished searches stay"
    )
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-quant-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"{args.trials} trials a search, {args.seeds} seed(s), {args.finetune_steps} "
          f"fine-tuning steps a model; work in {workdir}", flush=True)  # fmt: skip
    for setting in args.settings:
        run_setting(setting, args, workdir)


if __name__ == "__main__":
    main()
