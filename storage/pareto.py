"""Pareto fronts by sorting: which points no other point dominates.

A point dominates another when it is at least as good on every objective and strictly better
on one. Equal points do not dominate each other, so every copy of a front point is on the
front. The points come sorted best first on the first objective, then the second, and so on
(as :func:`storage.queries.pareto_points_query` returns them): a point can then only be
dominated by one before it, and one pass finds the front.

* Two objectives: a sweep, O(n). A point is on the front when its second objective is strictly
  better than every earlier one's, or when it equals the last front point.
* One or three and more: each point is checked against the front found so far (which covers
  every earlier point), O(n * front).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Any

Row = Sequence[Any]  # (an id, the value of each objective); no value is null


def non_dominated(rows: Iterable[Row], maximize: Sequence[bool]) -> list[Any]:
    """The ids of the rows that no other row dominates, in the order of ``rows``.

    ``rows`` must be sorted best first on each objective in turn (``maximize[i]`` says which
    way objective ``i`` is better); this is not checked.
    """
    if len(maximize) == 2:
        return _sweep(rows, second_up=maximize[1])
    return _filter(rows, maximize)


def _sweep(rows: Iterable[Row], second_up: bool) -> list[Any]:
    """Two objectives: keep the rows whose second objective improves on all before them."""
    better = operator.gt if second_up else operator.lt
    front: list[Any] = []
    last: tuple[Any, Any] | None = None  # the objectives of the last front point
    for key, first, second in rows:
        if last is None or better(second, last[1]):
            front.append(key)
            last = (first, second)
        elif second == last[1] and first == last[0]:  # a copy of the last front point
            front.append(key)
    return front


def _filter(rows: Iterable[Row], maximize: Sequence[bool]) -> list[Any]:
    """Any number of objectives: keep the rows that no earlier front point dominates."""
    signs = [-1 if up else 1 for up in maximize]  # every objective minimised from here on
    front: list[tuple[Any, ...]] = []  # distinct points, in order
    ids: list[Any] = []
    for key, *values in rows:
        point = tuple(sign * value for sign, value in zip(signs, values, strict=True))
        if front and point == front[-1]:
            ids.append(key)
        elif not any(_covers(earlier, point) for earlier in reversed(front)):
            front.append(point)
            ids.append(key)
    return ids


def _covers(earlier: tuple[Any, ...], point: tuple[Any, ...]) -> bool:
    """Whether a different, earlier point dominates ``point``: it is no worse on the first
    objective by the sort, so it dominates when it is no worse on all the others."""
    return all(mine <= theirs for mine, theirs in zip(earlier[1:], point[1:], strict=True))
