"""The derived space's parameters, checked: each bad value is a one-line :class:`SpaceError`
naming the parameter (the space itself is :mod:`search_spaces.derived.space`)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

from search_spaces.base import mapping_param, positive_int
from search_spaces.derived.criteria import CRITERIA, check_criterion
from search_spaces.derived.criteria.l0 import PENALTY, STEPS
from search_spaces.derived.criteria.synflow import ROUNDS
from search_spaces.derived.discovery import ChannelGroup
from search_spaces.dimensions import SpaceError


def input_shape(value: object) -> tuple[int, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) < 2:
        raise SpaceError(f"input_shape must be a list like [1, 3, 32, 32], got {value!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise SpaceError(f"input_shape must hold positive integers, got {list(value)}")
    return tuple(int(v) for v in value[1:])


def one_of(param: str, value: object, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise SpaceError(f"{param} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def ratios(
    param: str, values: object, need_one: bool = False, strict_upper: bool = False
) -> list[float]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise SpaceError(f"{param} must be a list of numbers, got {values!r}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise SpaceError(f"{param} must hold numbers, got {list(values)}")
    ratios = [float(v) for v in values]
    upper_ok = (lambda r: 0 < r < 1) if strict_upper else (lambda r: 0 < r <= 1)
    if not all(upper_ok(r) for r in ratios):
        bound = "0 < r < 1" if strict_upper else "0 < r <= 1"
        raise SpaceError(f"{param} must hold ratios with {bound}, got {list(values)}")
    if any(a >= b for a, b in zip(ratios, ratios[1:], strict=False)):
        raise SpaceError(f"{param} must be strictly ascending, got {list(values)}")
    if need_one and (not ratios or ratios[-1] != 1.0):
        raise SpaceError(f"{param} must end with 1.0 (the dense model), got {list(values)}")
    return ratios


def names(param: str, values: object) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise SpaceError(f"{param} must be a list of module names, got {values!r}")
    if not all(isinstance(v, str) for v in values):
        raise SpaceError(f"{param} must hold module names, got {list(values)}")
    return list(values)


def importance(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """The importance settings: the criterion and its batches, and the settings of the chosen
    criterion alone (so that a criterion's defaults never change another's params, and the
    params of searches made before a criterion had settings stay as they were)."""
    settings = {"criterion": "l2", "batches": 4}  # l2: the best in bench_byom's criteria table
    if value is None:
        return settings
    own = {"steps": STEPS, "penalty": PENALTY}  # l0's gate training (criteria/l0.py)
    own |= {"rounds": ROUNDS}  # synflow's pruning rounds (criteria/synflow.py)
    given = mapping_param("importance", value, settings | own)
    criterion = check_criterion(given["criterion"])
    positive_int("importance.batches", given["batches"])
    takes = inspect.signature(CRITERIA.get(criterion)).parameters
    foreign = sorted(key for key in own if key in value and key not in takes)
    if foreign:
        raise SpaceError(
            f"importance.{foreign[0]} is not a setting of criterion {criterion} "
            f"({', '.join(k for k in own if k in takes) or 'it has none'})"
        )
    chosen = {key: given[key] for key in own if key in takes}
    for key in ("steps", "rounds"):
        if key in chosen:
            positive_int(f"importance.{key}", chosen[key])
    if "penalty" in chosen:
        chosen["penalty"] = penalty(chosen["penalty"])
    return {"criterion": criterion, "batches": given["batches"]} | chosen


def penalty(value: object) -> float:
    """``importance.penalty``: a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise SpaceError(f"importance.penalty must be a number >= 0, got {value!r}")
    if not math.isfinite(value):
        raise SpaceError(f"importance.penalty must be finite, got {value!r}")
    return float(value)


def l0_keep(value: object, groups: Mapping[str, ChannelGroup]) -> dict[str, float] | None:
    """The stored keep ratios learnt by ``l0`` (None in states without them)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not set(value) <= set(groups):
        raise SpaceError("the stored l0 keep ratios do not match this model's groups")
    if not all(isinstance(v, int | float) and 0 <= v <= 1 for v in value.values()):
        raise SpaceError("the stored l0 keep ratios must be numbers from 0 to 1")
    return {name: float(v) for name, v in value.items()}
