"""The Python API: what the CLI and the HTTP service call.

>>> import nasprune
>>> result = nasprune.run("examples/mlp-digits.yaml")             # doctest: +SKIP
>>> trial = nasprune.best(result.name, max_latency_ms=0.2)         # doctest: +SKIP
>>> nasprune.export(result.name, "small.pt", trial=trial.number)   # doctest: +SKIP
>>> model = nasprune.load_subnet("small.pt")                       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasprune.config import (
    SearchConfig,
    SpaceConfig,
    load_config,
    parse_config,
    resolve_storage,
)
from nasprune.errors import SearchError, StoreError, user_errors
from nasprune.search import INTERRUPTED, Observer, Parts, SearchResult, execute, limits_of, prepare
from storage import (
    DuplicateSearchError,
    FinetuneRecord,
    SearchRecord,
    Store,
    TrialRecord,
    TrialState,
    get_store,
)

if TYPE_CHECKING:
    from search_spaces import SearchSpace

StorageArg = str | Store | None
INTERRUPTED_REASON = f"{INTERRUPTED}: the process running it stopped"


def open_store(storage: StorageArg = None, config: SearchConfig | None = None) -> Store:
    """The store that ``storage`` names: an instance, a URL, or the default resolution."""
    if isinstance(storage, Store):
        return storage
    with user_errors():
        return get_store(resolve_storage(storage, config))


def _as_config(config: str | Path | Mapping[str, Any] | SearchConfig) -> SearchConfig:
    if isinstance(config, SearchConfig):
        return config
    if isinstance(config, Mapping):
        return parse_config(dict(config))
    return load_config(config)


def _versions() -> dict[str, str]:
    found = {}
    for package in ("nasprune", "torch", "optuna", "nni", "sqlalchemy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "absent"
    return found


def run(
    config: str | Path | Mapping[str, Any] | SearchConfig,
    *,
    storage: StorageArg = None,
    observer: Observer | None = None,
    resume_if_exists: bool = False,
    space: SearchSpace | None = None,
) -> SearchResult:
    """Launch a new search from a config file, mapping or :class:`SearchConfig`.

    With ``resume_if_exists``, a search of the same name and the same config is resumed
    instead of refused (like Optuna's ``load_if_exists``). ``space`` is a space built in
    Python (``nasprune.derive_space(model, input_shape=...)``): it replaces the config's.
    """
    cfg = _as_config(config)
    if space is not None:
        cfg = cfg.model_copy(update={"space": SpaceConfig(name=space.name, params=space.params)})
    with user_errors():
        parts = prepare(cfg, space)  # every name resolves before a row is written
        store = open_store(storage, cfg)
        try:
            search = store.create_search(
                cfg.name,
                cfg.model_dump(mode="json"),
                cfg.config_hash(),
                cfg.space.name,
                cfg.strategy.name,
                cfg.budget.trials,
                _versions(),
            )
        except DuplicateSearchError:
            existing = store.get_search(cfg.name)
            if resume_if_exists and existing.config_hash == cfg.config_hash():
                return _continue(cfg, store, existing, parts, observer)
            if resume_if_exists:
                raise SearchError(
                    f"a search named {cfg.name!r} already exists in {store.url} with a different "
                    "config; give the config another name"
                ) from None
            raise SearchError(
                f"a search named {cfg.name!r} already exists in {store.url}; "
                f"`nasprune resume {cfg.name}` continues it, or give the config another name"
            ) from None
        return execute(cfg, store, search, parts, observer)


def stored_config(record: SearchRecord) -> SearchConfig:
    return parse_config(record.config, source=f"stored config of search {record.name!r}")


def _continue(
    cfg: SearchConfig,
    store: Store,
    record: SearchRecord,
    parts: Parts,
    observer: Observer | None,
) -> SearchResult:
    """Fail the trials a dead process left running (they are retried), then carry on."""
    store.fail_running_trials(record.search_id, INTERRUPTED_REASON)
    return execute(cfg, store, record, parts, observer)


def resume(
    name: str,
    *,
    storage: StorageArg = None,
    observer: Observer | None = None,
    space: SearchSpace | None = None,
) -> SearchResult:
    """Continue an interrupted search to its total budget (``space``: the same space built in
    Python, for a search launched with one)."""
    store = open_store(storage)
    with user_errors():
        record = store.get_search(name)
        cfg = stored_config(record)
        parts = prepare(cfg, space)
        return _continue(cfg, store, record, parts, observer)


def best(
    name: str,
    *,
    max_latency_ms: float | None = None,
    max_params: int | None = None,
    max_macs: int | None = None,
    storage: StorageArg = None,
) -> TrialRecord | None:
    """The completed trial that is best on the search's first objective within the limits."""
    store = open_store(storage)
    with user_errors():
        record = store.get_search(name)
        first = stored_config(record).objectives[0]
        return store.best_trial(
            record.search_id,
            first.metric,
            first.direction,
            max_latency_ms=max_latency_ms,
            max_params=max_params,
            max_macs=max_macs,
        )


def pareto(name: str, *, storage: StorageArg = None) -> list[TrialRecord]:
    """The non-dominated trials on the search's objectives (accuracy vs latency if only one)."""
    store = open_store(storage)
    with user_errors():
        record = store.get_search(name)
        objectives = [(o.metric, o.direction) for o in stored_config(record).objectives]
        if len(objectives) == 1:
            objectives.append(("latency_ms", "minimize"))
        return store.pareto_front(record.search_id, objectives)


@dataclass(frozen=True)
class SearchSummary:
    """One search as `nasprune status` and `compare` show it."""

    name: str
    status: str
    strategy: str
    space: str
    budget: int
    complete: int
    failed: int
    infeasible: int
    running: int
    best: TrialRecord | None
    eval_s: float | None  # seconds spent evaluating trials; None before the first trial

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "strategy": self.strategy,
            "space": self.space,
            "budget": self.budget,
            "complete": self.complete,
            "failed": self.failed,
            "infeasible": self.infeasible,
            "running": self.running,
            "best": None if self.best is None else trial_json(self.best),
            "eval_s": self.eval_s,
        }


def _summary(store: Store, record: SearchRecord) -> SearchSummary:
    counts = {s: store.count_trials(record.search_id, [s]) for s in TrialState}
    cfg = stored_config(record)
    first = cfg.objectives[0]
    top = store.best_trial(record.search_id, first.metric, first.direction, **limits_of(cfg))
    evaluating = store.trial_seconds(record.search_id) if sum(counts.values()) else None
    return SearchSummary(
        record.name,
        str(record.status.value),
        record.strategy,
        record.space,
        record.budget_trials,
        counts[TrialState.COMPLETE],
        counts[TrialState.FAILED],
        counts[TrialState.INFEASIBLE],
        counts[TrialState.RUNNING],
        top,
        evaluating,
    )


def status(name: str | None = None, *, storage: StorageArg = None) -> list[SearchSummary]:
    """A summary of one search, or of every search in the store."""
    store = open_store(storage)
    with user_errors():
        records = [store.get_search(name)] if name else store.list_searches()
        return [_summary(store, r) for r in records]


@dataclass(frozen=True)
class Comparison:
    """A search's best primary metric under each latency limit, for `nasprune compare`."""

    summary: SearchSummary
    metric: str
    best_under: dict[float, float | None]


def compare(
    names: Sequence[str], *, max_latency_ms: Sequence[float] = (), storage: StorageArg = None
) -> list[Comparison]:
    store = open_store(storage)
    rows = []
    with user_errors():
        for name in names:
            record = store.get_search(name)
            first = stored_config(record).objectives[0]
            under = {}
            for limit in max_latency_ms:
                top = store.best_trial(
                    record.search_id, first.metric, first.direction, max_latency_ms=limit
                )
                under[limit] = None if top is None else getattr(top, first.metric)
            rows.append(Comparison(_summary(store, record), first.metric, under))
    return rows


def reference(name: str, *, storage: StorageArg = None) -> dict[str, float] | None:
    """Metrics of the dense (largest) subnet, recorded when the search first ran."""
    import json

    store = open_store(storage)
    with user_errors():
        record = store.get_search(name)
        for event in store.events(record.search_id):
            if event.kind == "reference":
                return dict(json.loads(event.message))
    return None


def trial_json(trial: TrialRecord) -> dict[str, Any]:
    """The stable JSON form of a trial (documented in the README)."""
    return {
        "number": trial.number,
        "state": trial.state.value,
        "arch": trial.arch,
        "arch_hash": trial.arch_hash,
        "accuracy": trial.accuracy,
        "loss": trial.loss,
        "latency_ms": trial.latency_ms,
        "latency_p90_ms": trial.latency_p90_ms,
        "params": trial.params,
        "macs": trial.macs,
        "duration_s": trial.duration_s,
        "metrics": trial.metrics,
    }


def finetuned(
    name: str, trials: Sequence[TrialRecord], *, storage: StorageArg = None
) -> dict[int, FinetuneRecord]:
    """Trial number -> its newest complete fine-tuning run, for those of ``trials`` that have
    one (``nasprune finetune``)."""
    store = open_store(storage)
    found = {}
    with user_errors():
        store.get_search(name)
        for trial in trials:
            run = store.get_finetune(trial.trial_id)
            if run is not None:
                found[trial.number] = run
    return found


def find_trial(store: Store, record: SearchRecord, number: int) -> TrialRecord:
    """Complete trial ``number`` of a search, or an error that says why not."""
    trial = store.get_trial(record.search_id, number)
    if trial is None:
        raise StoreError(f"search {record.name!r} has no trial {number}")
    if trial.state != TrialState.COMPLETE:
        raise SearchError(f"trial {number} of {record.name!r} is {trial.state.value}, not complete")
    return trial
