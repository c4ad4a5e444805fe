"""A stored search made ready to evaluate: the one object every command after ``run`` opens.

Everything comes from the store: the search's config, the space's stored state (channel
importance, computed once on the dense model and stored as artifact ``space_state``, so a
resumed search, an export or another worker uses the very same ranking), the trained supernet
checkpoint or, in prune mode, the dense model. The same seeded steps as in the search
(activation or extraction, BN recalibration, the short fine-tune of prune mode) give the same
module, so an export reloads with the stored accuracy. The search's workers, ``measure``,
``export``, ``finetune`` and ``validate-proxy`` all open a search with :func:`open_stored`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasprune.config import Mode, SearchConfig, stored_config
from nasprune.errors import SearchError
from nasprune.evaluation.candidates import candidate
from nasprune.evaluation.data import Loaders, make_loaders
from nasprune.evaluation.metrics import calibration_batches
from nasprune.evaluation.supernet import Progress, file_sha256, load_or_train
from nasprune.evaluation.supernet_training import Outcome
from nasprune.store_access import find_trial
from plumbing import json_hash
from search_spaces import SearchSpace, create_space
from search_spaces.base import LayerTimes
from storage import FinetuneRecord, SearchRecord, Store, TrialRecord

STATE_ARTIFACT = "space_state"
STATE_BATCHES = 64  # training batches the space's state (channel importance) is fitted on


@dataclass
class StoredSearch:
    """A stored search made ready to rebuild and evaluate its candidates."""

    config: SearchConfig
    store: Store
    record: SearchRecord
    space: SearchSpace  # with its stored state loaded
    loaders: Loaders
    source: nn.Module  # the trained supernet (elastic) or the dense model (prune)
    calibration: list[torch.Tensor]  # the fixed batches BN statistics are recalibrated on
    training: Outcome | None = None  # how the supernet's training ended, when opening trained it
    fitted_notes: list[str] | None = None  # the state's notes, when opening fitted the state

    @functools.cached_property
    def int8_calibration(self) -> list[torch.Tensor]:
        """The fixed batches int8 models are calibrated on (``quantization.calibration_batches``
        of the space), from the start of the training data like :attr:`calibration`."""
        count = (
            0 if self.space.quantization is None else self.space.quantization.calibration_batches
        )
        return calibration_batches(self.loaders.train, count, self.config.data.batch_size)

    @property
    def has_supernet(self) -> bool:
        """Whether the search has a supernet (prune mode cuts candidates from the dense model)."""
        return self.mode != "prune"

    @property
    def reused_supernet(self) -> bool:
        """Whether the supernet was loaded, not trained, when opening."""
        return self.training is None and self.has_supernet

    @property
    def mode(self) -> Mode:
        return self.config.evaluation.mode

    def candidate(
        self, arch: Mapping[str, Any], heartbeat: Callable[[], None] | None = None
    ) -> tuple[nn.Module, nn.Module]:
        """(the module ``arch``'s accuracy is measured on, its standalone subnet); see
        :func:`nasprune.evaluation.candidates.candidate`."""
        return candidate(
            self.config, self.space, self.source, arch, self.calibration, self.loaders, heartbeat
        )

    def subnet(self, trial: TrialRecord) -> nn.Module:
        """The standalone module the search measured for ``trial`` (eval mode)."""
        return self.candidate(trial.arch)[1].eval()

    def trial_subnet(
        self, number: int, inherited: bool = False
    ) -> tuple[TrialRecord, nn.Module, FinetuneRecord | None]:
        """Trial ``number``'s subnet: fine-tuned weights when a complete run exists (unless
        ``inherited``), else the search's own. Returns the trial, the module and the run."""
        trial = find_trial(self.store, self.record, number)
        subnet = self.subnet(trial)
        run = None if inherited else self.store.get_finetune(trial.trial_id)
        if run is not None:
            subnet = finetuned_weights(subnet, run)
        return trial, subnet, run


def open_stored(
    store: Store, record: SearchRecord, space: SearchSpace | None = None
) -> StoredSearch:
    """Ready the stored search ``record`` (``space``: the space object a Python-launched
    search used, checked against the stored config)."""
    config = stored_config(record)
    return ready_search(config, store, record, space_of(config, space))


def ready_search(
    config: SearchConfig,
    store: Store,
    record: SearchRecord,
    space: SearchSpace,
    loaders: Loaders | None = None,
    report: Callable[[Progress], None] | None = None,
    layer_ms: LayerTimes | None = None,
) -> StoredSearch:
    """:func:`open_stored` from parts already resolved (a worker prepared ``config``'s space
    and loaders before it joined): the space's stored state loaded (or fitted, given the
    device's ``layer_ms``, and stored), and, in elastic mode, the supernet loaded from its
    checkpoint, or trained (``report`` shows its progress) and recorded when there is none."""
    if loaders is None:
        loaders = make_loaders(config.data, space.input_shape, space.num_classes, config.seed)
    state, fitted = _load_state(space, store, record, loaders, config.seed, layer_ms)
    batches = calibration_batches(
        loaders.train, config.evaluation.bn_calibration_batches, config.data.batch_size
    )
    if config.evaluation.mode == "prune":
        source, training = space.dense_model().eval(), None
    else:
        extra = {"space_params": space.params, "state": json_hash(state)} if state else None
        source, training = load_or_train(space, loaders, batches, config, store, report, extra)
    notes = [str(note) for note in state.get("notes", [])] if state and fitted else None
    return StoredSearch(config, store, record, space, loaders, source, batches, training, notes)


def space_of(config: SearchConfig, space: SearchSpace | None = None) -> SearchSpace:
    """The config's space, or ``space`` after checking that it is the config's."""
    if space is None:
        return create_space(config.space.name, **config.space.params)
    if (space.name, space.params) != (config.space.name, config.space.params):
        raise SearchError(
            f"the space given ({space.name}) is not the one this search was created with; "
            "pass the same model and options"
        )
    return space


def space_with_state(
    config: SearchConfig,
    space: SearchSpace | None = None,
    *,
    store: Store | None = None,
    record: SearchRecord | None = None,
) -> SearchSpace:
    """The config's space with its data-dependent state (channel importance) in place, when
    it needs one (the structure of a subnetwork may depend on it): the search ``record``'s
    stored state, or, for what belongs to no search (a calibration), fitted now."""
    space = space_of(config, space)
    if not space.needs_state():
        return space
    loaders = make_loaders(config.data, space.input_shape, space.num_classes, config.seed)
    if store is not None and record is not None:
        _load_state(space, store, record, loaders, config.seed)
    else:
        space.load_state(space.fit_state(islice(iter(loaders.train), STATE_BATCHES), config.seed))
    return space


def _load_state(
    space: SearchSpace,
    store: Store,
    record: SearchRecord,
    loaders: Loaders,
    seed: int,
    layer_ms: LayerTimes | None = None,
) -> tuple[dict[str, Any] | None, bool]:
    """Give the space its stored state, computing and storing it on first use: (the state,
    whether it was computed now)."""
    if not space.needs_state():
        return None, False
    stored = store.get_artifact(record.search_id, STATE_ARTIFACT)
    fitted = stored is None
    if stored is None:
        state = space.fit_state(islice(iter(loaders.train), STATE_BATCHES), seed, layer_ms)
        stored = store.put_artifact(record.search_id, STATE_ARTIFACT, state)
    space.load_state(stored.content)
    return dict(stored.content), fitted


def finetuned_weights(module: nn.Module, run: FinetuneRecord) -> nn.Module:
    """``module`` with the weights of a complete fine-tuning run, checked by checksum."""
    if run.path is None or not Path(run.path).is_file():
        raise SearchError(f"the fine-tuned weights {run.path} are missing; fine-tune again")
    if run.sha256 is not None and file_sha256(Path(run.path)) != run.sha256:
        raise SearchError(f"the fine-tuned weights {run.path} changed on disk (checksum)")
    module.load_state_dict(torch.load(run.path, map_location="cpu", weights_only=True))
    return module.eval()
