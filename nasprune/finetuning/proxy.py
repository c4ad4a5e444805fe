"""`nasprune validate-proxy`: how well does the search's cheap accuracy rank candidates?

K complete trials, spread evenly over the search's ranking, are each fine-tuned stand-alone
for the same short budget; Kendall's tau between the search's (proxy) accuracy and the
fine-tuned accuracy says whether the proxy ranks them as training would. The result is kept
with the search (artifact ``proxy_validation:K:STEPS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nasprune.config import Mode
from nasprune.errors import SearchError, user_errors
from nasprune.evaluation.finetune import finetune
from nasprune.evaluation.metrics import accuracy_and_loss
from nasprune.evaluation.stored import open_stored
from nasprune.store_access import StorageArg, open_store
from search_spaces import SearchSpace
from storage import TrialState


@dataclass(frozen=True)
class ProxyPoint:
    trial: int
    proxy: float  # the search's accuracy
    finetuned: float  # after the stand-alone fine-tune


@dataclass(frozen=True)
class ProxyValidation:
    search: str
    mode: Mode
    steps: int
    points: list[ProxyPoint]
    kendall_tau: float
    p_value: float


def spread(count: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(count)``, ends included."""
    if k >= count:
        return list(range(count))
    return sorted({round(i * (count - 1) / (k - 1)) for i in range(k)})


def validate_proxy(
    name: str,
    *,
    samples: int = 8,
    steps: int = 200,
    lr: float = 1e-3,
    storage: StorageArg = None,
    progress: Callable[[int, int], None] | None = None,
    space: SearchSpace | None = None,
) -> ProxyValidation:
    """Fine-tune ``samples`` trials of search ``name`` and rank-correlate with the proxy."""
    from scipy.stats import kendalltau

    if samples < 3:
        raise SearchError(f"--samples must be at least 3 for a rank correlation, got {samples}")
    if steps < 1:
        raise SearchError(f"--steps must be at least 1, got {steps}")
    store = open_store(storage)
    with user_errors():
        record = store.get_search(name)
        trials = [t for t in store.trials(record.search_id) if t.state == TrialState.COMPLETE]
        if len(trials) < 3:
            raise SearchError(f"search {name!r} has {len(trials)} complete trials; 3 are needed")
        trials.sort(key=lambda t: (float(t.accuracy or 0.0), t.number))
        chosen = [trials[i] for i in spread(len(trials), samples)]
        ctx = open_stored(store, record, space)
        points = []
        for done, trial in enumerate(chosen):
            subnet = ctx.subnet(trial)
            finetune(subnet, ctx.loaders.train, steps, lr, seed=ctx.config.seed)
            accuracy, _ = accuracy_and_loss(subnet, ctx.loaders.val)
            points.append(ProxyPoint(trial.number, float(trial.accuracy or 0.0), accuracy))
            if progress is not None:
                progress(done + 1, len(chosen))
        tau, p_value = kendalltau([p.proxy for p in points], [p.finetuned for p in points])
        result = ProxyValidation(
            name, ctx.config.evaluation.mode, steps, points, _finite(tau), _finite(p_value, 1.0)
        )
        store.put_artifact(
            record.search_id,
            f"proxy_validation:{len(points)}:{steps}",
            {
                "mode": result.mode,
                "steps": steps,
                "kendall_tau": result.kendall_tau,
                "p_value": result.p_value,
                "points": [p.__dict__ for p in points],
            },
        )
    return result


def _finite(value: float, default: float = 0.0) -> float:
    value = float(value)
    return value if value == value else default  # NaN when a side has no spread
