"""The trained supernet of a search: reused from its checkpoint when one with the same recipe
is intact, resumed from the last saved training state when a training was killed, else trained
(:mod:`nasprune.evaluation.supernet_training`) and recorded.

A checkpoint is a file whose SHA-256 the store keeps under the recipe's key; the resumable
state of a training in progress is one too, under ``resume:`` and the key, replaced at every
evaluation and removed once the supernet is recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasprune.config import SearchConfig
from nasprune.evaluation.data import Loaders
from nasprune.evaluation.supernet_training import Outcome, Progress, supernet_lr, train_supernet
from plumbing import json_hash
from search_spaces import SearchSpace
from storage import Store

__all__ = [
    "Progress",
    "checkpoint_key",
    "checkpoint_paths",
    "file_sha256",
    "load_or_train",
    "supernet_lr",
    "trained_line",
]

CHECKPOINT_FORMAT = 2  # bump when training changes so that old checkpoints are not reused


def checkpoint_key(config: SearchConfig, extra: dict[str, Any] | None = None) -> str:
    """What a trained supernet depends on: space, data, training settings, seed (and, for a
    derived space, the model's fingerprint and the channel ranking, in ``extra``)."""
    recipe: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "space": config.space.model_dump(mode="json"),
        "data": config.data.model_dump(mode="json"),
        "supernet": config.supernet.model_dump(mode="json", exclude={"checkpoint_dir"}),
        "evaluation": config.evaluation.bn_calibration_batches,  # checks during training
        "seed": config.seed,
    }
    if extra:
        recipe["extra"] = extra
    return json_hash(recipe)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_or_train(
    space: SearchSpace,
    loaders: Loaders,
    calibration: list[torch.Tensor],
    config: SearchConfig,
    store: Store,
    report: Callable[[Progress], None] | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[nn.Module, Outcome | None]:
    """The trained supernet for this config, and how its training ended (None when a stored
    checkpoint was reused)."""
    key = checkpoint_key(config, extra)
    final, resume_file = checkpoint_paths(config.supernet.checkpoint_dir, space, key)
    reused = _intact(store, key)
    if reused is not None:
        supernet = space.build_supernet()
        supernet.load_state_dict(torch.load(reused, weights_only=True))
        return supernet.eval(), None
    saved = _intact(store, f"resume:{key}")
    resume = None if saved is None else torch.load(saved, weights_only=True)
    final.parent.mkdir(parents=True, exist_ok=True)

    def save(state: dict[str, Any]) -> None:
        partial = resume_file.with_suffix(".part")
        torch.save(state, partial)
        partial.replace(resume_file)  # a kill never leaves half a file under the name
        store.put_checkpoint(f"resume:{key}", space.name, str(resume_file.resolve()),
                             file_sha256(resume_file))  # fmt: skip

    supernet, outcome = train_supernet(space, loaders, calibration, config, save, resume, report)
    torch.save(supernet.state_dict(), final)
    store.put_checkpoint(key, space.name, str(final.resolve()), file_sha256(final))
    resume_file.unlink(missing_ok=True)
    return supernet, outcome


def _intact(store: Store, key: str) -> Path | None:
    """The file recorded under ``key``, if it is there with its recorded checksum."""
    record = store.get_checkpoint(key)
    if record is None:
        return None
    path = Path(record.path)
    return path if path.is_file() and file_sha256(path) == record.sha256 else None


def trained_line(outcome: Outcome, worker: str) -> str:
    """The search's event once the supernet is trained: by whom, how long, why it stopped."""
    progress = outcome.progress
    resumed = f", resumed at step {progress.resumed_at}" if progress.resumed_at else ""
    accuracy = ", ".join(f"{k} {v:.1%}" for k, v in progress.accuracy.items())
    return (
        f"trained by {worker}: {progress.step} of {progress.steps} steps in "
        f"{progress.seconds:.0f} s (stopped by {outcome.stopped_because}{resumed}); "
        f"validation accuracy {accuracy or 'not evaluated'}"
    )


def checkpoint_paths(folder: str, space: SearchSpace, key: str) -> tuple[Path, Path]:
    """(the trained supernet's file, the resumable training state's file)."""
    stem = Path(folder) / f"{space.name}-{key[:16]}"
    return stem.with_suffix(".pt"), stem.with_suffix(".resume.pt")
