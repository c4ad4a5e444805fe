"""`nasprune latency-report`: predicted against measured latency for a search's trials.

For every complete trial measured on the device (the search's own, or one given), the
subnetwork's structure is rebuilt from the stored architecture and the device's predictor
(``nasprune calibrate``) predicts it, from its table and the units a search's screen timed on
the device since (the report itself times nothing). The report gives the share within +-10%,
the median and 90th-percentile relative error, how far the machine's speed moved against the
reference network while the trials and the calibration were measured, and a scatter plot.
Trials with int8 layers are predicted with their int8 units against their figures under the
device's int8 key, and the report gives their share apart too.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nasprune.config import stored_config
from nasprune.errors import SearchError, user_errors
from nasprune.evaluation.stored import space_with_state
from nasprune.latency import create_backend
from nasprune.latency.predictor import Model, calibrated, load_predictor, space_key
from nasprune.latency.recorded import SpeedDrift, this_device
from nasprune.latency.units import Unit
from nasprune.quantization import int8_device
from nasprune.queries import device_id, device_key
from nasprune.store_access import StorageArg, open_store
from search_spaces import SearchSpace
from storage import DeviceKey, LatencyRecord, Store, TrialState

WITHIN = 0.10


@dataclass(frozen=True)
class ReportPoint:
    trial: int
    measured_ms: float
    predicted_ms: float
    int8: bool = False  # some of its layers run in int8

    @property
    def error(self) -> float:
        return (self.predicted_ms - self.measured_ms) / self.measured_ms


@dataclass(frozen=True)
class LatencyReport:
    search: str
    device: str
    model: Model  # the predictor's correction
    points: list[ReportPoint]
    unpredicted: int  # measured trials with a unit neither the table nor the store has
    plot: Path | None
    drift: SpeedDrift  # over the trials' figures
    calibration_drift: SpeedDrift  # over the calibration's units and networks

    @property
    def share_within(self) -> float:
        return _share_within(self.points)

    @property
    def int8_share_within(self) -> tuple[float, int] | None:
        """The share within +-10% of the trials with int8 layers, and their number."""
        int8 = [p for p in self.points if p.int8]
        return (_share_within(int8), len(int8)) if int8 else None

    @property
    def median_error(self) -> float:
        return statistics.median(abs(p.error) for p in self.points)

    @property
    def p90_error(self) -> float:
        errors = sorted(abs(p.error) for p in self.points)
        return errors[min(len(errors) - 1, round(0.9 * (len(errors) - 1)))]


def latency_report(
    name: str,
    *,
    device: str | None = None,
    plot: Path | None = None,
    storage: StorageArg = None,
) -> LatencyReport:
    """Predicted against measured latency of ``name``'s complete trials on ``device`` (by
    default this machine, with the search's latency settings); writes a scatter PNG to
    ``plot`` when given."""
    store = open_store(storage)
    with user_errors():
        record = store.get_search(name)
        config = stored_config(record)
        space = space_with_state(config, store=store, record=record)
        if device is None:
            on = this_device(create_backend(config.latency), space.input_shape)
        else:
            on = device_key(store, record, device)
        predictor = load_predictor(store, on, space)
        if predictor is None and calibrated(store, on, space):
            raise SearchError(
                f"the latency calibration of {space.name} on device {device_id(on.device)} was "
                "timed against another reference network (before 2026-12-06 a standard one); "
                "run `nasprune calibrate CONFIG` there again"
            )
        if predictor is None:
            raise SearchError(
                f"no latency calibration of {space.name} on device {device_id(on.device)} "
                f"(batch size {on.batch_size}); run `nasprune calibrate CONFIG` there first"
            )
        trials = [t for t in store.trials(record.search_id, [TrialState.COMPLETE]) if t.latency_key]
        stored_unit = _stored_unit(store, on)
        keys = [str(t.latency_key) for t in trials]
        measured = store.latencies(on, keys), store.latencies(int8_device(on), keys)
        points, missing, figures = [], 0, []
        for trial in trials:
            int8 = space.int8_layers(trial.arch)
            figure = measured[bool(int8)].get(str(trial.latency_key))
            if figure is None:
                continue
            figures.append(figure)
            structure = space.structure(trial.arch)
            try:
                found = predictor.predict(structure, space.input_shape, stored_unit, int8)
            except _NotTimed:
                missing += 1
                continue
            assert found is not None
            point = ReportPoint(trial.number, figure.median_ms, found.latency_ms, bool(int8))
            points.append(point)
        if not points:
            raise SearchError(
                f"search {name!r} has no trials measured on device {device_id(on.device)} "
                f"that the table covers; run `nasprune measure {name}` there"
            )
        drifts = SpeedDrift.of(figures), SpeedDrift.of(_calibration_figures(store, on, space))
        report = LatencyReport(name, on.device, predictor.kind, points, missing, plot, *drifts)
        if plot is not None:
            _scatter(report, plot)
        return report


class _NotTimed(Exception):
    """A unit that neither the calibration nor a search's screen timed on the device."""


def _stored_unit(store: Store, on: DeviceKey) -> Callable[[Unit], float]:
    """A unit's figure from the store (the screen of a search times the units the table lacks
    and files them there), never timed now: the report measures nothing."""

    def stored(unit: Unit) -> float:
        found = store.latencies(on, [unit.key]).get(unit.key)
        if found is None:
            raise _NotTimed(unit.key)
        return found.median_ms

    return stored


def _calibration_figures(store: Store, on: DeviceKey, space: SearchSpace) -> list[LatencyRecord]:
    """The figures of the calibration's units and whole networks (networks: since 0007)."""
    record = store.get_calibration(on, space_key(space))
    if record is None:
        return []
    content = record.content
    keys = [str(k) for k in [*content.get("unit_keys", []), *content.get("network_keys", [])]]
    return [*store.latencies(on, keys).values(), *store.latencies(int8_device(on), keys).values()]


def _share_within(points: list[ReportPoint]) -> float:
    return sum(abs(p.error) <= WITHIN for p in points) / len(points)


def _scatter(report: LatencyReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [p.measured_ms for p in report.points]
    predicted = [p.predicted_ms for p in report.points]
    low, high = min(measured + predicted) * 0.9, max(measured + predicted) * 1.1
    figure, axes = plt.subplots(figsize=(5.5, 5.5), dpi=120)
    axes.fill_between(
        [low, high], [low * 0.9, high * 0.9], [low * 1.1, high * 1.1], color="0.9", label="+-10%"
    )
    axes.plot([low, high], [low, high], color="0.5", linewidth=1)
    fp32 = [p for p in report.points if not p.int8]
    int8 = [p for p in report.points if p.int8]
    for points, color, label in ((fp32, "tab:blue", "trials"), (int8, "tab:orange", "int8 trials")):
        if points:
            axes.scatter(
                [p.measured_ms for p in points], [p.predicted_ms for p in points],
                s=14, color=color, label=label,
            )  # fmt: skip
    axes.set_xlim(low, high)
    axes.set_ylim(low, high)
    axes.set_xlabel("measured latency (ms)")
    axes.set_ylabel("predicted latency (ms)")
    axes.set_title(
        f"{report.search}: {report.share_within:.0%} within +-10%, "
        f"median error {report.median_error:.1%}",
        fontsize=10,
    )
    axes.legend(loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
