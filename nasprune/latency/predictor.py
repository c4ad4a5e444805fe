"""Latency predicted from a device's lookup table: the sum of the units' measured times,
corrected by a model fitted on whole networks measured on the same device.

Three models compete on the calibration's whole-network measurements, by the median
relative error of 5-fold cross-validation: the table's sum as it is, a linear correction
(``a * sum + b * units + c``), and gradient-boosted trees on the same two features predicting
the ratio of measured time to the table's sum (a ratio extrapolates where trees cannot). The
one with the least error is kept. The fitted model is not stored: its training points are,
and refitting them is deterministic and takes milliseconds.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from nasprune.latency.base import LatencyBackend
from nasprune.latency.recorded import recorded_latency
from nasprune.latency.reference import ReferenceNetwork, largest_subnet_reference
from nasprune.latency.units import Unit, units_of
from plumbing import json_hash
from search_spaces import SearchSpace
from storage import CalibrationRecord, DeviceKey, Store

Model = Literal["table", "linear", "gbm"]  # the correction fitted on whole networks
MODELS: tuple[Model, ...] = ("table", "linear", "gbm")
Point = tuple[float, int, float]  # (table sum ms, units, measured ms)
MeasureUnit = Callable[[Unit], float]  # times a unit missing from the table, in ms


@dataclass
class Prediction:
    latency_ms: float
    table_ms: float
    units: int
    measured_units: int  # units that were missing from the table and were timed now


@dataclass
class Predictor:
    """Predicts a subnet's latency on one device from its units.

    ``table`` maps unit keys to milliseconds; ``points`` are the calibration's whole-network
    measurements, from which :meth:`fit` chooses and fits the correction.
    """

    table: dict[str, float]
    points: list[Point]
    block_types: tuple[type, ...] = ()
    kind: Model = "table"
    errors: dict[str, float] = field(default_factory=dict)  # CV median relative error per model
    _model: Any = None

    def fit(self, chosen: Model | None = None) -> Predictor:
        """Choose the model with the least cross-validated error and fit it on every point;
        with ``chosen`` (the choice a calibration stored), fit that one without choosing."""
        if len(self.points) < 5:
            self.kind, self.errors = "table", {}
            return self
        if chosen is None:
            errors: dict[str, float] = {kind: _cv_error(kind, self.points) for kind in MODELS}
            least: Model = min(MODELS, key=lambda kind: (errors[kind], MODELS.index(kind)))
            self.errors, chosen = errors, least
        self.kind, self._model = chosen, _fit(chosen, self.points)
        return self

    def features(
        self,
        subnet: nn.Module,
        input_shape: Sequence[int],
        measure: MeasureUnit | None = None,
        int8: Sequence[str] = (),
    ) -> tuple[float, int, int] | None:
        """(table sum, units, units timed now) of ``subnet``, whose ``int8`` layers run in
        int8; None when a unit is missing from the table and there is no ``measure`` to time
        it."""
        total, fresh = 0.0, 0
        units = units_of(subnet, input_shape, self.block_types, int8)
        for unit in units:
            if unit.key not in self.table:
                if measure is None:
                    return None
                self.table[unit.key] = measure(unit)
                fresh += 1
            total += self.table[unit.key]
        return total, len(units), fresh

    def predict(
        self,
        subnet: nn.Module,
        input_shape: Sequence[int],
        measure: MeasureUnit | None = None,
        int8: Sequence[str] = (),
    ) -> Prediction | None:
        found = self.features(subnet, input_shape, measure, int8)
        if found is None:
            return None
        total, units, fresh = found
        return Prediction(self.predict_features(total, units), total, units, fresh)

    def predict_features(self, table_ms: float, units: int) -> float:
        return _predict(self.kind, self._model, [(table_ms, units)])[0]


def _fit(kind: Model, points: Sequence[Point]) -> Any:
    import numpy as np

    x = np.array([[p[0], p[1]] for p in points], dtype=float)
    y = np.array([p[2] for p in points], dtype=float)
    if kind == "table":
        return None
    if kind == "linear":
        design = np.column_stack([x, np.ones(len(x))])
        coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
        return coefficients
    from sklearn.ensemble import GradientBoostingRegressor

    model = GradientBoostingRegressor(
        n_estimators=150, max_depth=2, learning_rate=0.05, subsample=1.0, random_state=0
    )
    return model.fit(x, y / np.maximum(x[:, 0], 1e-9))


def _predict(kind: Model, model: Any, features: Sequence[tuple[float, int]]) -> list[float]:
    import numpy as np

    x = np.array(features, dtype=float).reshape(len(features), 2)
    if kind == "table":
        found = x[:, 0]
    elif kind == "linear":
        found = np.column_stack([x, np.ones(len(x))]) @ model
    else:
        found = model.predict(x) * x[:, 0]
    return [max(float(value), 0.0) for value in found]


def _cv_error(kind: Model, points: Sequence[Point], folds: int = 5) -> float:
    """Median relative error of ``kind`` over ``folds``-fold cross-validation."""
    errors: list[float] = []
    for fold in range(folds):
        train = [p for i, p in enumerate(points) if i % folds != fold]
        test = [p for i, p in enumerate(points) if i % folds == fold]
        if not test or len(train) < 3:
            continue
        model = _fit(kind, train)
        guesses = _predict(kind, model, [(p[0], p[1]) for p in test])
        errors.extend(abs(g - p[2]) / p[2] for g, p in zip(guesses, test, strict=True))
    return statistics.median(errors) if errors else float("inf")


def space_key(space: SearchSpace) -> str:
    """What a calibration is filed under besides the device: the space's name and params."""
    return json_hash([space.name, space.params], 32)


def load_predictor(
    store: Store, on: DeviceKey, space: SearchSpace, reference: ReferenceNetwork | None = None
) -> Predictor | None:
    """The fitted predictor of ``space`` on ``on``, if it was calibrated there against
    ``reference`` (by default the space's largest subnet, which calibrations are timed
    against): a calibration timed against another reference is in another unit."""
    record = store.get_calibration(on, space_key(space))
    if record is None:
        return None
    network = reference or largest_subnet_reference(space)
    if record.content.get("reference") != network.key:
        return None
    table = _table(store, on, record)
    points: list[Point] = [(float(a), int(b), float(c)) for a, b, c in record.content["points"]]
    errors = {str(k): float(v) for k, v in record.content.get("errors", {}).items()}
    predictor = Predictor(table, points, space.latency_blocks, errors=errors)
    stored = str(record.content["model"])
    return predictor.fit(next((kind for kind in MODELS if kind == stored), "table"))


def calibrated_table(store: Store, on: DeviceKey, space: SearchSpace) -> dict[str, float] | None:
    """The lookup table (unit key -> ms) of ``space``'s calibration on ``on``, if there is
    one, whatever reference it was timed against (its figures share that one's anchor)."""
    record = store.get_calibration(on, space_key(space))
    return None if record is None else _table(store, on, record)


def calibrated(store: Store, on: DeviceKey, space: SearchSpace) -> bool:
    """Whether ``space`` has a calibration on ``on``, whatever reference it was timed against
    (where :func:`load_predictor` finds none, one timed against another reference)."""
    return store.get_calibration(on, space_key(space)) is not None


def _table(store: Store, on: DeviceKey, record: CalibrationRecord) -> dict[str, float]:
    """The figures of a calibration's units, by unit key."""
    keys = [str(key) for key in record.content.get("unit_keys", [])]
    found = store.latencies(on, keys)
    return {key: found[key].median_ms for key in keys if key in found}


def unit_timer(
    store: Store, backend: LatencyBackend, on: DeviceKey, reference: ReferenceNetwork
) -> Callable[[Unit], float]:
    """Times a unit with ``backend`` against ``reference`` (the space's largest subnet, as
    its calibration was) and stores the figure in the device's table."""

    def timed(unit: Unit) -> float:
        module = unit.standalone()
        record, _ = recorded_latency(
            store, backend, on, module, unit.key, False, unit.input_shape, reference=reference
        )
        return record.median_ms

    return timed
