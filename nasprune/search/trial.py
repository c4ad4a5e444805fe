"""What one trial measures: cheap screens first, then accuracy with inherited weights (trained
``evaluation.finetune_steps`` on their own first), then the latency of the extracted subnet on
this worker's device."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nasprune.evaluation.metrics import accuracy_and_loss
from nasprune.latency.predictor import Predictor, calibrated, load_predictor, unit_timer
from nasprune.latency.recorded import recorded_latency
from nasprune.quantization import Int8Model, int8_device
from nasprune.search.worker import Worker
from search_spaces import Architecture
from search_spaces.derived import nonzero_params
from storage import TrialRecord, TrialState


def evaluate(
    worker: Worker, trial: TrialRecord, heartbeat: Callable[[], None]
) -> tuple[TrialState, dict[str, Any], str | None]:
    """Screen on exact params and MACs, then accuracy with inherited (briefly trained)
    weights, then latency.
    Returns the state, the metrics and the key of the trial's latency measurements."""
    space, config, arch = worker.search.space, worker.search.config, trial.arch
    metrics: dict[str, Any] = {"params": space.num_params(arch), "macs": space.macs(arch)}
    violated = [
        m
        for m in ("params", "macs")
        if m in config.constraints and metrics[m] > config.constraints[m].max
    ]
    if violated:
        metrics["violated"] = ",".join(violated)
        return TrialState.INFEASIBLE, metrics, None
    if worker.predictor is not None:
        if _screen(worker, arch, metrics) is not None:
            return TrialState.INFEASIBLE, metrics, None
    measured, latency_key = _measure(worker, arch, heartbeat)
    return TrialState.COMPLETE, metrics | measured, latency_key


def _measure(
    worker: Worker, arch: Architecture, heartbeat: Callable[[], None]
) -> tuple[dict[str, float], str]:
    """Accuracy and loss after BN recalibration (and ``evaluation.finetune_steps``), then the
    latency of the extracted, physically smaller module (see :meth:`StoredSearch.candidate`).
    A candidate with int8 layers is scored fake-quantized in elastic mode and as ONNX
    Runtime's int8 model itself in prune mode, and timed as that int8 model."""
    evaluated, subnet = worker.search.candidate(arch, heartbeat)
    int8 = worker.search.space.int8_layers(arch)
    if int8:
        subnet = Int8Model(subnet, int8, worker.search.int8_calibration)
        evaluated = subnet if worker.search.mode == "elastic" else subnet.deployed()
    accuracy, loss = accuracy_and_loss(evaluated, worker.search.loaders.val)
    heartbeat()
    metrics, latency_key = _metrics_of(worker, subnet, arch, evaluated)
    return metrics | {"accuracy": accuracy, "loss": loss}, latency_key


def _metrics_of(
    worker: Worker, subnet: nn.Module, arch: Architecture, scored: nn.Module | None = None
) -> tuple[dict[str, float], str]:
    """Latency of the extracted subnet (an int8 one filed under the device's int8 key, in the
    same unit), held-out accuracy (of ``scored``, the module the accuracy was measured on when
    it is not ``subnet``), and its non-zero weights when the space has a sparsity dimension;
    and the key of its latency measurements."""
    fp32 = subnet.fp32 if isinstance(subnet, Int8Model) else subnet
    latency_key = worker.search.space.latency_key(arch, fp32)
    on = int8_device(worker.on) if isinstance(subnet, Int8Model) else worker.on
    timed, _ = recorded_latency(
        worker.search.store, worker.backend, on, subnet, latency_key, worker.remeasure,
        anchor_on=worker.on, reference=worker.reference,
    )  # fmt: skip
    metrics = {"latency_ms": timed.median_ms, "latency_p90_ms": timed.p90_ms}
    if timed.spread is not None:
        metrics["latency_spread"] = timed.spread
    if timed.noisy:
        metrics["latency_noisy"] = 1.0  # the median's CI never got within latency.precision
    if timed.reference is not None:  # taken against the device's reference network
        metrics["latency_drift"] = timed.reference.drift  # the machine's speed against its anchor
        if timed.reference.drifted:
            metrics["latency_drifted"] = 1.0  # beyond latency.precision: the ratio still holds
    if worker.search.loaders.test is not None:
        held_out = accuracy_and_loss(scored or subnet, worker.search.loaders.test)[0]
        metrics["test_accuracy"] = held_out
    if "sparsity" in arch:
        metrics["nonzero_params"] = float(nonzero_params(fp32))
        metrics["sparsity"] = float(arch["sparsity"])
    if isinstance(subnet, Int8Model):
        metrics["int8_layers"] = float(len(subnet.layers))
    return metrics, latency_key


def screening_predictor(worker: Worker) -> Predictor | None:
    """The device's predictor when the search has a latency limit to screen against."""
    config, store, search = worker.search.config, worker.search.store, worker.search.record
    if "latency_ms" not in config.constraints or not config.latency.screen:
        return None
    space = worker.search.space
    predictor = load_predictor(store, worker.on, space, worker.reference)
    if predictor is None and not any(e.kind == "screen" for e in store.events(search.search_id)):
        older = calibrated(store, worker.on, space)  # timed against another reference
        what = "an outdated latency calibration" if older else "no latency calibration"
        store.add_event(
            search.search_id,
            "screen",
            f"{what} of {space.name} for this device: every candidate is evaluated; "
            f"`nasprune calibrate CONFIG`{' again' if older else ''} lets the search skip "
            "hopeless ones",
        )
    return predictor


def _screen(worker: Worker, arch: Architecture, metrics: dict[str, Any]) -> str | None:
    """Predict the candidate's latency; when it exceeds the limit by more than the margin,
    record why in ``metrics`` and return the reason. Units missing from the table are timed
    and added to it. The prediction is kept as ``predicted_latency_ms``, never as latency."""
    assert worker.predictor is not None
    limit = worker.search.config.constraints["latency_ms"].max
    margin = worker.search.config.latency.screen_margin
    store, backend, on = worker.search.store, worker.backend, worker.on
    with torch.random.fork_rng(devices=[]):  # the strategy's and the loop's draws stay as they were
        structure = worker.search.space.structure(arch)
    int8 = worker.search.space.int8_layers(arch)
    found = worker.predictor.predict(
        structure,
        worker.search.space.input_shape,
        unit_timer(store, backend, on, worker.reference),
        int8,
    )
    if found is None:
        return None
    metrics["predicted_latency_ms"] = found.latency_ms
    if found.latency_ms <= limit * (1 + margin):
        return None
    metrics["violated"] = "latency_ms (predicted)"
    reason = (
        f"screened: predicted {found.latency_ms:.3g} ms > limit {limit:g} ms + "
        f"{margin:.0%} margin; accuracy not evaluated"
    )
    metrics["screened"] = reason
    return reason


def record_reference(worker: Worker) -> None:
    """Evaluate the dense model once per search, as the yardstick `best` shows: the user's
    own trained model as it is for a derived space, else the supernet's largest subnet."""
    search_id = worker.search.record.search_id
    if any(e.kind == "reference" for e in worker.search.store.events(search_id)):
        return
    largest = worker.search.space.largest()
    if worker.search.space.pretrained:
        dense = worker.search.space.dense_model().eval()
        accuracy, loss = accuracy_and_loss(dense, worker.search.loaders.val)
        metrics = _metrics_of(worker, dense, largest)[0] | {"accuracy": accuracy, "loss": loss}
    else:
        metrics = _measure(worker, largest, lambda: None)[0]
    metrics.update(
        params=worker.search.space.num_params(largest), macs=worker.search.space.macs(largest)
    )
    worker.search.store.add_event(search_id, "reference", json.dumps(metrics))
