"""Loading the user's model: a ``"package.module:factory"`` string and an optional state dict."""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from plumbing import first_line
from search_spaces.dimensions import SpaceError


def import_object(spec: str, what: str = "model") -> Any:
    """The object that ``"module:attr"`` names; the working directory is importable too."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SpaceError(f"{what} must look like 'package.module:factory', got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise SpaceError(f"{what} {spec!r} cannot be imported: {exc}") from None
    return obj


def build_model(spec: str, kwargs: Mapping[str, Any]) -> nn.Module:
    factory = import_object(spec)
    if not callable(factory):
        raise SpaceError(f"model {spec!r} is not callable")
    try:
        model = factory(**kwargs)
    except Exception as exc:
        raise SpaceError(f"model factory {spec!r} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise SpaceError(
            f"model factory {spec!r} returned {type(model).__name__}, not an nn.Module"
        )
    return model


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a state dict saved with ``torch.save`` (``weights_only=True``), strictly."""
    file = Path(path)
    if not file.is_file():
        raise SpaceError(f"weights file not found: {file}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = first_line(exc)
        raise SpaceError(f"weights file {file} cannot be loaded safely: {first}") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise SpaceError(f"weights file {file} does not hold a state dict")
    check_state_dict(model, state, str(file))
    model.load_state_dict(state)


def check_state_dict(model: nn.Module, state: Mapping[str, Any], source: str) -> None:
    """A one-line error naming the first missing, unexpected or mis-shaped entry."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_some(missing)}")
        if unexpected:
            parts.append(f"unexpected {_some(unexpected)}")
        raise SpaceError(f"weights {source} do not fit the model: {'; '.join(parts)}")
    for key, value in state.items():
        if tuple(getattr(value, "shape", ())) != tuple(own[key].shape):
            raise SpaceError(
                f"weights {source} do not fit the model: {key} has shape "
                f"{tuple(value.shape)}, the model expects {tuple(own[key].shape)}"
            )


def _some(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:3])
    return f"{shown} (+{len(keys) - 3} more)" if len(keys) > 3 else shown


def fingerprint(model: nn.Module) -> str:
    """sha256 of the model's structure and weights, to tell two models apart."""
    digest = hashlib.sha256(repr(model).encode())
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
