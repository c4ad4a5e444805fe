"""A search, launched or resumed: resolve the config, load or train the supernet once per
search, rebuild the strategy from the stored history in one pass, then take turns as a worker
(:mod:`nasprune.worker`) until the budget, the time limit or the space is spent.

A strategy keeps no state that the store cannot rebuild (see :class:`strategies.Strategy`), so
a resumed search, or one more worker, starts from the finished trials in one pass, with no ask
per stored trial, and one worker resumed after a kill asks exactly what an uninterrupted run
would have asked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from nasprune.config import SearchConfig
from nasprune.data import make_loaders
from nasprune.errors import SearchError, user_errors
from nasprune.evaluate import calibration_batches
from nasprune.latency import create_backend
from nasprune.latency.recorded import this_device
from nasprune.preparation import evaluation_model, load_space_state
from nasprune.proposer import Proposer
from nasprune.session import Observer, Parts, Session, Silent
from nasprune.trial_metrics import record_reference, screening_predictor
from nasprune.worker import Heartbeat, best, work
from search_spaces import SearchSpace, create_space
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
    reused_supernet: bool
    stopped_because: str  # "budget", "time", "exhausted", "max-trials", "cancelled"
    best: TrialRecord | None = None
    warnings: list[str] = field(default_factory=list)  # said, one line each, by the CLI


def prepare(config: SearchConfig, space: SearchSpace | None = None) -> Parts:
    """Resolve every name in the config, so that a bad one fails before any row is written.

    ``space`` is a space built in Python (``nasprune.derive_space(model, ...)``); it replaces
    the config's and must have the same name and params as the config says.
    """
    space = space_of(config, space)
    if config.evaluation.mode == "prune" and not space.pretrained:
        space.dense_model()  # raises: there is no trained model to cut candidates from
    backend = create_backend(config.latency)
    _strategy(config, space).close()  # validates the strategy's name and params now
    loaders = make_loaders(config.data, space.input_shape, space.num_classes, config.seed)
    return space, backend, loaders


def space_of(config: SearchConfig, space: SearchSpace | None = None) -> SearchSpace:
    """The config's space, or ``space`` after checking that it is the config's."""
    if space is None:
        return create_space(config.space.name, **config.space.params)
    if (space.name, space.params) != (config.space.name, config.space.params):
        raise SearchError(
            f"the space given ({space.name}) is not the one this search was created with; "
            "pass the same model and options"
        )
    return space


def _strategy(config: SearchConfig, space: SearchSpace) -> Strategy:
    return create_strategy(
        config.strategy.name,
        space.dimensions(),
        [o.direction for o in config.objectives],
        config.seed,
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
    space, backend, loaders = parts
    session = Session(
        config,
        store,
        search,
        space,
        backend,
        loaders,
        calibration_batches(
            loaders.train, config.evaluation.bn_calibration_batches, config.data.batch_size
        ),
        config.evaluation.mode,
        remeasure,
        this_device(backend, space.input_shape),
    )
    store.set_search_status(search.search_id, SearchStatus.RUNNING)
    try:
        reused, stopped, new = _run(session, observer, started, max_trials)
    except KeyboardInterrupt:
        store.set_search_status(search.search_id, SearchStatus.PAUSED)
        raise
    except Exception as exc:
        _failed(store, search, exc)
        raise
    completed = store.count_trials(search.search_id, [TrialState.COMPLETE])
    budget = store.get_search(search.name).budget_trials
    status = _status_after(store, search, stopped)
    if status is not None:
        store.set_search_status(search.search_id, status)
    return SearchResult(
        search.name,
        status or SearchStatus.RUNNING,
        completed,
        budget,
        new,
        reused,
        stopped,
        best=best(session),
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
    from nasprune.lifecycle import stored_config
    from nasprune.queries import open_store

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


def _failed(store: Store, search: SearchRecord, exc: Exception) -> None:
    """A worker that cannot go on (its space or model refused, a crash) leaves no search
    ``running`` behind it: failed, with the reason as an event, unless other workers are
    running trials of it (they decide how it ends). ``nasprune resume`` continues it."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    try:
        store.add_event(search.search_id, "failed", f"{type(exc).__name__}: {first}")
        if not store.count_trials(search.search_id, [TrialState.RUNNING]):
            if store.get_search(search.name).status == SearchStatus.RUNNING:
                store.set_search_status(search.search_id, SearchStatus.FAILED)
    except Exception:  # the store itself is gone: the original error says more
        pass


def _status_after(store: Store, search: SearchRecord, stopped: str) -> SearchStatus | None:
    """Completed when the budget or the space is spent; paused by a time limit, or when this
    worker stops early and no other is running a trial; else the search is still running.
    A cancelled search stays cancelled."""
    if stopped == "cancelled" or store.get_search(search.name).status == SearchStatus.CANCELLED:
        return SearchStatus.CANCELLED
    if stopped in ("budget", "exhausted"):
        return SearchStatus.COMPLETED
    if stopped == "time" or not store.count_trials(search.search_id, [TrialState.RUNNING]):
        return SearchStatus.PAUSED
    return None


def _run(
    session: Session, observer: Observer, started: float, max_trials: int | None
) -> tuple[bool, str, int]:
    """Load or train the supernet, rebuild the strategy from the history, then take turns.
    Returns whether the supernet was reused, why the loop stopped, and how many trials this
    worker evaluated."""
    config, store, search, space = session.config, session.store, session.search, session.space
    epochs = config.supernet.epochs
    state = load_space_state(space, store, search, session.loaders, config.seed)
    with _supernet_lock(session):  # the first worker trains; the others load its checkpoint
        session.supernet, reused = evaluation_model(
            config,
            space,
            store,
            session.loaders,
            state,
            on_epoch=lambda epoch, loss: observer.supernet_epoch(epoch, epochs, loss),
        )
    if not reused and config.evaluation.mode == "elastic":
        store.add_event(
            search.search_id, "supernet", f"trained by {session.worker} ({epochs} epochs)"
        )
    record_reference(session)
    session.predictor = screening_predictor(session)
    strategy = _strategy(config, space)
    try:
        proposer = Proposer(strategy, space, config.seed)
        turns = work(session, proposer, observer, started, max_trials)
    finally:
        strategy.close()
    return reused, turns.stopped_because, turns.new_trials


@contextmanager
def _supernet_lock(session: Session) -> Iterator[None]:
    """Hold the search's supernet lock, renewed by a heartbeat, while the body runs: the first
    worker trains and records the checkpoint (with its checksum) in the store; the others wait
    here, then find the checkpoint and load it. A lock whose holder died expires."""
    store, search_id, worker = session.store, session.search.search_id, session.worker
    lease_s = session.config.execution.lease_s
    while not store.acquire_lock(search_id, "supernet", worker, lease_s):
        time.sleep(min(1.0, lease_s / 4))
    renew = Heartbeat(
        lambda: store.acquire_lock(search_id, "supernet", worker, lease_s),
        lease_s / 3,
        "the supernet lock",
    )
    try:
        with renew:
            yield
    finally:
        store.release_lock(search_id, "supernet", worker)
