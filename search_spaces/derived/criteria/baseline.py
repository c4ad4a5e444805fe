"""``random``: seeded random scores, the baseline every criterion must beat."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from search_spaces.derived.criteria.base import Batch, Criterion, Scores, register_criterion
from search_spaces.derived.discovery import ChannelGroup


@register_criterion
class RandomScores(Criterion):
    """Uniform scores in [0, 1), one draw per seed (on one scale for every group already).

    Named in a derived space's params as ``importance: {criterion: random}``.
    """

    name = "random"

    def __call__(
        self,
        model: nn.Module,
        input_shape: Sequence[int],
        groups: Sequence[ChannelGroup],
        batches: Sequence[Batch],
        seed: int,
    ) -> Scores:
        gen = torch.Generator().manual_seed(seed)
        return {g.name: torch.rand(g.channels, generator=gen).tolist() for g in groups}, []
