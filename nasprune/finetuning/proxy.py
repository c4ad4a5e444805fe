"""`nasprune validate-proxy`: how well does the search's cheap accuracy rank candidates?

K complete trials, spread evenly over the search's ranking, are each fine-tuned stand-alone
for the same short budget; Kendall's tau and Spearman's rho between the search's (proxy)
accuracy and the fine-tuned accuracy say whether the proxy ranks them as training would.

Variants rank the same K subnets by another proxy, against the same fine-tuned accuracies: the
search's config with another evaluation mode or supernet training (``mode=prune``,
``schedule=progressive``, ``steps=300``...), its supernet trained under that recipe (or reused
from the store), so the choice of defaults rests on numbers from one call. The result is kept
with the search (artifact ``proxy_validation:K:STEPS[:xR]:cosine``, with R fine-tunings a
subnet; without ``:cosine`` for a constant learning rate).

The instrument's learning rate decays to 0 over its steps (``cosine``) by default: at a
constant rate a fine-tuning ends anywhere on its trajectory. On OSULeaf's derived CNN (the
README's run 76) two constant-rate fine-tunings of one large subnet averaged 82%, two more
from other seeds 97%, and the instrument repeated at tau +0.26; decayed, at +0.73.

Each fine-tuning is seeded apart from the search's seed, which the candidates' own training
(``evaluation.finetune_steps``) uses: fine-tuned from that seed, a subnet first replays the
batches its candidate trained on, and the instrument shares the proxy's luck. ``repeat``
fine-tunes each subnet a second time with another seed and ranks that against the first: the
instrument's own repeatability. Where fine-tuning twice ranks the subnets at tau 0.5 (a small
validation set, subnets within a few points), no proxy can be expected to rank them better
against one of the two. ``finetunes`` (R) makes the instrument steadier where that is so:
each subnet's fine-tuned accuracy is the mean of R fine-tunings from R seeds (and with
``repeat`` the second is the mean of R more), at R times the cost.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from nasprune.config import LrSchedule, Mode, SearchConfig
from nasprune.errors import SearchError, user_errors
from nasprune.evaluation.finetune import checked_lr_schedule, finetune
from nasprune.evaluation.metrics import accuracy_and_loss
from nasprune.evaluation.stored import StoredSearch, open_stored, ready_search
from nasprune.store_access import StorageArg, open_store
from search_spaces import SearchSpace
from storage import TrialRecord, TrialState

# What a variant may change: its name on the command line, and where it lives in the config.
VARIANT_KEYS = {
    "mode": ("evaluation", "mode"),
    "finetune_steps": ("evaluation", "finetune_steps"),
    "finetune_lr_schedule": ("evaluation", "finetune_lr_schedule"),
    "schedule": ("supernet", "schedule"),
    "steps": ("supernet", "steps"),
    "epochs": ("supernet", "epochs"),
    "patience": ("supernet", "patience"),
    "lr_schedule": ("supernet", "lr_schedule"),
}


REPEATED = "fine-tuned again"  # the label of the instrument's own repeatability
# The label of the search's validation loss (lower ranks higher) as the proxy: the same
# candidates, scored by how sure they are rather than how often they are right. It is what a
# search with a ``loss`` objective ranks by; in the README's runs 72 to 94 it ranked better
# than the accuracy in 6 of 23.
SEARCH_LOSS = "search loss"


@dataclass(frozen=True)
class ProxyPoint:
    trial: int
    proxy: float  # the search's accuracy
    finetuned: float  # after the stand-alone fine-tune (the mean of ``finetunes`` of them)
    variants: dict[str, float] = field(default_factory=dict)  # each variant's proxy accuracy
    again: float | None = None  # fine-tuned a second time, with the next seeds (``repeat``)
    loss: float | None = None  # the search's validation loss, where the trial stored one


@dataclass(frozen=True)
class Ranking:
    """How well one proxy ranks the fine-tuned subnets."""

    label: str  # "search", or the variant ("mode=prune")
    kendall_tau: float
    p_value: float  # of tau
    spearman_rho: float


@dataclass(frozen=True)
class ProxyValidation:
    search: str
    mode: Mode
    steps: int
    points: list[ProxyPoint]
    rankings: list[Ranking]  # the search's own first, then each variant's
    finetunes: int = 1  # fine-tunings (seeds) each fine-tuned accuracy is the mean of
    lr_schedule: LrSchedule = "cosine"  # the fine-tunings' learning rate

    @property
    def kendall_tau(self) -> float:
        return self.rankings[0].kendall_tau

    @property
    def p_value(self) -> float:
        return self.rankings[0].p_value

    @property
    def spearman_rho(self) -> float:
        return self.rankings[0].spearman_rho

    def as_json(self) -> dict[str, Any]:
        return {
            "search": self.search,
            "mode": self.mode,
            "steps": self.steps,
            "finetunes": self.finetunes,
            "lr_schedule": self.lr_schedule,
            "kendall_tau": self.kendall_tau,
            "p_value": self.p_value,
            "spearman_rho": self.spearman_rho,
            "rankings": [r.__dict__ for r in self.rankings],
            "points": [p.__dict__ for p in self.points],
        }


def spread(count: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(count)``, ends included."""
    if k >= count:
        return list(range(count))
    return sorted({round(i * (count - 1) / (k - 1)) for i in range(k)})


def parse_variant(text: str) -> dict[str, Any]:
    """``"mode=prune,schedule=progressive"`` as config changes; unknown keys list the known."""
    changes: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in VARIANT_KEYS:
            raise SearchError(
                f"variant {part!r}: give KEY=VALUE with KEY one of {', '.join(VARIANT_KEYS)}"
            )
        changes[key] = int(value) if value.isdigit() else value
    if not changes:
        raise SearchError("a variant needs at least one KEY=VALUE")
    return changes


def validate_proxy(
    name: str,
    *,
    samples: int = 8,
    steps: int = 200,
    lr: float = 1e-3,
    storage: StorageArg = None,
    progress: Callable[[int, int], None] | None = None,
    space: SearchSpace | None = None,
    variants: Sequence[str] = (),
    repeat: bool = False,
    finetunes: int = 1,
    lr_schedule: str = "cosine",
) -> ProxyValidation:
    """Fine-tune ``samples`` trials of search ``name`` (each ``finetunes`` times, from as many
    seeds, and averaged) and rank-correlate with the proxy (and with each of ``variants``'
    proxies, see :func:`parse_variant`; with ``repeat``, with as many more fine-tunings of the
    same subnets from the next seeds). The search's validation loss is ranked too
    (:data:`SEARCH_LOSS`), where its trials stored one. Each fine-tuning's learning rate
    follows ``lr_schedule`` (``cosine``: decayed to 0 at the last step)."""
    if samples < 3:
        raise SearchError(f"--samples must be at least 3 for a rank correlation, got {samples}")
    if steps < 1:
        raise SearchError(f"--steps must be at least 1, got {steps}")
    if finetunes < 1:
        raise SearchError(f"--finetunes must be at least 1, got {finetunes}")
    schedule = checked_lr_schedule(lr_schedule)
    changes = {text: parse_variant(text) for text in variants}
    store = open_store(storage)
    with user_errors():
        record = store.get_search(name)
        trials = [t for t in store.trials(record.search_id) if t.state == TrialState.COMPLETE]
        if len(trials) < 3:
            raise SearchError(f"search {name!r} has {len(trials)} complete trials; 3 are needed")
        trials.sort(key=lambda t: (float(t.accuracy or 0.0), t.number))
        chosen = [trials[i] for i in spread(len(trials), samples)]
        ctx = open_stored(store, record, space)
        others = {text: _proxies(_variant(ctx, change), chosen) for text, change in changes.items()}
        points = []
        # Seeds the candidates' own training (seeded by the search's seed) never used: from
        # that seed, the instrument replayed their batches and shared their luck.
        seeds = [ctx.config.seed + 1 + i for i in range(finetunes * (2 if repeat else 1))]
        for done, trial in enumerate(chosen):
            subnet = ctx.subnet(trial)  # the search's subnet, built once, copied per seed
            found = [
                _finetuned(ctx, copy.deepcopy(subnet), steps, lr, seed, schedule) for seed in seeds
            ]
            accuracy = statistics.fmean(found[:finetunes])
            again = statistics.fmean(found[finetunes:]) if repeat else None
            mine = {text: proxies[done] for text, proxies in others.items()}
            proxy = float(trial.accuracy or 0.0)
            points.append(ProxyPoint(trial.number, proxy, accuracy, mine, again, trial.loss))
            if progress is not None:
                progress(done + 1, len(chosen))
        rankings = [_ranking("search", [p.proxy for p in points], points)]
        if all(p.loss is not None for p in points):
            rankings.append(_ranking(SEARCH_LOSS, [-(p.loss or 0.0) for p in points], points))
        rankings += [_ranking(t, [p.variants[t] for p in points], points) for t in changes]
        if repeat:
            rankings.append(_ranking(REPEATED, [p.again or 0.0 for p in points], points))
        mode = ctx.config.evaluation.mode
        result = ProxyValidation(name, mode, steps, points, rankings, finetunes, schedule)
        times = f":x{finetunes}" if finetunes > 1 else ""
        # A constant rate keeps the key of the runs from before the schedule.
        decayed = "" if schedule == "constant" else f":{schedule}"
        key = f"proxy_validation:{len(points)}:{steps}{times}{decayed}"
        store.put_artifact(record.search_id, key, result.as_json())
    return result


def _finetuned(
    ctx: StoredSearch, subnet: nn.Module, steps: int, lr: float, seed: int, schedule: LrSchedule
) -> float:
    """``subnet``'s validation accuracy after ``steps`` fine-tuning steps from ``seed``."""
    finetune(subnet, ctx.loaders.train, steps, lr, seed=seed, lr_schedule=schedule)
    return accuracy_and_loss(subnet, ctx.loaders.val)[0]


def _variant(ctx: StoredSearch, change: Mapping[str, Any]) -> StoredSearch:
    """The stored search as the config with ``change`` would evaluate it."""
    data = ctx.config.model_dump(mode="json")
    for key, value in change.items():
        section, field_name = VARIANT_KEYS[key]
        data[section][field_name] = value
        if key == "steps":
            data["supernet"]["epochs"] = None
        elif key == "epochs":
            data["supernet"]["steps"] = None
    config = SearchConfig.model_validate(data)
    return ready_search(config, ctx.store, ctx.record, ctx.space, ctx.loaders)


def _proxies(ctx: StoredSearch, trials: Sequence[TrialRecord]) -> list[float]:
    """Each trial's validation accuracy as ``ctx`` evaluates it (the search's proxy)."""
    return [accuracy_and_loss(ctx.candidate(t.arch)[0], ctx.loaders.val)[0] for t in trials]


def _ranking(label: str, proxy: Sequence[float], points: Sequence[ProxyPoint]) -> Ranking:
    from scipy.stats import kendalltau, spearmanr

    truth = [p.finetuned for p in points]
    tau, p_value = kendalltau(proxy, truth)
    rho = spearmanr(proxy, truth)[0]
    return Ranking(label, _finite(tau), _finite(p_value, 1.0), _finite(rho))


def _finite(value: float, default: float = 0.0) -> float:
    value = float(value)
    return value if value == value else default  # NaN when a side has no spread
