"""The subnet of a stored trial, rebuilt as the search evaluated it (or as fine-tuned since).

Everything comes from the store: the search's config, the space's stored state (channel
importance), the trained supernet checkpoint or, in prune mode, the dense model. The same
seeded steps as in the search (activation or extraction, BN recalibration, the short
fine-tune of prune mode) give the same module, so an export reloads with the stored accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nasprune.config import SearchConfig
from nasprune.data import Loaders, make_loaders
from nasprune.errors import SearchError
from nasprune.evaluate import calibration_batches
from nasprune.lifecycle import stored_config
from nasprune.preparation import (
    candidate,
    evaluation_model,
    load_space_state,
)
from nasprune.queries import find_trial
from nasprune.search import space_of
from nasprune.training import file_sha256
from search_spaces import SearchSpace
from storage import FinetuneRecord, SearchRecord, Store, TrialRecord


@dataclass
class Context:
    """A stored search made ready to rebuild its subnets."""

    config: SearchConfig
    record: SearchRecord
    space: SearchSpace
    loaders: Loaders
    source: nn.Module  # the trained supernet (elastic) or the dense model (prune)
    calibration: list[torch.Tensor]
    mode: str  # elastic | prune


def open_search(store: Store, record: SearchRecord, space: SearchSpace | None = None) -> Context:
    """Ready a stored search; ``space`` is the space object a Python-launched search used."""
    config = stored_config(record)
    space = space_of(config, space)
    loaders = make_loaders(config.data, space.input_shape, space.num_classes, config.seed)
    state = load_space_state(space, store, record, loaders, config.seed)
    source, _ = evaluation_model(config, space, store, loaders, state)
    calibration = calibration_batches(
        loaders.train, config.evaluation.bn_calibration_batches, config.data.batch_size
    )
    mode = config.evaluation.mode
    return Context(config, record, space, loaders, source, calibration, mode)


def searched_subnet(ctx: Context, trial: TrialRecord) -> nn.Module:
    """The standalone module the search measured for ``trial`` (eval mode)."""
    _, subnet = candidate(
        ctx.config, ctx.mode, ctx.space, ctx.source, trial.arch, ctx.calibration, ctx.loaders
    )
    return subnet.eval()


def finetuned_weights(module: nn.Module, run: FinetuneRecord) -> nn.Module:
    """``module`` with the weights of a complete fine-tuning run, checked by checksum."""
    if run.path is None or not Path(run.path).is_file():
        raise SearchError(f"the fine-tuned weights {run.path} are missing; fine-tune again")
    if run.sha256 is not None and file_sha256(Path(run.path)) != run.sha256:
        raise SearchError(f"the fine-tuned weights {run.path} changed on disk (checksum)")
    module.load_state_dict(torch.load(run.path, map_location="cpu", weights_only=True))
    return module.eval()


def trial_subnet(
    store: Store, ctx: Context, number: int, inherited: bool = False
) -> tuple[TrialRecord, nn.Module, FinetuneRecord | None]:
    """Trial ``number``'s subnet: fine-tuned weights when a complete run exists (unless
    ``inherited``), else the search's own. Returns the trial, the module and the run used."""
    trial = find_trial(store, ctx.record, number)
    subnet = searched_subnet(ctx, trial)
    run = None if inherited else store.get_finetune(trial.trial_id)
    if run is not None:
        subnet = finetuned_weights(subnet, run)
    return trial, subnet, run
