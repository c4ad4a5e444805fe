"""A search, launched or resumed: resolve the config, load or train the supernet once per
search, rebuild the strategy from the stored history in one pass, then take turns as a worker
(:mod:`nasprune.search.loop`) until the budget, the time limit or the space is spent.

A strategy keeps no state that the store cannot rebuild (see :class:`strategies.Strategy`), so
a resumed search, or one more worker, starts from the finished trials in one pass, with no ask
per stored trial, and one worker resumed after a kill asks exactly what an uninterrupted run
would have asked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from nasprune.config import SearchConfig, stored_config
from nasprune.errors import ConfigError, SearchError, user_errors
from nasprune.evaluation.data import make_loaders
from nasprune.evaluation.stored import ready_search, space_of
from nasprune.evaluation.supernet import trained_line
from nasprune.latency import create_backend
from nasprune.latency.layer_times import table_layer_times
from nasprune.latency.recorded import this_device
from nasprune.lifecycle import StoppedBecause, mark_failed, status_after
from nasprune.search.leases import supernet_lock, worker_name
from nasprune.search.loop import best, work
from nasprune.search.proposer import Proposer
from nasprune.search.trial import record_reference, screening_predictor
from nasprune.search.worker import Observer, Parts, Silent, Worker
from nasprune.store_access import open_store
from search_spaces import SearchSpace
from storage import SearchRecord, SearchStatus, Store, TrialRecord, TrialState
from strategies import Strategy, create_strategy

__all__ = ["Observer", "Parts", "SearchResult", "execute", "prepare"]


@dataclass
class SearchResult:
    """How one invocation of run, resume or worker ended."""

    name: str
    status: SearchStatus
    completed: int  # complete trials in the search, by every worker and invocation
    budget: int
    new_trials: int  # trials this invocation evaluated
    reused_supernet: bool  # False also where there is no supernet (prune mode)
    stopped_because: StoppedBecause
    best: TrialRecord | None = None
    warnings: list[str] = field(default_factory=list)  # said, one line each, by the CLI
    importance: list[str] = field(default_factory=list)  # notes of the state fitted now
    supernet: bool = True  # whether the search has a supernet (prune mode cuts the dense model)


def prepare(config: SearchConfig, space: SearchSpace | None = None) -> Parts:
    """Resolve every name in the config, so that a bad one fails before any row is written.

    ``space`` is a space built in Python (``nasprune.derive_space(model, ...)``); it replaces
    the config's and must have the same name and params as the config says.
    """
    space = space_of(config, space)
    if config.evaluation.mode == "prune" and not space.pretrained:
        space.dense_model()  # raises: there is no trained model to cut candidates from
    backend = create_backend(config.latency)
    if space.quantization is not None and not backend.runs_int8:
        raise ConfigError(
            f"the space has int8 layers, which are timed as ONNX Runtime runs them: latency."
            f"backend {config.latency.backend} cannot run int8; set latency.backend: onnxruntime"
        )
    _strategy(config, space).close()  # validates the strategy's name and params now
    loaders = make_loaders(config.data, space.input_shape, space.num_classes, config.seed)
    return space, backend, loaders


def _strategy(config: SearchConfig, space: SearchSpace) -> Strategy:
    return create_strategy(
        config.strategy.name,
        space.dimensions(),
        [o.direction for o in config.objectives],
        config.seed,
        constraints={metric: limit.max for metric, limit in config.constraints.items()},
        objectives=[o.metric for o in config.objectives],
        canonical=space.canonical,
        **config.strategy.params,
    )


def execute(
    config: SearchConfig,
    store: Store,
    search: SearchRecord,
    parts: Parts,
    observer: Observer | None = None,
    remeasure: bool = False,
    max_trials: int | None = None,
) -> SearchResult:
    """Work on ``search`` until its budget, its time limit, ``max_trials`` evaluations or the
    space is spent. With ``remeasure``, latency is measured again even where this device has a
    stored figure."""
    started = time.monotonic()
    observer = observer or Silent()
    store.set_search_status(search.search_id, SearchStatus.RUNNING)
    try:
        worker, stopped, new = _run(
            config, store, search, parts, observer, started, max_trials, remeasure
        )
    except KeyboardInterrupt:
        store.set_search_status(search.search_id, SearchStatus.PAUSED)
        raise
    except Exception as exc:
        mark_failed(store, search, exc)
        raise
    completed = store.count_trials(search.search_id, [TrialState.COMPLETE])
    budget = store.get_search(search.name).budget_trials
    status = status_after(store, search, stopped)
    if status is not None:
        store.set_search_status(search.search_id, status)
    return SearchResult(
        search.name,
        status or SearchStatus.RUNNING,
        completed,
        budget,
        new,
        worker.search.reused_supernet,
        stopped,
        best=best(worker),
        importance=worker.search.fitted_notes or [],
        supernet=worker.search.has_supernet,
    )


def join(
    name: str,
    *,
    storage: str | Store | None = None,
    observer: Observer | None = None,
    max_trials: int | None = None,
) -> SearchResult:
    """One more worker on the stored search ``name`` (``nasprune worker``, a Ray task): its
    config from the store, its parts prepared here, then :func:`execute`."""
    store = open_store(storage)
    with user_errors():
        record = store.get_search(name)
        if record.status == SearchStatus.CANCELLED:
            raise SearchError(
                f"search {name!r} was cancelled; resume it (`nasprune resume {name}`, or POST "
                f"/searches/{name}/resume to the service) before workers join it"
            )
        cfg = stored_config(record)
        return execute(cfg, store, record, prepare(cfg), observer, max_trials=max_trials)


def _run(
    config: SearchConfig,
    store: Store,
    search: SearchRecord,
    parts: Parts,
    observer: Observer,
    started: float,
    max_trials: int | None,
    remeasure: bool,
) -> tuple[Worker, StoppedBecause, int]:
    """Open the stored search (its space's state, the supernet loaded or trained under the
    supernet lock), rebuild the strategy from the history, then take turns. Returns the
    worker, why the loop stopped, and how many trials this worker evaluated."""
    space, backend, loaders = parts
    name, on = worker_name(), this_device(backend, space.input_shape)
    layer_ms = table_layer_times(store, on, space)  # l0's gates weigh layers by the table
    with supernet_lock(store, search.search_id, name, config.execution.lease_s):
        progress = observer.supernet_progress
        stored = ready_search(config, store, search, space, loaders, progress, layer_ms)
    if stored.training is not None:
        store.add_event(search.search_id, "supernet", trained_line(stored.training, name))
    worker = Worker(stored, backend, on, remeasure, name=name)
    record_reference(worker)
    worker.predictor = screening_predictor(worker)
    strategy = _strategy(config, space)
    try:
        proposer = Proposer(strategy, space, config.seed)
        turns = work(worker, proposer, observer, started, max_trials)
    finally:
        strategy.close()
    return worker, turns.stopped_because, turns.new_trials
