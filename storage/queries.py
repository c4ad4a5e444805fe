"""The SQL behind the store's queries: filters, best trial, Pareto front, metric checks.

Every query here is one SELECT over indexed columns of ``trials``. The best trial is found by
the database; a Pareto front by one ordered pass over the trials' objectives only (the sweep
in :mod:`storage.pareto`), then the full rows of the front alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, and_, select

from storage.errors import StoreError
from storage.records import COLUMN_METRICS, INT_METRICS, DeviceKey, TrialState
from storage.tables import latency_measurements, trials

DIRECTIONS = ("maximize", "minimize")
IN_CHUNK = 500  # values per IN (...): under every driver's limit on bound parameters


def maximize(direction: str) -> bool:
    """True for "maximize", False for "minimize", StoreError otherwise."""
    if direction not in DIRECTIONS:
        raise StoreError(f"direction must be 'maximize' or 'minimize', not {direction!r}")
    return direction == "maximize"


def metric_column(table: FromClause, metric: str) -> ColumnElement[Any]:
    """The column of a column metric in ``table`` (``trials`` or an alias of it)."""
    if metric not in COLUMN_METRICS:
        raise StoreError(
            f"{metric!r} is not a column metric; queries work on: {', '.join(COLUMN_METRICS)}"
        )
    column: ColumnElement[Any] = table.c[metric]
    return column


def trial_filter(search_id: int, states: Iterable[TrialState] | None) -> list[ColumnElement[bool]]:
    """WHERE clauses: trials of the search, in ``states`` when given."""
    clauses: list[ColumnElement[bool]] = [trials.c.search_id == search_id]
    if states is not None:
        clauses.append(trials.c.state.in_([TrialState(state).value for state in states]))
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
    max_params: float | None,
    max_macs: float | None,
    on: DeviceKey | None = None,
) -> Select[Any]:
    """Complete trials within the limits, best metric first, then lower latency, number; each
    row a trial's columns and its ``median_ms`` and ``p90_ms`` latency: the trial's own, or
    with ``on``, its measurement on that device (trials it never measured take no part)."""
    column = metric_column(trials, metric)
    source: FromClause = trials
    if on is None:
        median, p90 = trials.c.latency_ms, trials.c.latency_p90_ms
    else:
        measured = latency_measurements.c
        median, p90 = measured.median_ms, measured.p90_ms
        source = trials.join(
            latency_measurements,
            and_(
                measured.arch_hash == trials.c.latency_key,
                measured.device == on.device,
                measured.batch_size == on.batch_size,
                measured.input_shape == shape_json(on.input_shape),
                measured.threads == on.threads,
            ),
        )
    query = select(trials, median.label("median_ms"), p90.label("p90_ms")).select_from(source)
    query = query.where(*trial_filter(search_id, [TrialState.COMPLETE]), column.is_not(None))
    limits = (
        (median, max_latency_ms),
        (trials.c.params, max_params),
        (trials.c.macs, max_macs),
    )
    for limited, bound in limits:
        if bound is not None:  # a trial whose limited metric is null fails the limit
            query = query.where(limited <= bound)
    order = column.desc() if maximize(direction) else column.asc()
    return query.order_by(order, median.asc().nulls_last(), trials.c.number).limit(1)


def pareto_points_query(search_id: int, objectives: Sequence[tuple[str, str]]) -> Select[Any]:
    """The number and objectives of the search's complete trials with every objective set,
    best first on each objective in turn: the input of :func:`storage.pareto.non_dominated`.

    Only indexed columns: for accuracy and latency, one index holds them all, in this order.
    """
    if not objectives:
        raise StoreError("pareto_front needs at least one (metric, direction) objective")
    columns = [metric_column(trials, metric) for metric, _ in objectives]
    order = [
        column.desc() if maximize(direction) else column.asc()
        for column, (_, direction) in zip(columns, objectives, strict=True)
    ]
    labelled = [column.label(f"objective_{i}") for i, column in enumerate(columns)]
    return (
        select(trials.c.number, *labelled)
        .where(*trial_filter(search_id, [TrialState.COMPLETE]))
        .where(*[column.is_not(None) for column in columns])
        .order_by(*order)
    )


def numbered_trials_query(search_id: int, numbers: Sequence[int]) -> Select[Any]:
    """The rows of the search's trials of these numbers (at most :data:`IN_CHUNK`)."""
    return select(trials).where(trials.c.search_id == search_id, trials.c.number.in_(numbers))


def shape_json(input_shape: Sequence[int]) -> str:
    """The canonical text of an input shape, as stored in ``latency_measurements``."""
    return json.dumps([int(size) for size in input_shape], separators=(",", ":"))
