"""Which channels survive: importance scores per channel group, computed once on the dense
model by the criterion a derived space names (see :mod:`search_spaces.derived.criteria`).

Attention-head groups are scored here, by whole heads; every other group is scored by the
criterion. Scores are normalised by their group's mean, so that ``global`` granularity can
rank channels of different groups against each other.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from search_spaces.derived.criteria import CRITERIA
from search_spaces.derived.criteria.base import Batch, Criterion, Scores, finite
from search_spaces.derived.criteria.taylor import accumulate_gradients
from search_spaces.derived.discovery import ChannelGroup
from search_spaces.derived.heads import head_scores


def score_groups(
    model: nn.Module,
    input_shape: Sequence[int],
    groups: Sequence[ChannelGroup],
    criterion: str,
    batches: Iterable[Batch] = (),
    seed: int = 0,
    settings: Mapping[str, Any] | None = None,
) -> Scores:
    """Normalised importance of every channel of every group, and notes on fallbacks, by the
    criterion registered as ``criterion`` (an unknown name lists the known ones).

    ``model`` is not changed, except that ``taylor`` leaves gradients in it (callers pass a
    copy). ``batches`` (inputs, labels) are read by the criteria that need data only.
    ``settings`` (a derived space's ``importance`` params) reach the criteria that take them.
    """
    cls = CRITERIA.get(criterion)
    data = list(batches) if cls.needs_data else []
    heads = [g for g in groups if g.heads is not None]
    others = [g for g in groups if g.heads is None]
    scorer = build_criterion(cls, settings or {})
    scores, notes = scorer(model, input_shape, others, data, seed) if others else ({}, [])
    if heads:
        notes = list(notes)
        scores = scores | _score_heads(model, heads, criterion, data, seed, notes)
    return scores, notes


def build_criterion(cls: type[Criterion], settings: Mapping[str, Any]) -> Criterion:
    """``cls`` built with the settings its constructor names: ``importance: {criterion:
    synflow, rounds: 20}`` builds ``Synflow(rounds=20)``; the other keys are not its own."""
    takes = inspect.signature(cls).parameters
    return cls(**{key: value for key, value in settings.items() if key in takes})


def _score_heads(
    model: nn.Module,
    groups: Sequence[ChannelGroup],
    criterion: str,
    batches: Sequence[Batch],
    seed: int,
    notes: list[str],
) -> dict[str, list[float]]:
    """Importance of whole attention heads (see :func:`heads.head_scores`): magnitude for
    ``l1``, ``l2`` and, with a note, the criteria that have no meaning for heads (``synflow``,
    ``synaptic_strength``); |weight x gradient| for ``taylor`` and ``snip``."""
    if criterion == "random":
        gen = torch.Generator().manual_seed(seed + 1)
        return {g.name: torch.rand(g.channels, generator=gen).tolist() for g in groups}
    gradients = criterion in ("taylor", "snip")
    if gradients:
        model.zero_grad(set_to_none=True)
        accumulate_gradients(model, batches)
    elif criterion not in ("l1", "l2"):
        notes.extend(f"{g.name}: attention heads, scored by l1" for g in groups)
    p = 2 if criterion == "l2" else 1
    return {
        g.name: [finite(v) for v in head_scores(model, g.heads, p, gradients)]
        for g in groups
        if g.heads is not None
    }


def channel_order(scores: Sequence[float], unit: int = 1) -> list[int]:
    """Channel indices, most important first; whole units of ``unit`` channels stay together
    (ranked by their mean score). Ties go to the lower index, so the order is stable."""
    n_units = len(scores) // unit
    unit_scores = [sum(scores[u * unit : (u + 1) * unit]) / unit for u in range(n_units)]
    ranked = sorted(range(n_units), key=lambda u: (-unit_scores[u], u))
    return [u * unit + c for u in ranked for c in range(unit)]
