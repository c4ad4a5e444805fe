"""NNI's pruners as importance criteria: ``nni.l1`` (L1NormPruner) and ``nni.taylor``
(TaylorPruner). NNI loads when such a criterion scores, not when it is registered.

NNI 3.0 scores each convolution's and linear layer's output channels; the mask it would apply
at any ratio removes the lowest scores first, so its scores *are* its masks' order. A group's
score for a channel is the mean of the NNI scores of the layers whose outputs that channel is
(mapped through torch-pruning's group, as for the other criteria).

This reads NNI 3.0's ``_collect_data`` / ``_calculate_metrics``, the two steps every 3.0
pruner runs before it builds masks; they are private, so the NNI version is pinned.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.derived.criteria.base import Batch, Criterion, Scores, register_criterion
from search_spaces.derived.discovery import ROOT_TYPES, ChannelGroup, build_graph, root_pruning_fn
from search_spaces.dimensions import SpaceError

_OP_TYPES = ["Conv1d", "Conv2d", "Conv3d", "Linear"]


class _NniCriterion(Criterion):
    """One of NNI's pruners, by the criterion's ``name``."""

    def __call__(
        self,
        model: nn.Module,
        input_shape: Sequence[int],
        groups: Sequence[ChannelGroup],
        batches: Sequence[Batch],
        seed: int,
    ) -> Scores:
        return score_groups_nni(model, input_shape, groups, self.name, batches), []


@register_criterion
class NniL1(_NniCriterion):
    """NNI's L1NormPruner: ``importance: {criterion: nni.l1}``."""

    name = "nni.l1"


@register_criterion
class NniTaylor(_NniCriterion):
    """NNI's TaylorPruner: ``importance: {criterion: nni.taylor, batches: 4}``."""

    name = "nni.taylor"
    needs_data = True


def _nni() -> Any:
    logging.getLogger("nni").setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import nni
            from nni.compression import TorchEvaluator
            from nni.compression.pruning import L1NormPruner, TaylorPruner
    except ImportError as exc:  # pragma: no cover - nni is a dependency
        raise SpaceError(f"the nni.* criteria need NNI 3.0: {exc}") from None
    return nni, TorchEvaluator, L1NormPruner, TaylorPruner


def layer_scores(
    model: nn.Module, criterion: str, batches: Sequence[tuple[torch.Tensor, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """NNI's score of every output channel of every conv and linear layer, by module name.
    NNI wraps the layers of the model it is given, so it is given a copy."""
    nni, evaluator_cls, l1_pruner, taylor_pruner = _nni()
    model = copy.deepcopy(model)
    config = [{"op_types": _OP_TYPES, "sparse_ratio": 0.5}]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if criterion == "nni.l1":
            pruner = l1_pruner(model, config)
            metrics = pruner._calculate_metrics(pruner._collect_data())
        else:
            if not batches:
                raise SpaceError("nni.taylor needs at least one batch of training data")
            metrics = _taylor(nni, evaluator_cls, taylor_pruner, model, config, batches)
    return {name: values["weight"].flatten().float() for name, values in metrics.items()}


def _taylor(
    nni: Any,
    evaluator_cls: Any,
    pruner_cls: Any,
    model: nn.Module,
    config: list[dict[str, Any]],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> dict[str, Any]:
    def training_step(batch: tuple[torch.Tensor, torch.Tensor], net: nn.Module) -> torch.Tensor:
        return F.cross_entropy(net(batch[0]), batch[1])

    def training(net: nn.Module, optimiser: Any, step: Any, *_: Any, **kw: Any) -> None:
        net.train()
        for done, batch in enumerate(batches):
            if kw.get("max_steps") is not None and done >= kw["max_steps"]:
                return
            optimiser.zero_grad()
            step(batch, net).backward()
            optimiser.step()

    optimiser = nni.trace(torch.optim.SGD)(model.parameters(), lr=0.0)  # scores, no updates
    evaluator = evaluator_cls(training, optimiser, training_step)
    pruner = pruner_cls(model, config, evaluator, training_steps=len(batches))
    captured: dict[str, Any] = {}
    calculate = pruner._calculate_metrics

    def capture(data: Any) -> Any:  # NNI clears its buffers once the masks are built
        metrics = calculate(data)
        captured.update(
            {k: {t: v.detach().clone() for t, v in d.items()} for k, d in metrics.items()}
        )
        return metrics

    pruner._calculate_metrics = capture
    pruner.compress()
    return captured


def score_groups_nni(
    model: nn.Module,
    input_shape: Sequence[int],
    groups: Sequence[ChannelGroup],
    criterion: str,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> dict[str, list[float]]:
    """Per-channel scores of each group from NNI's layer scores (normalised by the mean)."""
    per_layer = layer_scores(model, criterion, batches)
    graph = build_graph(model, input_shape)
    modules = dict(model.named_modules())
    names = {m: n for n, m in modules.items()}
    scores = {}
    for group in groups:
        root = modules[group.root]
        fn = root_pruning_fn(graph, root, group.root_is_input)
        total, count = torch.zeros(group.channels), torch.zeros(group.channels)
        for item in graph.get_pruning_group(root, fn, list(range(group.channels))):
            module = item.dep.target.module
            layer = per_layer.get(names.get(module, ""))
            if layer is None or not isinstance(module, ROOT_TYPES):
                continue
            if not graph.is_out_channel_pruning_fn(item.dep.handler):
                continue
            local, at_root = torch.tensor(item.idxs), torch.tensor(item.root_idxs)
            total.index_add_(0, at_root, layer[local])
            count.index_add_(0, at_root, torch.ones(len(at_root)))
        if not bool((count > 0).all()):
            raise SpaceError(f"NNI gives no score to some channels of group {group.name!r}")
        mean = total / count
        scores[group.name] = (mean / mean.mean().clamp_min(1e-12)).tolist()
    return scores
