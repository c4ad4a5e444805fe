"""The one base of an importance criterion, the registry of criteria, and what they share."""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import ClassVar, TypeVar

import torch
from torch import nn

from plumbing import Registry
from search_spaces.derived.discovery import ChannelGroup
from search_spaces.dimensions import SpaceError

Batch = tuple[torch.Tensor, torch.Tensor]  # (inputs, labels)
Scores = tuple[dict[str, list[float]], list[str]]  # scores by group name, notes


class Criterion(abc.ABC):
    """How important each channel of each channel group is, computed once on the dense model.

    A criterion is a class with a ``name`` (what ``importance: {criterion: ...}`` in a derived
    space's params names), registered with :func:`register_criterion`; it is built and called
    once per scoring, so it may keep state for that call.

    * ``needs_data``: whether it needs training batches. Only then does it get ``batches``
      (``importance.batches`` of them, as (inputs, labels)); otherwise ``batches`` is empty.
    * Calling it returns, for every group of ``groups`` by its ``name``, one finite score per
      channel (``group.channels`` of them, higher is more important), normalised by the
      group's mean so that ``global`` granularity can rank channels of different groups
      against each other; and notes, one line each, on the fallbacks it took (``"<group>: no
      norm layer, scored by l1"``).
    * It gets no attention-head groups (``group.heads``): those are scored by whole heads
      (:func:`search_spaces.derived.importance.score_groups`).
    * ``model`` is a copy: the criterion may leave gradients in it but changes no weight.
      ``seed`` seeds whatever randomness it uses, so equal inputs give equal scores.
    * ``weighs_layers``: whether it weighs channels by what their layers cost on the target
      device. Only then is it built with ``layer_ms``: each layer of the dense model (by its
      name) mapped to the milliseconds it measured on the device (from the device's latency
      table; empty when the device was not calibrated).
    * A failure is a :class:`SpaceError` with a one-line message.
    """

    name: ClassVar[str]
    needs_data: ClassVar[bool] = False
    weighs_layers: ClassVar[bool] = False

    @abc.abstractmethod
    def __call__(
        self,
        model: nn.Module,
        input_shape: Sequence[int],
        groups: Sequence[ChannelGroup],
        batches: Sequence[Batch],
        seed: int,
    ) -> Scores:
        """Per-group channel scores and notes (see the class docstring)."""


C = TypeVar("C", bound=type[Criterion])

CRITERIA: Registry[type[Criterion]] = Registry("importance criterion", SpaceError)


def register_criterion(cls: C) -> C:
    """Class decorator: register a :class:`Criterion` under its ``name`` class attribute. A
    name taken by another class is refused with a :class:`SpaceError` naming it."""
    CRITERIA.add_named(cls)
    return cls


def check_criterion(criterion: object) -> str:
    """``criterion`` if a criterion is registered under it, else a one-line error listing the
    known ones."""
    return CRITERIA.get(criterion).name


def finite(value: float) -> float:
    """``value``, or 0.0 where it is NaN or infinite."""
    return value if math.isfinite(value) else 0.0
