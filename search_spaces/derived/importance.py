"""Which channels survive: importance scores per channel group, computed once on the dense model.

Criteria by name, each one of torch-pruning's importance classes applied to the whole
dependency group (every layer of the group contributes, as DepGraph does):

* ``random``   seeded random scores, the baseline every criterion must beat;
* ``l1``, ``l2`` group magnitude (sum of |w| or w^2 over the group's weights per channel);
* ``taylor``   first-order Taylor (|gradient x weight|), gradients summed over ``batches`` batches;
* ``bn_scale`` the batch-norm (or layer-norm) scale factors, as in network slimming; a group
  with no norm layer falls back to ``l1``, and the fallback is reported;
* ``nni.l1``, ``nni.taylor`` NNI 3.0's L1NormPruner and TaylorPruner (their masks' order),
  see :mod:`search_spaces.derived.nni_importance`.

Scores are normalised by their group's mean, so that ``global`` granularity can rank channels
of different groups against each other.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.derived.discovery import ChannelGroup, build_graph, tp
from search_spaces.derived.heads import head_scores, is_conv1d
from search_spaces.dimensions import SpaceError

CRITERIA = ("random", "l1", "l2", "taylor", "bn_scale", "nni.l1", "nni.taylor")
NEEDS_DATA = ("taylor", "nni.taylor")


def check_criterion(criterion: object) -> str:
    if criterion not in CRITERIA:
        raise SpaceError(
            f"unknown importance criterion {criterion!r}; known: {', '.join(CRITERIA)}"
        )
    return str(criterion)


def root_pruning_fn(graph: Any, module: nn.Module, as_input: bool) -> Any:
    pruner = graph.get_pruner_of_module(module)
    if pruner is None:
        raise SpaceError(f"torch-pruning has no pruner for {type(module).__name__}")
    return pruner.prune_in_channels if as_input else pruner.prune_out_channels


def score_groups(
    model: nn.Module,
    input_shape: Sequence[int],
    groups: Sequence[ChannelGroup],
    criterion: str,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]] = (),
    seed: int = 0,
) -> tuple[dict[str, list[float]], list[str]]:
    """Normalised importance of every channel of every group, and notes on fallbacks.

    ``model`` is not changed, except that ``taylor`` leaves gradients in it (callers pass a
    copy). ``batches`` (inputs, labels) are needed by ``taylor`` only.
    """
    check_criterion(criterion)
    heads = [g for g in groups if g.heads is not None]
    if heads:
        batches, others = list(batches), [g for g in groups if g.heads is None]
        scores, notes = (
            score_groups(model, input_shape, others, criterion, batches, seed)
            if others
            else ({}, [])
        )
        return scores | _score_heads(model, heads, criterion, batches, seed, notes), notes
    if criterion.startswith("nni."):
        from search_spaces.derived.nni_importance import score_groups_nni

        return score_groups_nni(model, input_shape, groups, criterion, list(batches)), []
    if criterion == "random":
        gen = torch.Generator().manual_seed(seed)
        return {g.name: torch.rand(g.channels, generator=gen).tolist() for g in groups}, []
    graph = build_graph(model, input_shape)
    if criterion == "taylor":
        _accumulate_gradients(model, batches)
    imp = tp().importance
    scorers = {
        "l1": imp.GroupMagnitudeImportance(p=1),
        "l2": imp.GroupMagnitudeImportance(p=2),
        "taylor": imp.GroupTaylorImportance(),
        "bn_scale": imp.GroupMagnitudeImportance(
            p=1, target_types=[nn.modules.batchnorm._BatchNorm, nn.LayerNorm]
        ),
    }
    scores, notes = {}, []
    modules = dict(model.named_modules())
    for group in groups:
        root = modules[group.root]
        fn = root_pruning_fn(graph, root, group.root_is_input)
        tp_group = graph.get_pruning_group(root, fn, list(range(group.channels)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = scorers[criterion](tp_group)
        if values is None and criterion == "bn_scale":
            notes.append(f"{group.name}: no norm layer, scored by l1")
            values = scorers["l1"](tp_group)
        if values is None:  # layers torch-pruning cannot score (transformers' Conv1D)
            values = _conv1d_magnitude(graph, tp_group, group.channels, criterion)
        if values is None:
            raise SpaceError(f"group {group.name!r} has no weights to score by {criterion}")
        scores[group.name] = [_finite(v) for v in values.detach().cpu().tolist()]
    return scores, notes


def _conv1d_magnitude(
    graph: Any, tp_group: Any, channels: int, criterion: str
) -> torch.Tensor | None:
    """Per root channel, the magnitude (or |weight x gradient| for ``taylor``) of the group's
    ``Conv1D`` weights (stored (in, out)), normalised by the mean; None if it has none."""
    p = 2 if criterion == "l2" else 1
    score, seen = torch.zeros(channels), False
    for item in tp_group:
        layer: Any = item.dep.target.module
        if not (isinstance(layer, nn.Module) and is_conv1d(layer)):
            continue
        param: Any = layer.weight
        weight = param.detach()
        if criterion == "taylor":
            grad = param.grad
            weight = weight * grad if grad is not None else torch.zeros_like(weight)
        out = graph.is_out_channel_pruning_fn(item.dep.handler)
        values = weight.abs().pow(p).sum(dim=0 if out else 1)
        score[list(item.root_idxs)] += values[list(item.idxs)]
        seen = True
    if not seen:
        return None
    mean = float(score.mean())
    return score / mean if mean > 0 else score


def _score_heads(
    model: nn.Module,
    groups: Sequence[ChannelGroup],
    criterion: str,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    seed: int,
    notes: list[str],
) -> dict[str, list[float]]:
    """Importance of whole attention heads (see :func:`heads.head_scores`): magnitude for
    ``l1``, ``l2`` and, with a note, the criteria that have no meaning for heads."""
    if criterion == "random":
        gen = torch.Generator().manual_seed(seed + 1)
        return {g.name: torch.rand(g.channels, generator=gen).tolist() for g in groups}
    if criterion == "taylor":
        model.zero_grad(set_to_none=True)
        _accumulate_gradients(model, batches)
    elif criterion not in ("l1", "l2"):
        notes.extend(f"{g.name}: attention heads, scored by l1" for g in groups)
    p = 2 if criterion == "l2" else 1
    return {
        g.name: [_finite(v) for v in head_scores(model, g.heads, p, criterion == "taylor")]
        for g in groups
        if g.heads is not None
    }


def _accumulate_gradients(
    model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> None:
    model.eval()  # batch-norm statistics stay as trained
    model.zero_grad(set_to_none=True)
    seen = 0
    with torch.enable_grad():
        for x, y in batches:
            F.cross_entropy(model(x), y).backward()
            seen += 1
    if seen == 0:
        raise SpaceError("the taylor criterion needs at least one batch of training data")


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def channel_order(scores: Sequence[float], unit: int = 1) -> list[int]:
    """Channel indices, most important first; whole units of ``unit`` channels stay together
    (ranked by their mean score). Ties go to the lower index, so the order is stable."""
    n_units = len(scores) // unit
    unit_scores = [sum(scores[u * unit : (u + 1) * unit]) / unit for u in range(n_units)]
    ranked = sorted(range(n_units), key=lambda u: (-unit_scores[u], u))
    return [u * unit + c for u in ranked for c in range(unit)]
