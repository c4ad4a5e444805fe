"""Measurements that last: a backend's figure for a subnet, taken from the store when this
device already measured that subnet with the same settings, else measured and stored."""

from __future__ import annotations

from torch import nn

from nasprune.latency.base import LatencyBackend
from storage import DeviceKey, LatencyRecord, Store


def this_device(backend: LatencyBackend, input_shape: tuple[int, ...]) -> DeviceKey:
    """What the backend's figures are figures of: this device, batch size, input, threads."""
    settings = backend.settings
    return DeviceKey(backend.fingerprint(), settings.batch_size, input_shape, settings.threads)


def recorded_latency(
    store: Store,
    backend: LatencyBackend,
    on: DeviceKey,
    module: nn.Module,
    key: str,
    remeasure: bool = False,
    input_shape: tuple[int, ...] | None = None,
) -> tuple[LatencyRecord, bool]:
    """The latency of ``module`` (whose measurements are keyed ``key``) on ``on``, and whether
    it was measured now: the stored figure, unless there is none or ``remeasure``; then
    measured now and stored. A part of a network (a lookup-table unit) is timed on its own
    ``input_shape`` and filed under the network's."""
    if not remeasure:
        stored = store.get_latency(on.device, key, on.batch_size, on.input_shape, on.threads)
        if stored is not None:
            return stored, False
    measured = backend.measure(module, input_shape or on.input_shape)
    record = store.put_latency(
        on.device,
        key,
        on.batch_size,
        on.input_shape,
        on.threads,
        measured.median_ms,
        measured.p90_ms,
        measured.repeats,
        spread=measured.spread,
        noisy=measured.noisy,
    )
    return record, True
