"""Dynamic sparse training: a sparse subnet's mask moves while it fine-tunes; its sparsity does
not.

Every ``interval`` steps, each sparse layer drops the share ``f_t`` of its active weights with
the smallest magnitude and grows as many inactive connections: those with the largest
magnitude of that step's dense gradient (RigL: Evci et al., "Rigging the Lottery: Making All
Tickets Winners", ICML 2020), or chosen at random, seeded (SET: Mocanu et al., Nature
Communications 2018). ``f_t = ALPHA / 2 * (1 + cos(pi * t / T_end))`` with ``T_end`` the
share ``END`` of the run's steps, RigL's cosine schedule; SET uses the same schedule here, as
RigL's paper compares them (the SET paper drops a fixed share per epoch). A grown connection
starts at 0 (its Adam moments too); one dropped and grown again at once keeps its value.

The count is per layer: each layer keeps exactly the number of active weights its mask started
with (the plan's global L1 sparsity decided those counts), at every step; the weights outside
the mask are plain zeros after every step, so the saved weights need no mask to load.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from search_spaces.derived.plan import named_prunable_weights

METHODS = ("rigl", "set")
ALPHA = 0.3  # the largest share of a layer's active weights one update replaces (RigL's)
END = 0.75  # updates stop at this share of the run's steps (RigL's T_end)


def drop_fraction(step: int, end: int) -> float:
    """RigL's cosine schedule: the share of active weights replaced at ``step`` (0 from
    ``end`` on)."""
    if step >= end:
        return 0.0
    return ALPHA / 2 * (1 + math.cos(math.pi * step / end))


class DynamicMask:
    """The moving mask of a sparse subnet's conv and linear weights that hold zeros.

    Example::

        mask = DynamicMask(subnet, "rigl", interval=100, steps=500, seed=0)
        finetune(subnet, train, 500, 1e-3, after_step=mask.after_step)
        torch.save({"model": subnet.state_dict(), "masks": mask.state()}, path)
    """

    def __init__(
        self,
        model: nn.Module,
        method: str,
        *,
        interval: int,
        steps: int,
        seed: int,
        masks: dict[str, torch.Tensor] | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown sparse training method {method!r}; known: {METHODS}")
        self.method, self.interval, self.seed = method, interval, seed
        self.end = math.floor(END * steps)
        weights = named_prunable_weights(model)
        # masks: those saved with a checkpoint, or the weights' non-zeros as the plan left them
        start = masks if masks is not None else {n: w.detach() != 0 for n, w in weights.items()}
        self.weights = {n: w for n, w in weights.items() if n in start}
        self.masks = {n: start[n].to(torch.bool).clone() for n in self.weights}
        self.masks = {n: m for n, m in self.masks.items() if not bool(m.all())}

    def state(self) -> dict[str, torch.Tensor]:
        """The masks by parameter name, for a checkpoint (``masks=`` restores them)."""
        return {n: m.clone() for n, m in self.masks.items()}

    def active(self) -> dict[str, int]:
        """Active connections per layer (constant over a run)."""
        return {n: int(m.sum()) for n, m in self.masks.items()}

    def updates_at(self, step: int) -> bool:
        return step % self.interval == 0 and step < self.end

    def after_step(self, step: int, optimiser: torch.optim.Optimizer) -> None:
        """Called after optimiser step ``step`` (1-based), the step's gradients in ``.grad``:
        at an update step drop and grow; always zero the weights outside the mask."""
        self.apply()
        if self.updates_at(step):
            generator = torch.Generator().manual_seed((self.seed * 1_000_003 + step) % 2**63)
            share = drop_fraction(step, self.end)
            for name, mask in self.masks.items():
                self._update(name, mask, share, optimiser, generator)
            self.apply()

    @torch.no_grad()
    def apply(self) -> None:
        for name, mask in self.masks.items():
            self.weights[name].mul_(mask)

    @torch.no_grad()
    def _update(
        self,
        name: str,
        mask: torch.Tensor,
        share: float,
        optimiser: torch.optim.Optimizer,
        generator: torch.Generator,
    ) -> None:
        weight = self.weights[name]
        flat = mask.view(-1)
        count = math.floor(share * int(flat.sum()))
        if count == 0:
            return
        magnitude = weight.detach().abs().view(-1).masked_fill(~flat, math.inf)
        dropped = _order(magnitude, descending=False)[:count]
        kept = flat.clone()
        kept[dropped] = False
        score = self._growth_score(weight, generator).masked_fill(kept, -math.inf)
        grown = _order(score, descending=True)[:count]
        new = kept.clone()
        new[grown] = True
        fresh = (new & ~flat).view_as(mask)  # connections that were inactive: they start at 0
        weight.masked_fill_(fresh, 0.0)
        for moment in optimiser.state.get(weight, {}).values():
            if isinstance(moment, torch.Tensor) and moment.shape == weight.shape:
                moment.masked_fill_(fresh, 0.0)
        mask.copy_(new.view_as(mask))

    def _growth_score(self, weight: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.method == "set":
            return torch.rand(weight.numel(), generator=generator)
        if weight.grad is None:
            return torch.zeros(weight.numel())
        return weight.grad.detach().abs().view(-1).clone()


def _order(score: torch.Tensor, *, descending: bool) -> torch.Tensor:
    """Indices of ``score`` sorted, ties in index order (the same on every run)."""
    return torch.sort(score, descending=descending, stable=True).indices
