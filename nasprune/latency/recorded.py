"""Measurements that last: a backend's figure for a subnet, taken from the store when this
device already measured that subnet with the same settings, else measured and stored.

A figure is taken against a reference network (``latency.relative``, the default; the
space's largest subnet, see :mod:`nasprune.latency.reference`): the median ratio of the
subnet's time to the reference's, times the reference's anchor figure on this device key,
which the first figure measured there sets. Each figure keeps its ratio, the reference's
figure meanwhile and the machine's drift (its speed then against the anchor's), flagged
beyond the protocol's precision; :class:`SpeedDrift` sums the drift of many figures up in one line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from torch import nn

from nasprune.latency.base import LatencyBackend
from nasprune.latency.reference import ReferenceNetwork, standard_reference
from storage import DeviceKey, LatencyRecord, Referenced, Store


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
    anchor_on: DeviceKey | None = None,
    reference: ReferenceNetwork | None = None,
) -> tuple[LatencyRecord, bool]:
    """The latency of ``module`` (whose measurements are keyed ``key``) on ``on``, and whether
    it was measured now: the stored figure, unless there is none, it was taken against another
    reference, or ``remeasure``; then measured now and stored. A part of a network (a
    lookup-table unit) is timed on its own ``input_shape``, against the network's reference,
    and filed under the network's device key.
    ``anchor_on`` is the device key whose anchor turns ratios into milliseconds, when it is not
    ``on``: int8 models are filed apart from fp32 ones but in the same unit. ``reference`` is
    the network it is timed against: the space's largest subnet where the caller knows the
    space (:func:`largest_subnet_reference`), else the standard network of the input shape."""
    network = None
    if backend.settings.relative:
        network = reference or standard_reference(on.input_shape)
    if not remeasure:
        stored = store.get_latency(on.device, key, on.batch_size, on.input_shape, on.threads)
        if stored is not None and taken_against(stored, network):
            return stored, False
    shape = input_shape or on.input_shape
    referenced: Referenced | None = None
    if network is not None:
        paired = backend.measure_against(module, shape, network)
        anchor = store.anchor(anchor_on or on, network.key, paired.reference_ms).anchor_ms
        measured = paired.latency(anchor)
        drift = anchor / paired.reference_ms - 1.0
        drifted = abs(drift) > backend.settings.precision
        referenced = Referenced(network.key, paired.ratio, paired.reference_ms, drift, drifted)
    else:
        measured = backend.measure(module, shape)
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
        reference=referenced,
    )
    return record, True


def taken_against(record: LatencyRecord, network: ReferenceNetwork | None) -> bool:
    """Whether a stored figure can stand for one taken against ``network`` (None: the
    absolute protocol, which any figure in milliseconds serves): a figure taken against
    another reference is in another unit (its anchor was set at another moment)."""
    if network is None:
        return True
    return record.reference is not None and record.reference.reference_key == network.key


@dataclass(frozen=True)
class SpeedDrift:
    """How far the machine's speed moved against the reference's anchor over some figures."""

    low: float  # the least drift: -0.12 is 12% slower than when the anchor was taken
    high: float  # the greatest
    drifted: int  # figures taken with the drift beyond the protocol's precision
    referenced: int  # figures taken against the reference
    absolute: int  # figures without one (measured before revision 0007, or relative: false)

    @classmethod
    def of(cls, records: Iterable[LatencyRecord]) -> SpeedDrift:
        drifts, absolute, drifted = [], 0, 0
        for record in records:
            if record.reference is None:
                absolute += 1
            else:
                drifts.append(record.reference.drift)
                drifted += record.reference.drifted
        low, high = (min(drifts), max(drifts)) if drifts else (0.0, 0.0)
        return cls(low, high, drifted, len(drifts), absolute)

    def sentence(self) -> str:
        """One line for a command's output."""
        older = f"; {self.absolute} older figures are absolute" if self.absolute else ""
        if not self.referenced:
            return f"no figure was taken against the reference network{older}"
        return (
            f"machine speed moved {self.low:+.0%}..{self.high:+.0%} against the reference "
            f"during these measurements ({self.drifted} of {self.referenced} figures beyond the "
            f"protocol's precision; each is a ratio to the reference, so they still agree){older}"
        )

    def as_json(self) -> dict[str, float | int]:
        return {
            "low": self.low,
            "high": self.high,
            "drifted": self.drifted,
            "referenced": self.referenced,
            "absolute": self.absolute,
        }
