"""The Python API: what the CLI and the HTTP service call.

Launching and resuming searches lives here (it loads torch); the read-only queries live in
:mod:`nasprune.queries`, which loads neither torch nor Optuna nor NNI, and are re-exported.

>>> import nasprune
>>> result = nasprune.run("examples/mlp-digits.yaml")             # doctest: +SKIP
>>> trial = nasprune.best(result.name, max_latency_ms=0.2)         # doctest: +SKIP
>>> nasprune.export(result.name, "small.pt", trial=trial.number)   # doctest: +SKIP
>>> model = nasprune.load_subnet("small.pt")                       # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasprune.config import (
    SearchConfig,
    SpaceConfig,
    check_strategy_params,
    load_config,
    parse_config,
    stored_config,
)
from nasprune.errors import NasPruneError, SearchError, user_errors
from nasprune.lifecycle import record_search, set_budget, versions  # noqa: F401
from nasprune.queries import (  # noqa: F401  (the query half of the API, re-exported)
    Comparison,
    SearchSummary,
    best,
    compare,
    finetuned,
    pareto,
    reference,
    status,
    trial_json,
)
from nasprune.search import Observer, SearchResult, execute, join, prepare
from nasprune.search.executors.local import judged, local_workers
from nasprune.store_access import StorageArg, find_trial, open_store  # noqa: F401
from storage import DuplicateSearchError, SearchRecord, SearchStatus, Store, TrialState

if TYPE_CHECKING:
    from nasprune.finetuning.lottery import LotteryResult
    from search_spaces import SearchSpace


def _as_config(config: str | Path | Mapping[str, Any] | SearchConfig) -> SearchConfig:
    if isinstance(config, SearchConfig):
        check_strategy_params(config)
        return config
    if isinstance(config, Mapping):
        return parse_config(dict(config))
    return load_config(config)


def run(
    config: str | Path | Mapping[str, Any] | SearchConfig,
    *,
    storage: StorageArg = None,
    observer: Observer | None = None,
    resume_if_exists: bool = False,
    space: SearchSpace | None = None,
    remeasure: bool = False,
    workers: int | None = None,
    executor: str | None = None,
    address: str | None = None,
) -> SearchResult:
    """Launch a new search from a config file, mapping or :class:`SearchConfig`.

    ``workers`` (default: the config's ``execution.workers``) local processes work on it,
    this one included: the others are ``nasprune worker`` processes started here. With
    ``executor="ray"`` (default: the config's ``execution.executor``), ``workers`` Ray tasks
    work on it instead, on the cluster at ``address`` (default: a local one).

    With ``resume_if_exists``, a search of the same name and the same config is resumed
    instead of refused (like Optuna's ``load_if_exists``). ``space`` is a space built in
    Python (``nasprune.derive_space(model, input_shape=...)``): it replaces the config's.
    """
    cfg = _as_config(config)
    workers = cfg.execution.workers if workers is None else workers
    executor = executor or cfg.execution.executor
    if executor not in ("local", "ray"):
        raise SearchError(f"unknown executor {executor!r}; use 'local' or 'ray'")
    if executor == "ray":
        from nasprune.search.executors.ray import require_ray

        require_ray()
    if workers > 1 and space is not None:
        raise SearchError(
            "--workers needs a space the worker processes can build from the config; "
            "a space built in Python runs in this process only"
        )
    if space is not None:
        cfg = cfg.model_copy(update={"space": SpaceConfig(name=space.name, params=space.params)})
    with user_errors():
        parts = prepare(cfg, space)  # every name resolves before a row is written
        store = open_store(storage, cfg)
        try:
            search = record_search(store, cfg)
        except DuplicateSearchError:
            existing = store.get_search(cfg.name)
            # Compare as parsed today: a field added since with its default is no change.
            if resume_if_exists and stored_config(existing).config_hash() == cfg.config_hash():
                if executor == "ray":
                    return _on_ray(
                        cfg, store, existing, workers, address or cfg.execution.ray_address
                    )
                with local_workers(existing.name, store.url, workers - 1) as failed:
                    result = execute(cfg, store, existing, parts, observer, remeasure)
                return judged(result, store, failed, workers - 1)
            if resume_if_exists:
                raise SearchError(
                    f"a search named {cfg.name!r} already exists in {store.url} with a different "
                    "config; give the config another name"
                ) from None
            raise SearchError(
                f"a search named {cfg.name!r} already exists in {store.url}; "
                f"`nasprune resume {cfg.name}` continues it, or give the config another name"
            ) from None
        if executor == "ray":
            return _on_ray(cfg, store, search, workers, address or cfg.execution.ray_address)
        with local_workers(search.name, store.url, workers - 1) as failed:
            result = execute(cfg, store, search, parts, observer, remeasure)
        return judged(result, store, failed, workers - 1)


def _on_ray(
    cfg: SearchConfig, store: Store, search: SearchRecord, tasks: int, address: str | None
) -> SearchResult:
    """Run the search's workers as Ray tasks and report how it ended, from the store."""
    from nasprune.search.executors.ray import run_on_ray

    evaluated = run_on_ray(
        search.name,
        store.url,
        tasks,
        address=address,
        gpus=cfg.execution.gpus_per_trial,
        retries=cfg.execution.max_attempts,
    )
    record = store.get_search(search.name)
    completed = store.count_trials(search.search_id, [TrialState.COMPLETE])
    return SearchResult(
        record.name,
        record.status,
        completed,
        record.budget_trials,
        evaluated,
        reused_supernet=False,
        stopped_because="budget" if completed >= record.budget_trials else "exhausted",
        best=best(record.name, storage=store),
    )


def resume(
    name: str,
    *,
    trials: int | None = None,
    storage: StorageArg = None,
    observer: Observer | None = None,
    space: SearchSpace | None = None,
    remeasure: bool = False,
) -> SearchResult:
    """Continue an interrupted search to its total budget (``space``: the same space built in
    Python, for a search launched with one).

    ``trials`` sets a new total budget first: the search ends with that many complete trials
    in all (not that many more). It may be lower than the budget, to shorten the search, but
    not lower than the trials already complete. The config stored with the search keeps its
    original budget, so ``run(config, resume_if_exists=True)`` still recognises it.
    """
    store = open_store(storage)
    with user_errors():
        record = store.get_search(name)
        cfg = stored_config(record)
        parts = prepare(cfg, space)
        if trials is not None:
            record = set_budget(store, record, trials)
        # trials left running by a dead process on this host are retried at once, those of
        # other hosts when their lease expires
        return execute(cfg, store, record, parts, observer, remeasure)


def worker(
    name: str,
    *,
    storage: StorageArg = None,
    observer: Observer | None = None,
    max_trials: int | None = None,
) -> SearchResult:
    """Join the search ``name`` as one more worker, from any machine that reaches its store:
    evaluate its trials until the budget is spent (or ``max_trials`` evaluations)."""
    return join(name, storage=storage, observer=observer, max_trials=max_trials)


def lottery(
    name: str,
    trial: int,
    *,
    rounds: int,
    rate: float,
    steps: int = 500,
    rewind_step: int = 0,
    lr: float = 1e-3,
    reinit: bool = False,
    storage: StorageArg = None,
    progress: Callable[[int, int, float | None], None] | None = None,
    space: SearchSpace | None = None,
) -> LotteryResult:
    """Find a lottery ticket in trial ``trial`` of search ``name``: train, then ``rounds``
    times prune ``rate`` of the remaining conv/linear weights by global magnitude, rewind the
    survivors to their weights at ``rewind_step`` of the first training and train again. Every
    round is recorded as a fine-tuning run; the best becomes the trial's fine-tuned weights
    (what ``export`` writes). ``reinit``: the control, the same masks from a random init.
    See :mod:`nasprune.finetuning.lottery`."""
    from nasprune.finetuning.lottery import lottery_trial

    return lottery_trial(
        name, trial, rounds=rounds, rate=rate, steps=steps, rewind_step=rewind_step, lr=lr,
        reinit=reinit, storage=storage, progress=progress, space=space,
    )  # fmt: skip


def work_on_any(
    *,
    storage: StorageArg = None,
    observer: Observer | None = None,
    poll_s: float = 5.0,
    until_idle: bool = False,
    say: Callable[[str], None] = lambda line: None,
) -> int:
    """Work on every search that has work left (created or running, budget not reached),
    oldest first, as the workers of a service deployment do; when none has, wait ``poll_s``
    and look again, or with ``until_idle`` return. A search that cannot be worked on here (its
    config names a model this machine cannot import) is reported through ``say`` and skipped.
    Returns how many trials this worker evaluated."""
    store = open_store(storage)
    skipped: set[str] = set()
    evaluated = 0
    while True:
        name = _search_with_work(store, skipped)
        if name is None:
            if until_idle:
                return evaluated
            time.sleep(poll_s)
            continue
        try:
            evaluated += worker(name, storage=store, observer=observer).new_trials
        except NasPruneError as exc:
            skipped.add(name)
            say(f"search {name}: {exc}; skipped by this worker")


def _search_with_work(store: Store, skipped: set[str]) -> str | None:
    for record in store.list_searches():
        if record.name in skipped:
            continue
        if record.status not in (SearchStatus.CREATED, SearchStatus.RUNNING):
            continue
        complete = store.count_trials(record.search_id, [TrialState.COMPLETE])
        if complete < record.budget_trials:
            return record.name
    return None
