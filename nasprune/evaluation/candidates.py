"""A candidate made ready to evaluate: in ``elastic`` mode activated inside the trained
supernet; in ``prune`` mode cut from the dense model itself and recalibrated; either way
checked before any accuracy is measured, then, with ``evaluation.finetune_steps``, extracted
and briefly trained on its own (seeded: the same every time).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nasprune.config import SearchConfig
from nasprune.evaluation.data import Loaders
from nasprune.evaluation.finetune import finetune
from nasprune.evaluation.metrics import recalibrate_bn
from search_spaces import SearchSpace

# A candidate's training steps where ``evaluation.finetune_steps`` is not set. Against
# fine-tuned accuracy (benchmarks/bench_trust.py, the README's runs 40 to 71), 200 steps ranked
# the subnets of supernets trained from random weights better than 50 in 16 comparisons of 20;
# in spaces derived from the user's trained weights 50 ranked better than 200 in 9 runs of 11
# (one the same), and against the steadier decaying-rate instrument (runs 88 to 94) 50, 100
# and 200 ranked alike (mean tau +0.62, +0.60, +0.59 over six runs): 50 costs least.
# The space's ``pretrained`` tells them apart, as it sizes the supernet's budget.
FROM_RANDOM_WEIGHTS, FROM_TRAINED_WEIGHTS = 200, 50


def default_candidate_steps(pretrained: bool) -> int:
    """The steps of a candidate's training where the config sets none, for a space whose
    supernet starts from trained weights (``pretrained``) or from random ones."""
    return FROM_TRAINED_WEIGHTS if pretrained else FROM_RANDOM_WEIGHTS


def candidate_steps(config: SearchConfig, space: SearchSpace) -> int:
    """How many steps each candidate trains before it is scored: ``evaluation.finetune_steps``,
    or, unset, :func:`default_candidate_steps` for the space."""
    steps = config.evaluation.finetune_steps
    return default_candidate_steps(space.pretrained) if steps is None else steps


def finetune_candidate(
    config: SearchConfig,
    steps: int,
    subnet: nn.Module,
    loaders: Loaders,
    dense: nn.Module,
    heartbeat: Callable[[], None] | None = None,
) -> None:
    """A candidate's short training, ``steps`` long (in prune mode distilled from the dense
    model ``dense`` if asked). Seeded: the same every time."""
    settings = config.evaluation
    if steps == 0:
        return
    distilled = settings.distill and config.evaluation.mode == "prune"

    def beat(step: int, _loss: float) -> None:
        if heartbeat is not None and step % 50 == 0:
            heartbeat()

    finetune(
        subnet,
        loaders.train,
        steps,
        settings.finetune_lr,
        teacher=dense if distilled else None,
        seed=config.seed,
        on_step=beat,
        lr_schedule=settings.finetune_lr_schedule,
    )


def candidate(
    config: SearchConfig,
    space: SearchSpace,
    source: nn.Module,
    arch: Mapping[str, Any],
    calibration: Sequence[torch.Tensor],
    loaders: Loaders,
    heartbeat: Callable[[], None] | None = None,
) -> tuple[nn.Module, nn.Module]:
    """A candidate made ready to evaluate: (the module its accuracy is measured on, its
    standalone, physically smaller subnet).

    In elastic mode the candidate is activated inside the supernet ``source`` and measured
    there (no copy), unless the space says its masks cannot emulate it (weight sparsity) or
    it is trained (:func:`candidate_steps`); in prune mode, and then, the extracted subnet is
    recalibrated, trained for those steps, and measured itself. Either way the modules
    are checked before any is evaluated or trained (:meth:`SearchSpace.check_active`; a
    derived space checks every extraction against the source with the pruned channels
    zeroed): a candidate that fails is a ``SpaceError``.
    """
    steps = candidate_steps(config, space)
    if config.evaluation.mode == "elastic" and space.masks_emulate(arch):
        space.activate(source, arch)
        recalibrate_bn(source, calibration)
        subnet = space.extract(source, arch)
        space.check_active(source, arch, subnet)
        if steps == 0:
            return source, subnet
    else:
        subnet = space.extract(source, arch)
        recalibrate_bn(subnet, calibration)
    finetune_candidate(config, steps, subnet, loaders, source, heartbeat)
    return subnet, subnet
