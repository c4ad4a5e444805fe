"""Magnitude criteria: ``l1`` and ``l2`` (sum of |w| or w^2 over the group's weights per
channel) and ``bn_scale`` (the batch-norm or layer-norm scale factors, as in network
slimming; a group with no norm layer falls back to ``l1``, and the fallback is noted)."""

from __future__ import annotations

from typing import Any

from torch import nn

from search_spaces.derived.criteria.base import register_criterion
from search_spaces.derived.criteria.grouped import GroupCriterion, quietly
from search_spaces.derived.discovery import ChannelGroup, tp


@register_criterion
class L1(GroupCriterion):
    """Group L1 magnitude: ``importance: {criterion: l1}``."""

    name = "l1"

    def importance(self) -> Any:
        return tp().importance.GroupMagnitudeImportance(p=self.p)


@register_criterion
class L2(L1):
    """Group L2 magnitude (the default criterion): ``importance: {criterion: l2}``."""

    name = "l2"
    p = 2


@register_criterion
class BnScale(GroupCriterion):
    """Network slimming's norm-layer scales: ``importance: {criterion: bn_scale}``."""

    name = "bn_scale"

    def importance(self) -> Any:
        norms = [nn.modules.batchnorm._BatchNorm, nn.LayerNorm]
        return tp().importance.GroupMagnitudeImportance(p=1, target_types=norms)

    def fallback(self, tp_group: Any, group: ChannelGroup, notes: list[str]) -> Any:
        notes.append(f"{group.name}: no norm layer, scored by l1")
        return quietly(L1().importance(), tp_group)
