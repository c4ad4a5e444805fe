"""What a search evaluates with: the space's stored state and the model candidates come from.

A derived space ranks channels by importance, computed once on the dense model and stored
with the search (artifact ``space_state``), so a resumed search, an export or another worker
uses the very same ranking. In ``elastic`` mode candidates are activated inside a trained
supernet; in ``prune`` mode they are cut from the dense model itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from itertools import islice
from typing import Any

import torch
from torch import nn

from nasprune.config import SearchConfig
from nasprune.data import Loaders
from nasprune.evaluate import recalibrate_bn
from nasprune.finetune import finetune
from nasprune.training import load_or_train
from search_spaces import SearchSpace
from storage import SearchRecord, Store

STATE_ARTIFACT = "space_state"


def load_space_state(
    space: SearchSpace, store: Store, search: SearchRecord, loaders: Loaders, seed: int
) -> dict[str, Any] | None:
    """Give the space its stored state, computing and storing it on first use."""
    if not space.needs_state():
        return None
    stored = store.get_artifact(search.search_id, STATE_ARTIFACT)
    if stored is None:
        fitted = space.fit_state(islice(iter(loaders.train), 64), seed)
        stored = store.put_artifact(search.search_id, STATE_ARTIFACT, fitted)
    space.load_state(stored.content)
    return dict(stored.content)


def state_digest(state: dict[str, Any] | None) -> str | None:
    if state is None:
        return None
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def finetune_candidate(
    config: SearchConfig,
    mode: str,
    subnet: nn.Module,
    loaders: Loaders,
    dense: nn.Module,
    heartbeat: Callable[[], None] | None = None,
) -> None:
    """Prune mode's short training of a candidate (``evaluation.finetune_steps``, distilled
    from the dense model if asked); nothing in elastic mode. Seeded: the same every time."""
    settings = config.evaluation
    if mode != "prune" or settings.finetune_steps == 0:
        return

    def beat(step: int, _loss: float) -> None:
        if heartbeat is not None and step % 50 == 0:
            heartbeat()

    finetune(
        subnet,
        loaders.train,
        settings.finetune_steps,
        settings.finetune_lr,
        teacher=dense if settings.distill else None,
        seed=config.seed,
        on_step=beat,
    )


def candidate(
    config: SearchConfig,
    mode: str,
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
    there (no copy), unless the space says its masks cannot emulate it (weight sparsity); in
    prune mode, and then, the extracted subnet is recalibrated, briefly fine-tuned in prune
    mode, and measured itself. Either way the modules are checked before any is evaluated
    (:meth:`SearchSpace.check_active`; a derived space checks every extraction against the
    source with the pruned channels zeroed): a candidate that fails is a ``SpaceError``.
    """
    if mode == "elastic" and space.masks_emulate(arch):
        space.activate(source, arch)
        recalibrate_bn(source, calibration)
        subnet = space.extract(source, arch)
        space.check_active(source, arch, subnet)
        return source, subnet
    subnet = space.extract(source, arch)
    recalibrate_bn(subnet, calibration)
    finetune_candidate(config, mode, subnet, loaders, source, heartbeat)
    return subnet, subnet


def evaluation_model(
    config: SearchConfig,
    space: SearchSpace,
    store: Store,
    loaders: Loaders,
    state: dict[str, Any] | None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> tuple[nn.Module, bool]:
    """The model candidates are evaluated from, and whether a stored supernet was reused."""
    if config.evaluation.mode == "prune":
        return space.dense_model().eval(), False
    extra = {"space_params": space.params, "state": state_digest(state)} if state else None
    return load_or_train(space, loaders.train, config, store, on_epoch=on_epoch, extra=extra)
