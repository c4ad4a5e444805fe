"""The SQL behind the store's queries: filters, best trial, Pareto front, metric checks.

Every query here is one SELECT over indexed columns of ``trials``; nothing loops in Python
over a search's trials.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select
from sqlalchemy.orm import InstrumentedAttribute, aliased

from storage.errors import StoreError
from storage.models import LatencyMeasurementModel, TrialModel
from storage.records import COLUMN_METRICS, INT_METRICS, DeviceKey, TrialState

DIRECTIONS = ("maximize", "minimize")


def maximize(direction: str) -> bool:
    """True for "maximize", False for "minimize", StoreError otherwise."""
    if direction not in DIRECTIONS:
        raise StoreError(f"direction must be 'maximize' or 'minimize', not {direction!r}")
    return direction == "maximize"


def metric_column(entity: Any, metric: str) -> InstrumentedAttribute[Any]:
    """The column of a column metric on ``entity`` (the model or an alias of it)."""
    if metric not in COLUMN_METRICS:
        raise StoreError(
            f"{metric!r} is not a column metric; queries work on: {', '.join(COLUMN_METRICS)}"
        )
    column: InstrumentedAttribute[Any] = getattr(entity, metric)
    return column


def trial_filter(search_id: int, states: Iterable[TrialState] | None) -> list[ColumnElement[bool]]:
    """WHERE clauses: trials of the search, in ``states`` when given."""
    clauses: list[ColumnElement[bool]] = [TrialModel.search_id == search_id]
    if states is not None:
        clauses.append(TrialModel.state.in_([TrialState(state).value for state in states]))
    return clauses


def split_metrics(metrics: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(column values, everything else); column metrics must be finite numbers."""
    columns: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in metrics.items():
        if name not in COLUMN_METRICS:
            extra[name] = value
        elif value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise StoreError(f"metric {name!r} must be a number, not {value!r}")
            if not math.isfinite(value):
                raise StoreError(f"metric {name!r} must be finite, not {value!r}")
            columns[name] = int(value) if name in INT_METRICS else float(value)
    return columns, extra


def best_trial_query(
    search_id: int,
    metric: str,
    direction: str,
    max_latency_ms: float | None,
    max_params: int | None,
    max_macs: int | None,
    on: DeviceKey | None = None,
) -> Select[TrialModel, float | None, float | None]:
    """Complete trials within the limits, best metric first, then lower latency, number; each
    with its median and p90 latency: the trial's own, or with ``on``, its measurement on that
    device (trials it never measured take no part)."""
    column = metric_column(TrialModel, metric)
    if on is None:
        median, p90 = TrialModel.latency_ms, TrialModel.latency_p90_ms
        query = select(TrialModel, median, p90)
    else:
        measured = LatencyMeasurementModel
        median, p90 = measured.median_ms, measured.p90_ms
        query = select(TrialModel, median, p90).join(
            measured,
            and_(
                measured.arch_hash == TrialModel.latency_key,
                measured.device == on.device,
                measured.batch_size == on.batch_size,
                measured.input_shape == shape_json(on.input_shape),
                measured.threads == on.threads,
            ),
        )
    query = query.where(*trial_filter(search_id, [TrialState.COMPLETE]), column.is_not(None))
    limits = (
        (median, max_latency_ms),
        (TrialModel.params, max_params),
        (TrialModel.macs, max_macs),
    )
    for limited, bound in limits:
        if bound is not None:  # a trial whose limited metric is null fails the limit
            query = query.where(limited <= bound)
    order = column.desc() if maximize(direction) else column.asc()
    return query.order_by(order, median.asc().nulls_last(), TrialModel.number).limit(1)


def pareto_front_query(search_id: int, objectives: Sequence[tuple[str, str]]) -> Select[TrialModel]:
    """Complete trials with every objective set that no such trial dominates (NOT EXISTS)."""
    if not objectives:
        raise StoreError("pareto_front needs at least one (metric, direction) objective")
    other = aliased(TrialModel)
    at_least_as_good: list[ColumnElement[bool]] = []
    strictly_better: list[ColumnElement[bool]] = []
    not_null: list[ColumnElement[bool]] = []
    for metric, direction in objectives:
        mine, theirs = metric_column(TrialModel, metric), metric_column(other, metric)
        up = maximize(direction)
        at_least_as_good.append(theirs >= mine if up else theirs <= mine)
        strictly_better.append(theirs > mine if up else theirs < mine)
        not_null.append(mine.is_not(None))
    dominated = exists().where(
        other.search_id == search_id,
        other.state == TrialState.COMPLETE.value,
        and_(*at_least_as_good),  # comparisons with null are never true
        or_(*strictly_better),
    )
    first = metric_column(TrialModel, objectives[0][0])
    order = first.desc() if maximize(objectives[0][1]) else first.asc()
    return (
        select(TrialModel)
        .where(*trial_filter(search_id, [TrialState.COMPLETE]), *not_null, ~dominated)
        .order_by(order, TrialModel.number)
    )


def shape_json(input_shape: Sequence[int]) -> str:
    """The canonical text of an input shape, as stored in ``latency_measurements``."""
    return json.dumps([int(size) for size in input_shape], separators=(",", ":"))


def latency_query(
    device: str, arch_hash: str, batch_size: int, input_shape: Sequence[int], threads: int
) -> Select[LatencyMeasurementModel]:
    """The measurement of one unique key of ``latency_measurements``."""
    return select(LatencyMeasurementModel).filter_by(
        device=device,
        arch_hash=arch_hash,
        batch_size=batch_size,
        input_shape=shape_json(input_shape),
        threads=threads,
    )
