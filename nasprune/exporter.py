"""Export a chosen subnetwork as a standalone, physically smaller model, and load it back.

The file is a plain dict of JSON-able values and tensors (``torch.save``), loaded with
``weights_only=True``: the architecture is data, never a pickled module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasprune.api import StorageArg, find_trial, open_store, stored_config
from nasprune.errors import SearchError, StoreError, user_errors
from nasprune.evaluate import accuracy_and_loss, calibration_batches, recalibrate_bn
from nasprune.training import load_or_train
from search_spaces import create_space
from storage import TrialRecord

FORMAT = "nasprune.subnet"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Exported:
    path: Path
    trial: TrialRecord
    accuracy: float  # the exported module's accuracy on the validation split
    params: int


def export(
    name: str,
    path: str | Path,
    *,
    trial: int | None = None,
    max_latency_ms: float | None = None,
    storage: StorageArg = None,
) -> Exported:
    """Write trial ``trial`` (or the best one under ``max_latency_ms``) of search ``name``."""
    from nasprune import api
    from nasprune.data import make_loaders

    if (trial is None) == (max_latency_ms is None):
        raise SearchError("export needs exactly one of --trial N or --max-latency-ms X")
    store = open_store(storage)
    with user_errors():
        record = store.get_search(name)
        if trial is not None:
            chosen = find_trial(store, record, trial)
        else:
            found = api.best(name, max_latency_ms=max_latency_ms, storage=store)
            if found is None:
                raise StoreError(f"search {name!r} has no complete trial under {max_latency_ms} ms")
            chosen = found
        cfg = stored_config(record)
        space = create_space(cfg.space.name, **cfg.space.params)
        loaders = make_loaders(cfg.data, space.input_shape, space.num_classes, cfg.seed)
        supernet, _ = load_or_train(space, loaders.train, cfg, store)
        space.activate(supernet, chosen.arch)
        recalibrate_bn(
            supernet,
            calibration_batches(
                loaders.train, cfg.evaluation.bn_calibration_batches, cfg.data.batch_size
            ),
        )
        subnet = space.extract(supernet, chosen.arch).eval()
        accuracy, _ = accuracy_and_loss(subnet, loaders.val)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "space": space.name,
        "space_params": space.params,
        "arch": chosen.arch,
        "search": name,
        "trial": chosen.number,
        "metrics": {
            "accuracy": chosen.accuracy,
            "latency_ms": chosen.latency_ms,
            "params": chosen.params,
            "macs": chosen.macs,
        },
        "state_dict": subnet.state_dict(),
    }
    out = Path(path)
    if out.parent and not out.parent.exists():
        raise SearchError(f"cannot write {out}: directory {out.parent} does not exist")
    torch.save(payload, out)
    params = sum(p.numel() for p in subnet.parameters())
    return Exported(out, chosen, accuracy, params)


def read_export(path: str | Path) -> dict[str, Any]:
    """The exported file's contents; a file of another kind is refused with a clear error."""
    try:
        payload = torch.load(Path(path), weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise SearchError(f"no such file: {path}") from None
    except Exception as exc:
        raise SearchError(f"{path} is not a nasprune subnet file: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SearchError(f"{path} is not a nasprune subnet file")
    return payload


def load_subnet(path: str | Path) -> nn.Module:
    """Rebuild the exported subnet as a standalone module (eval mode), without the supernet."""
    payload = read_export(path)
    with user_errors():
        space = create_space(payload["space"], **payload["space_params"])
        module = space.build_subnet(payload["arch"])
    module.load_state_dict(payload["state_dict"])
    return module.eval()
