"""Supernet training by the sandwich rule, and the checkpoint that lets later searches skip it.

Each step trains the largest subnet on the labels, then the smallest and ``random_subnets``
random ones on the largest one's soft labels (in-place distillation), accumulating gradients
into the shared weights before one optimiser step.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasprune.config import SearchConfig
from plumbing import json_hash
from search_spaces import SearchSpace
from storage import Store

CHECKPOINT_FORMAT = 1  # bump when training changes so that old checkpoints are not reused


def checkpoint_key(config: SearchConfig, extra: dict[str, Any] | None = None) -> str:
    """What a trained supernet depends on: space, data, training settings, seed (and, for a
    derived space, the model's fingerprint and the channel ranking, in ``extra``)."""
    recipe: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "space": config.space.model_dump(mode="json"),
        "data": config.data.model_dump(mode="json"),
        "supernet": config.supernet.model_dump(mode="json", exclude={"checkpoint_dir"}),
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


def supernet_lr(config: SearchConfig, space: SearchSpace) -> float:
    """The config's learning rate, else 0.001 for a supernet that starts from a trained model
    (a derived space) and 0.01 for one trained from scratch."""
    if config.supernet.lr is not None:
        return config.supernet.lr
    return 1e-3 if space.pretrained else 1e-2


def train_supernet(
    space: SearchSpace,
    train: torch.utils.data.DataLoader[Any],
    config: SearchConfig,
    on_epoch: Callable[[int, float], None] | None = None,
) -> nn.Module:
    """Train a fresh supernet, seeded by ``config.seed``; returns it in eval mode."""
    settings = config.supernet
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    supernet = space.build_supernet()
    optimiser = torch.optim.Adam(
        supernet.parameters(), lr=supernet_lr(config, space), weight_decay=settings.weight_decay
    )
    largest, smallest = space.largest(), space.smallest()
    for epoch in range(settings.epochs):
        supernet.train()
        total = 0.0
        for x, y in train:
            optimiser.zero_grad()
            archs = [largest, smallest] + [
                space.sample(rng) for _ in range(settings.random_subnets)
            ]
            teacher: torch.Tensor | None = None
            for arch in archs:
                space.activate(supernet, arch)
                logits = supernet(x)
                if teacher is None or not settings.distill:
                    loss = F.cross_entropy(logits, y)
                    teacher = logits.detach().softmax(dim=1)
                else:
                    loss = F.kl_div(logits.log_softmax(dim=1), teacher, reduction="batchmean")
                loss.backward()
                total += float(loss.detach())
            optimiser.step()
        if on_epoch is not None:
            on_epoch(epoch + 1, total / max(1, len(train)))
    supernet.eval()
    return supernet


def load_or_train(
    space: SearchSpace,
    train: torch.utils.data.DataLoader[Any],
    config: SearchConfig,
    store: Store,
    on_epoch: Callable[[int, float], None] | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[nn.Module, bool]:
    """The trained supernet for this config, reused from the store when its file is intact.

    Returns the supernet and whether it was reused.
    """
    key = checkpoint_key(config, extra)
    record = store.get_checkpoint(key)
    if record is not None:
        path = Path(record.path)
        if path.is_file() and file_sha256(path) == record.sha256:
            supernet = space.build_supernet()
            supernet.load_state_dict(torch.load(path, weights_only=True))
            return supernet.eval(), True
    supernet = train_supernet(space, train, config, on_epoch)
    path = Path(config.supernet.checkpoint_dir) / f"{space.name}-{key[:16]}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(supernet.state_dict(), path)
    store.put_checkpoint(key, space.name, str(path.resolve()), file_sha256(path))
    return supernet, False
