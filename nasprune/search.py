"""The search loop: ask, screen, evaluate, measure, tell, commit; and resume by replay.

A strategy keeps no state that the store cannot rebuild. Resuming builds a fresh strategy with
the same seed and replays the stored trials through it in order (ask, then tell the stored
result), so the continuation asks exactly what an uninterrupted run would have asked. A trial
that a killed process left running is marked failed as *interrupted*; replay stops at its
architecture and the resumed loop evaluates that architecture again first.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from nasprune.config import SearchConfig
from nasprune.data import Loaders, make_loaders
from nasprune.errors import SearchError
from nasprune.evaluate import accuracy_and_loss, calibration_batches
from nasprune.latency import LatencyBackend, create_backend
from nasprune.latency.predictor import Predictor, load_predictor, unit_timer
from nasprune.latency.recorded import recorded_latency, this_device
from nasprune.preparation import (
    candidate,
    evaluation_model,
    load_space_state,
)
from nasprune.proposer import INTERRUPTED, Candidate, Exhausted, Proposer, Values
from nasprune.queries import limits_of_record
from search_spaces import Architecture, SearchSpace, arch_hash, create_space
from search_spaces.derived import nonzero_params
from storage import DeviceKey, SearchRecord, SearchStatus, Store, TrialRecord, TrialState
from strategies import create_strategy


class Observer(Protocol):
    """What the loop reports to a progress display (the CLI's rich bar, or nothing)."""

    def supernet_epoch(self, epoch: int, epochs: int, loss: float) -> None: ...
    def trial_done(
        self, trial: TrialRecord, completed: int, budget: int, best: float | None
    ) -> None: ...


class _Silent:
    def supernet_epoch(self, epoch: int, epochs: int, loss: float) -> None:
        pass

    def trial_done(
        self, trial: TrialRecord, completed: int, budget: int, best: float | None
    ) -> None:
        pass


@dataclass
class SearchResult:
    """How one invocation of run or resume ended."""

    name: str
    status: SearchStatus
    completed: int  # complete trials in the search, this invocation and earlier ones
    budget: int
    new_trials: int  # trials this invocation created
    reused_supernet: bool
    stopped_because: str  # "budget", "time", "exhausted"
    best: TrialRecord | None = None


@dataclass
class _Session:
    """Everything one invocation needs, built before the loop starts."""

    config: SearchConfig
    store: Store
    search: SearchRecord
    space: SearchSpace
    backend: LatencyBackend
    loaders: Loaders
    calibration: list[torch.Tensor]
    mode: str = "elastic"  # elastic | prune, the config's evaluation.mode
    remeasure: bool = False  # measure latency again even where a stored figure exists
    on: DeviceKey = DeviceKey("", 0, (), 0)  # what the backend measures: set from it
    predictor: Predictor | None = None  # screens by predicted latency, when calibrated
    supernet: nn.Module = field(default_factory=nn.Module)  # set once loaded or trained


Parts = tuple[SearchSpace, LatencyBackend, Loaders]  # what prepare() resolves from a config


def prepare(config: SearchConfig, space: SearchSpace | None = None) -> Parts:
    """Resolve every name in the config, so that a bad one fails before any row is written.

    ``space`` is a space built in Python (``nasprune.derive_space(model, ...)``); it replaces
    the config's and must have the same name and params as the config says.
    """
    space = space_of(config, space)
    if config.evaluation.mode == "prune" and not space.pretrained:
        space.dense_model()  # raises: there is no trained model to cut candidates from
    backend = create_backend(config.latency)
    # Validates the strategy name and params now; the loop builds its own fresh instance.
    create_strategy(
        config.strategy.name,
        space.dimensions(),
        _directions(config),
        config.seed,
        **config.strategy.params,
    ).close()
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


def execute(
    config: SearchConfig,
    store: Store,
    search: SearchRecord,
    parts: Parts,
    observer: Observer | None = None,
    remeasure: bool = False,
) -> SearchResult:
    """Run ``search`` until its budget, its time limit or the space is spent. With
    ``remeasure``, latency is measured again even where this device has a stored figure."""
    started = time.monotonic()
    observer = observer or _Silent()
    space, backend, loaders = parts
    session = _Session(
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
        reused, stopped, new = _run(session, observer, started)
    except KeyboardInterrupt:
        store.set_search_status(search.search_id, SearchStatus.PAUSED)
        raise
    completed = store.count_trials(search.search_id, [TrialState.COMPLETE])
    status = SearchStatus.PAUSED if stopped == "time" else SearchStatus.COMPLETED
    store.set_search_status(search.search_id, status)
    return SearchResult(
        search.name,
        status,
        completed,
        search.budget_trials,
        new,
        reused,
        stopped,
        best=_best(session),
    )


def _run(session: _Session, observer: Observer, started: float) -> tuple[bool, str, int]:
    """Load or train the supernet, rebuild the strategy by replay, then loop. Returns whether
    the supernet was reused, why the loop stopped, and how many trials it created."""
    config, store, search, space = session.config, session.store, session.search, session.space
    epochs = config.supernet.epochs
    state = load_space_state(space, store, search, session.loaders, config.seed)
    session.supernet, reused = evaluation_model(
        config,
        space,
        store,
        session.loaders,
        state,
        on_epoch=lambda epoch, loss: observer.supernet_epoch(epoch, epochs, loss),
    )
    _record_reference(session)
    session.predictor = _screening_predictor(session)
    strategy = create_strategy(
        config.strategy.name,
        space.dimensions(),
        _directions(config),
        config.seed,
        **config.strategy.params,
    )
    try:
        proposer = Proposer(strategy, space, config.seed)
        pending = proposer.replay(
            store.trials(search.search_id),
            told=lambda trial: _told_values(config, trial),
            diverged=lambda trial: store.add_event(
                search.search_id,
                "replay",
                f"trial {trial.number}: the strategy now asks a different architecture",
            ),
        )
        stopped, new = _loop(session, proposer, pending, observer, started)
    finally:
        strategy.close()
    return reused, stopped, new


def _directions(config: SearchConfig) -> list[str]:
    return [o.direction for o in config.objectives]


def _told_values(config: SearchConfig, trial: TrialRecord) -> Values:
    """What the strategy learns from a finished trial: objective values, or None if it failed,
    was screened out, or broke a measured constraint."""
    if trial.state != TrialState.COMPLETE:
        return None
    for metric, limit in config.constraints.items():
        value = getattr(trial, metric)
        if value is not None and value > limit.max:
            return None
    return [float(getattr(trial, o.metric)) for o in config.objectives]


def _loop(
    session: _Session,
    proposer: Proposer,
    pending: Candidate | None,
    observer: Observer,
    started: float,
) -> tuple[str, int]:
    """Evaluate candidates until the budget, the space or the time limit is spent. The time
    limit counts from ``started`` (the invocation's start, training included) and is checked
    after each trial, so that every invocation makes progress."""
    config, store, search = session.config, session.store, session.search
    budget = search.budget_trials  # the config's, unless `resume --trials` changed it
    new = 0
    completed = store.count_trials(search.search_id, [TrialState.COMPLETE])
    failures = 0
    best = _best_value(session)
    while completed < budget:
        try:
            candidate = pending if pending is not None else proposer.next()
        except Exhausted:
            return "exhausted", new
        pending = None
        trial = _run_trial(session, candidate.arch)
        new += 1
        proposer.inform(candidate, _told_values(config, trial))
        if trial.state == TrialState.COMPLETE:
            completed += 1
            best = _best_value(session)
        elif trial.state == TrialState.FAILED:
            failures += 1
            if failures > max(3, budget // 10):
                store.set_search_status(search.search_id, SearchStatus.FAILED)
                raise SearchError(
                    f"search {search.name!r}: {failures} trials failed; last: {trial.error}"
                )
        observer.trial_done(trial, completed, budget, best)
        if config.budget.time is not None and time.monotonic() - started >= config.budget.time:
            return ("time" if completed < budget else "budget"), new
    return "budget", new


def _run_trial(session: _Session, arch: Architecture) -> TrialRecord:
    """Claim a trial, evaluate it, and commit its result; a crash of the evaluation is recorded
    as a failed trial, an interrupt as an interrupted one (and re-raised)."""
    store = session.store
    worker = f"{socket.gethostname()}:{os.getpid()}"
    trial = store.create_trial(session.search.search_id, arch, arch_hash(arch), worker)
    try:
        state, metrics, latency_key = _evaluate(session, trial)
    except KeyboardInterrupt:
        store.finish_trial(trial.trial_id, TrialState.FAILED, error=f"{INTERRUPTED}: keyboard")
        raise
    except Exception as exc:  # an evaluation that crashes is a failed trial, not a dead search
        return store.finish_trial(
            trial.trial_id, TrialState.FAILED, error=f"{type(exc).__name__}: {exc}"
        )
    return store.finish_trial(trial.trial_id, state, metrics, latency_key=latency_key)


def _evaluate(
    session: _Session, trial: TrialRecord
) -> tuple[TrialState, dict[str, Any], str | None]:
    """Screen on exact params and MACs, then accuracy with inherited weights, then latency.
    Returns the state, the metrics and the key of the trial's latency measurements."""
    space, config, arch = session.space, session.config, trial.arch
    metrics: dict[str, Any] = {"params": space.num_params(arch), "macs": space.macs(arch)}
    violated = [
        m
        for m in ("params", "macs")
        if m in config.constraints and metrics[m] > config.constraints[m].max
    ]
    if violated:
        metrics["violated"] = ",".join(violated)
        return TrialState.INFEASIBLE, metrics, None
    if session.predictor is not None:
        if _screen(session, arch, metrics) is not None:
            return TrialState.INFEASIBLE, metrics, None

    def heartbeat() -> None:
        session.store.heartbeat(trial.trial_id)

    measured, latency_key = _measure(session, arch, heartbeat)
    return TrialState.COMPLETE, metrics | measured, latency_key


def _measure(
    session: _Session, arch: Architecture, heartbeat: Callable[[], None]
) -> tuple[dict[str, float], str]:
    """Accuracy and loss after BN recalibration (and, in prune mode, fine-tuning), then the
    latency of the extracted, physically smaller module (see :func:`preparation.candidate`)."""
    evaluated, subnet = candidate(
        session.config,
        session.mode,
        session.space,
        session.supernet,
        arch,
        session.calibration,
        session.loaders,
        heartbeat,
    )
    accuracy, loss = accuracy_and_loss(evaluated, session.loaders.val)
    heartbeat()
    metrics, latency_key = _metrics_of(session, subnet, arch)
    return metrics | {"accuracy": accuracy, "loss": loss}, latency_key


def _metrics_of(
    session: _Session, subnet: nn.Module, arch: Architecture
) -> tuple[dict[str, float], str]:
    """Latency of the extracted subnet, held-out accuracy, and its non-zero weights when the
    space has a sparsity dimension; and the key of its latency measurements."""
    latency_key = session.space.latency_key(arch, subnet)
    timed, _ = recorded_latency(
        session.store, session.backend, session.on, subnet, latency_key, session.remeasure
    )
    metrics = {"latency_ms": timed.median_ms, "latency_p90_ms": timed.p90_ms}
    if timed.spread is not None:
        metrics["latency_spread"] = timed.spread
    if timed.noisy:
        metrics["latency_noisy"] = 1.0  # the median's CI never got within latency.precision
    if session.loaders.test is not None:
        metrics["test_accuracy"] = accuracy_and_loss(subnet, session.loaders.test)[0]
    if "sparsity" in arch:
        metrics["nonzero_params"] = float(nonzero_params(subnet))
        metrics["sparsity"] = float(arch["sparsity"])
    return metrics, latency_key


def _screening_predictor(session: _Session) -> Predictor | None:
    """The device's predictor when the search has a latency limit to screen against."""
    config, store, search = session.config, session.store, session.search
    if "latency_ms" not in config.constraints or not config.latency.screen:
        return None
    predictor = load_predictor(store, session.on, session.space)
    if predictor is None and not any(e.kind == "screen" for e in store.events(search.search_id)):
        store.add_event(
            search.search_id,
            "screen",
            f"no latency calibration of {session.space.name} for this device: every candidate "
            "is evaluated; `nasprune calibrate CONFIG` lets the search skip hopeless ones",
        )
    return predictor


def _screen(session: _Session, arch: Architecture, metrics: dict[str, Any]) -> str | None:
    """Predict the candidate's latency; when it exceeds the limit by more than the margin,
    record why in ``metrics`` and return the reason. Units missing from the table are timed
    and added to it. The prediction is kept as ``predicted_latency_ms``, never as latency."""
    assert session.predictor is not None
    limit = session.config.constraints["latency_ms"].max
    margin = session.config.latency.screen_margin
    store, backend, on = session.store, session.backend, session.on
    with torch.random.fork_rng(devices=[]):  # the strategy's and the loop's draws stay as they were
        structure = session.space.structure(arch)
    found = session.predictor.predict(
        structure, session.space.input_shape, unit_timer(store, backend, on)
    )
    if found is None:
        return None
    metrics["predicted_latency_ms"] = found.latency_ms
    if found.latency_ms <= limit * (1 + margin):
        return None
    metrics["violated"] = "latency_ms (predicted)"
    reason = (
        f"screened: predicted {found.latency_ms:.3g} ms > limit {limit:g} ms + "
        f"{margin:.0%} margin; accuracy not evaluated"
    )
    metrics["screened"] = reason
    return reason


def _record_reference(session: _Session) -> None:
    """Evaluate the dense model once per search, as the yardstick `best` shows: the user's
    own trained model as it is for a derived space, else the supernet's largest subnet."""
    search_id = session.search.search_id
    if any(e.kind == "reference" for e in session.store.events(search_id)):
        return
    largest = session.space.largest()
    if session.space.pretrained:
        dense = session.space.dense_model().eval()
        accuracy, loss = accuracy_and_loss(dense, session.loaders.val)
        metrics = _metrics_of(session, dense, largest)[0] | {"accuracy": accuracy, "loss": loss}
    else:
        metrics = _measure(session, largest, lambda: None)[0]
    metrics.update(params=session.space.num_params(largest), macs=session.space.macs(largest))
    session.store.add_event(search_id, "reference", json.dumps(metrics))


def _primary(config: SearchConfig) -> tuple[str, str]:
    first = config.objectives[0]
    return first.metric, first.direction


def _best(session: _Session) -> TrialRecord | None:
    metric, direction = _primary(session.config)
    return session.store.best_trial(
        session.search.search_id, metric, direction, **limits_of_record(session.search)
    )


def _best_value(session: _Session) -> float | None:
    best = _best(session)
    return None if best is None else getattr(best, _primary(session.config)[0])
