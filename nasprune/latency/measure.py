"""`nasprune measure`: a finished search's subnets measured again on this machine.

Accuracy does not depend on the device, latency does: one search can be re-ranked for every
device it will run on. Each trial's subnet is rebuilt from the store exactly as the search
built it, timed by the backend the options name (the search's own by default), and stored
under that device's fingerprint; `nasprune best NAME --device ID` then answers for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nasprune.config import stored_config
from nasprune.errors import user_errors
from nasprune.evaluation.stored import StoredSearch, open_stored
from nasprune.latency import LatencyBackend, create_backend
from nasprune.latency.recorded import SpeedDrift, recorded_latency, this_device
from nasprune.latency.reference import largest_subnet_reference
from nasprune.queries import pareto
from nasprune.store_access import StorageArg, open_store
from storage import DeviceKey, Store, TrialRecord, TrialState

OnMeasured = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class Measured:
    """What `measure` did: where, how many trials, how many figures were new."""

    on: DeviceKey
    trials: int
    measured: int  # timed now
    reused: int  # already in the store for this device and settings
    drift: SpeedDrift  # how the machine's speed moved over these figures


def measure(
    name: str,
    *,
    storage: StorageArg = None,
    all_trials: bool = False,
    remeasure: bool = False,
    progress: OnMeasured | None = None,
    **settings: Any,
) -> Measured:
    """Measure the Pareto front (or, with ``all_trials``, every complete trial) of ``name``
    on this machine. ``settings`` override the search's latency settings (``backend``,
    ``device``, ``threads``, ``batch_size`` ...); the device fingerprint follows from them."""
    store = open_store(storage)
    with user_errors():
        record = store.get_search(name)
        config = stored_config(record)
        changed = {key: value for key, value in settings.items() if value is not None}
        latency = config.latency.model_validate(config.latency.model_dump() | changed)
        backend = create_backend(latency)
        if all_trials:
            trials = store.trials(record.search_id, [TrialState.COMPLETE])
        else:
            trials = pareto(name, storage=store)
        ctx = open_stored(store, record)
        on = this_device(backend, ctx.space.input_shape)
        return _measure_all(store, ctx, backend, on, trials, remeasure, progress)


def _measure_all(
    store: Store,
    ctx: StoredSearch,
    backend: LatencyBackend,
    on: DeviceKey,
    trials: list[TrialRecord],
    remeasure: bool,
    progress: OnMeasured | None,
) -> Measured:
    fresh = reused = 0
    records = []
    reference = largest_subnet_reference(ctx.space)  # as the search's own figures were taken
    for done, trial in enumerate(trials, 1):
        subnet = ctx.subnet(trial)
        key = ctx.space.latency_key(trial.arch, subnet)
        if trial.latency_key != key:
            store.set_latency_key(trial.trial_id, key)
        record, measured = recorded_latency(
            store, backend, on, subnet, key, remeasure, reference=reference
        )
        records.append(record)
        fresh, reused = fresh + measured, reused + (not measured)
        if progress is not None:
            progress(done, len(trials))
    return Measured(on, len(trials), fresh, reused, SpeedDrift.of(records))
