"""NVIDIA Model Optimizer's FastNAS as a peer: channel pruning under a params or FLOPs bound.

    if (reason := available()) is None:
        found = prune(dense, x[:1], {"params": 20_000}, train_loader, score, checkpoint=path)
        found.model  # a plain nn.Module of the dense model's classes, with fewer channels

``mtp.prune(model, mode=[("fastnas", rules)], constraints, dummy_input, config)`` sorts each
layer's channels by importance, measures how much ``score_func`` drops at each width of each
layer (the sensitivity map, one score per choice: the slow part), then binary-searches a
threshold on that drop under the single constraint, recalibrating BatchNorm on ``data_loader``
for each candidate. The result is exported in place (``mtn.export``), so the model returned is
the dense model's own classes again; ``prune`` works on a deep copy.

``rules`` are FastNAS's default rules (widths at 5% steps of each layer's width) with the
channel divisor lowered from 32: widths are rounded to multiples of it, and at 32 a 25- or
64-channel layer would have at most two widths. FastNAS leaves BatchNorm out of both counts (it
folds into the convolution): ``params`` are those of the other modules the forward runs, and
``flops`` torchprofile's MACs times two at ``example_inputs``' batch size.
Conv1d is in FastNAS's default rules and works (``ResCNN1d`` and ``PaperCNN`` both prune).

The sensitivity map is saved in ``checkpoint`` and read back by the next search that names the
same file: reuse one file per (dense model, data, score function, divisor), never across them.
"""

from __future__ import annotations

import copy
import importlib
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

# torchprofile 0.0.4 declares torchvision, whose PyPI wheel is a CUDA build that fails to load
# beside a CPU torch (``operator torchvision::nms does not exist``) and breaks what imports it;
# FastNAS only needs torchprofile's profile_macs, so it is installed without its dependencies.
INSTALL = "pip install -e '.[peers]' && pip install --no-deps torchprofile==0.0.4"
CHANNEL_DIVISOR = 8  # widths in multiples of 8 (a layer narrower than 8 keeps its width)


@dataclass(frozen=True)
class FastNASResult:
    """The exported subnet, the search's wall time, and its params and FLOPs as FastNAS counts
    them, BatchNorm left out (``{"params": ..., "flops": ...}``)."""

    model: nn.Module
    search_s: float
    constraints: dict[str, float]


def available() -> str | None:
    """None when FastNAS imports here, else one line saying why not and how to install it."""
    try:
        _modelopt()
        importlib.import_module("torchprofile")
    except ImportError as exc:
        return f"FastNAS needs nvidia-modelopt and torchprofile ({exc}): {INSTALL}"
    return None


def prune(
    model: nn.Module,
    example_inputs: torch.Tensor,
    constraint: dict[str, float | str],
    train_loader: Iterable[Any],
    score_func: Callable[[nn.Module], float],
    channel_divisor: int = CHANNEL_DIVISOR,
    checkpoint: str | Path | None = None,
    verbose: bool = False,
) -> FastNASResult:
    """FastNAS on a deep copy of ``model`` under one bound: ``{"params": n}`` or
    ``{"flops": n}`` (absolute, or a share of the dense model as ``"60%"``).

    ``train_loader`` yields ``(inputs, targets)`` batches; its first 50 batches recalibrate
    BatchNorm for each candidate. ``score_func`` (higher is better, e.g. validation accuracy)
    is called on models in eval mode: keep its data small, it runs once per width of every layer.
    A bound below the smallest subnet raises ValueError with one line.
    """
    if len(constraint) != 1 or not constraint.keys() <= {"params", "flops"}:
        raise ValueError(f"one constraint, params or flops, is needed; got {constraint}")
    mtp = _modelopt()
    net = copy.deepcopy(model).eval()
    config = {
        "data_loader": train_loader,
        "score_func": score_func,
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "verbose": verbose,
    }
    started = time.perf_counter()
    try:
        net, state = mtp.prune(
            net,
            mode=[("fastnas", rules(channel_divisor))],
            constraints=dict(constraint),
            dummy_input=example_inputs,
            config=config,
        )
    except ValueError as exc:
        if "NOT all constraints can be satisfied" not in str(exc):
            raise
        reason = f"its smallest subnet (channel divisor {channel_divisor}) is larger"
        raise ValueError(f"FastNAS cannot meet {constraint}: {reason}") from None
    searched = time.perf_counter() - started
    return FastNASResult(net.train(model.training), searched, dict(state["best"]["constraints"]))


def rules(channel_divisor: int = CHANNEL_DIVISOR) -> dict[str, Any]:
    """FastNAS's default mode config with every channel and feature divisor set to
    ``channel_divisor``."""
    defaults = _modelopt().fastnas.FastNASConfig().model_dump()
    return {layer: _with_divisor(rule, channel_divisor) for layer, rule in defaults.items()}


def _with_divisor(wrapped: dict[str, Any], divisor: int) -> dict[str, Any]:
    out = {}
    for pattern, rule in wrapped.items():  # {"*": {...}}: one rule per module-name pattern
        if rule is not None:
            rule = {k: divisor if k.endswith("_divisor") else v for k, v in rule.items()}
        out[pattern] = rule
    return out


def _modelopt() -> ModuleType:
    with warnings.catch_warnings():  # "transformers 5.x is not tested with modelopt": no HF here
        warnings.simplefilter("ignore", UserWarning)
        return importlib.import_module("modelopt.torch.prune")
