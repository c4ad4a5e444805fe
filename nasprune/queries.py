"""Read-only questions to the store: best, pareto, status, compare, and the stable JSON.

Nothing here imports torch, Optuna or NNI (nor pydantic, nor the SQLAlchemy ORM): a deployment
script that asks ``nasprune best NAME --max-latency-ms 3`` in a loop pays for Python,
SQLAlchemy Core and the query (through :class:`storage.Reader`), not for the deep-learning
stack. The search's config is read as the JSON it was stored as (it was validated when the
search was created).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nasprune.errors import SearchError, user_errors
from nasprune.store_access import ReaderArg, open_reader
from storage import (
    BestQuestion,
    DeviceKey,
    FinetuneRecord,
    Reader,
    SearchRecord,
    Tally,
    TrialRecord,
    TrialState,
)

if TYPE_CHECKING:
    pass

_LIMIT_NAMES = {"latency_ms": "max_latency_ms", "params": "max_params", "macs": "max_macs"}


def objectives_of(record: SearchRecord) -> list[tuple[str, str]]:
    """(metric, direction) of each objective of the stored config, the first one first."""
    stored = record.config.get("objectives") or [{"metric": "accuracy", "direction": "maximize"}]
    return [(str(o["metric"]), str(o["direction"])) for o in stored]


def limits_of_record(record: SearchRecord) -> dict[str, Any]:
    """The stored config's constraints as keyword arguments of :meth:`Reader.best_trial`."""
    constraints = record.config.get("constraints") or {}
    return {_LIMIT_NAMES[m]: float(limit["max"]) for m, limit in constraints.items()}


def best(
    name: str,
    *,
    max_latency_ms: float | None = None,
    max_params: int | None = None,
    max_macs: int | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    storage: ReaderArg = None,
) -> TrialRecord | None:
    """The completed trial that is best on the search's first objective within the limits.

    The limits are the search's own constraints, each replaced by a limit given here on the
    same metric ("what would 3 ms buy?"): ``best``, ``status``, the table printed after a run,
    the service's ``/best`` and the web page all mean this one thing by "best".

    With ``device`` (a fingerprint, its short id, or a unique part of it; see
    :func:`devices`), latency is the trial's measurement on that device from ``nasprune
    measure``, and the record returned carries that figure; ``batch_size`` picks among
    several measured batch sizes.
    """
    store = open_reader(storage)
    with user_errors():
        record = store.get_search(name)
        metric, direction = objectives_of(record)[0]
        on = None if device is None else device_key(store, record, device, batch_size)
        given = {"max_latency_ms": max_latency_ms, "max_params": max_params, "max_macs": max_macs}
        limits = limits_of_record(record) | {k: v for k, v in given.items() if v is not None}
        return store.best_trial(record.search_id, metric, direction, on=on, **limits)


def device_id(fingerprint: str) -> str:
    """A device's short id: the first 8 hex digits of its fingerprint's SHA-256."""
    return hashlib.sha256(fingerprint.encode()).hexdigest()[:8]


def resolve_device(store: Reader, text: str) -> str:
    """The fingerprint that ``text`` names: itself, its short id or a unique part of it."""
    known = [device for device, _, _ in store.devices()]
    exact = [d for d in known if text in (d, device_id(d))]
    found = exact or [d for d in known if text.lower() in d.lower()]
    if len(found) == 1:
        return found[0]
    if not found:
        raise SearchError(
            f"no device {text!r} in this store; `nasprune devices` lists the known ones"
        )
    raise SearchError(
        f"{text!r} matches {len(found)} devices ({', '.join(map(device_id, found))}); "
        "give the short id"
    )


def device_key(
    store: Reader, record: SearchRecord, device: str, batch_size: int | None = None
) -> DeviceKey:
    """The measurements of ``record``'s trials on ``device``: which batch size, input shape
    and threads they were taken with (one setting, or the one ``batch_size`` picks)."""
    fingerprint = resolve_device(store, device)
    settings = [
        key
        for key in store.measured_settings(record.search_id, fingerprint)
        if batch_size is None or key.batch_size == batch_size
    ]
    if len(settings) == 1:
        return settings[0]
    at = "" if batch_size is None else f" at batch size {batch_size}"
    if not settings:
        raise SearchError(
            f"search {record.name!r} has no measurements on device {device_id(fingerprint)}{at}; "
            f"run `nasprune measure {record.name}` on that device"
        )
    sizes = sorted({key.batch_size for key in settings})
    raise SearchError(
        f"search {record.name!r} was measured on {device_id(fingerprint)} at batch sizes "
        f"{sizes}; pick one with --batch-size"
    )


def pareto(name: str, *, storage: ReaderArg = None) -> list[TrialRecord]:
    """The non-dominated trials on the search's objectives (accuracy vs latency if only one)."""
    store = open_reader(storage)
    with user_errors():
        record = store.get_search(name)
        objectives = objectives_of(record)
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


def summaries(store: Reader, records: Sequence[SearchRecord]) -> list[SearchSummary]:
    """The summaries of ``records``, in two queries however many there are: the trials per
    state and time spent of all of them, then their best trials in one union."""
    ids = [r.search_id for r in records]
    tallies = store.tallies(ids)
    questions = []
    for record in records:
        metric, direction = objectives_of(record)[0]
        limits = limits_of_record(record)
        bounds = (limits.get("max_latency_ms"), limits.get("max_params"), limits.get("max_macs"))
        questions.append(BestQuestion(record.search_id, metric, direction, bounds))
    tops = store.best_trials(questions)
    return [
        _summary(record, tallies[record.search_id], tops[record.search_id]) for record in records
    ]


def _summary(record: SearchRecord, tally: Tally, top: TrialRecord | None) -> SearchSummary:
    counts = tally.counts
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
        tally.seconds,
    )


def status(name: str | None = None, *, storage: ReaderArg = None) -> list[SearchSummary]:
    """A summary of one search, or of every search in the store."""
    store = open_reader(storage)
    with user_errors():
        records = [store.get_search(name)] if name else store.list_searches()
        return summaries(store, records)


@dataclass(frozen=True)
class Comparison:
    """A search's best primary metric under each latency limit, for `nasprune compare`, and
    its complete trials' (latency, metric) points in trial order."""

    summary: SearchSummary
    metric: str
    best_under: dict[float, float | None]
    points: list[tuple[float, float]]  # (latency_ms, metric) of complete trials, by number
    maximize: bool = True
    hypervolume: float | None = None  # see :func:`hypervolume`, set by :func:`compare`


def compare(
    names: Sequence[str], *, max_latency_ms: Sequence[float] = (), storage: ReaderArg = None
) -> list[Comparison]:
    """Each search's best under the limits, its front's points, and the hypervolume of every
    front against one reference point shared by all (see :func:`hypervolume`)."""
    store = open_reader(storage)
    rows = []
    with user_errors():
        for name in names:
            record = store.get_search(name)
            metric, direction = objectives_of(record)[0]
            under = {}
            for limit in max_latency_ms:
                top = store.best_trial(record.search_id, metric, direction, max_latency_ms=limit)
                under[limit] = None if top is None else getattr(top, metric)
            points = [
                (float(t.latency_ms), float(getattr(t, metric)))
                for t in store.trials(record.search_id, [TrialState.COMPLETE])
                if t.latency_ms is not None and getattr(t, metric, None) is not None
            ]
            summary = summaries(store, [record])[0]
            rows.append(Comparison(summary, metric, under, points, direction == "maximize"))
    slowest = max((ms for row in rows for ms, _ in row.points), default=0.0)
    return [
        dataclasses.replace(row, hypervolume=hypervolume(row.points, slowest * HV_MARGIN))
        if row.maximize and slowest > 0 else row
        for row in rows
    ]  # fmt: skip


HV_MARGIN = 1.05  # the reference latency: the slowest trial of the compared searches, plus 5%


def hypervolume(points: Sequence[tuple[float, float]], reference_ms: float) -> float:
    """The area that ``(latency_ms, value)`` points dominate (lower latency, higher value) up
    to the reference point ``(reference_ms, 0)``, with latency as a share of ``reference_ms``:
    a front of value 1.0 at no latency scores 1.0. Points at or past the reference add
    nothing; so compared searches share one reference, the slowest trial among them."""
    inside = sorted((ms / reference_ms, value) for ms, value in points if ms < reference_ms)
    area, best = 0.0, 0.0
    for i, (share, value) in enumerate(inside):
        best = max(best, value)
        upper = inside[i + 1][0] if i + 1 < len(inside) else 1.0
        area += (upper - share) * best
    return area


def reference(name: str, *, storage: ReaderArg = None) -> dict[str, float] | None:
    """Metrics of the dense (largest) subnet, recorded when the search first ran."""
    store = open_reader(storage)
    with user_errors():
        record = store.get_search(name)
        for event in store.events(record.search_id):
            if event.kind == "reference":
                return dict(json.loads(event.message))
    return None


@dataclass(frozen=True)
class Device:
    """A device the store has latency measurements for (``nasprune devices``)."""

    device_id: str  # short: the first 8 hex digits of the fingerprint's SHA-256
    fingerprint: str
    networks: int  # measured whole networks (trials, references)
    units: int  # measured lookup-table units (``nasprune calibrate``)


def devices(*, storage: ReaderArg = None) -> list[Device]:
    """The devices the store has latency measurements for, with their counts."""
    store = open_reader(storage)
    with user_errors():
        return [Device(device_id(d), d, n, u) for d, n, u in store.devices()]


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


def finetune_json(run: FinetuneRecord) -> dict[str, Any]:
    """The stable JSON form of a fine-tuning run (``finetuned`` of a trial in ``best``)."""
    return {
        "accuracy": run.accuracy,
        "test_accuracy": run.test_accuracy,
        "steps": run.steps_done,
        "settings": run.settings,
        "path": run.path,
    }


def best_json(
    name: str, device: str | None, trial: TrialRecord | None, run: FinetuneRecord | None
) -> dict[str, Any]:
    """``nasprune best --json`` and the service's ``/best``: one JSON, made here for both."""
    found = None
    if trial is not None:
        found = trial_json(trial) | {"finetuned": None if run is None else finetune_json(run)}
    return {"search": name, "device": device, "trial": found}


def finetuned(
    name: str, trials: Sequence[TrialRecord], *, storage: ReaderArg = None
) -> dict[int, FinetuneRecord]:
    """Trial number -> its newest complete fine-tuning run, for those of ``trials`` that have
    one (``nasprune finetune``)."""
    store = open_reader(storage)
    found = {}
    with user_errors():
        store.get_search(name)
        for trial in trials:
            run = store.get_finetune(trial.trial_id)
            if run is not None:
                found[trial.number] = run
    return found
