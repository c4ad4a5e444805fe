"""Export a chosen subnetwork as a standalone, physically smaller model, and load it back.

Three formats, each written with the pruning plan as JSON beside it (``NAME.plan.json``):

* ``state``: a plain dict of JSON-able values and tensors (``torch.save``), loaded with
  ``weights_only=True`` by :func:`load_subnet`: the architecture is data, never a pickle;
* ``torchscript``: ``torch.jit.script`` (``trace`` for models that do not script);
* ``onnx``: the TorchScript-based exporter (opset 17, dynamic batch), checked under ONNX
  Runtime against torch to 1e-4 before the file is kept. A subnet whose architecture has
  int8 layers is written as the QDQ int8 model ONNX Runtime runs (calibrated on the search's
  data, :mod:`nasprune.quantization`), checked against the fake-quantized model on validation
  inputs to 5% of its largest output before the file is kept; the plan lists the int8 layers.
  ``state`` and ``torchscript`` hold the fp32 module of such a subnet (the plan still lists
  the layers that run in int8).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from nasprune.errors import SearchError, StoreError, user_errors
from nasprune.evaluation.metrics import accuracy_and_loss
from nasprune.latency.torchscript import torchscript
from nasprune.onnx_export import export_onnx
from nasprune.quantization import Int8Model, OrtModule
from nasprune.store_access import StorageArg, open_store
from plumbing import require
from search_spaces import SearchSpace, create_space
from search_spaces.derived import apply_plan
from storage import FinetuneRecord, TrialRecord

FORMAT = "nasprune.subnet"
FORMAT_VERSION = 2
FORMATS = ("state", "torchscript", "onnx")
ONNX_TOLERANCE = 1e-4
INT8_TOLERANCE = 0.05  # int8 file against the fake-quantized model: a share of the largest output
Format = Literal["state", "torchscript", "onnx"]


@dataclass(frozen=True)
class Exported:
    path: Path
    plan_path: Path
    trial: TrialRecord
    accuracy: float  # the exported module's accuracy on the validation split
    params: int
    finetuned: FinetuneRecord | None  # the fine-tuning run whose weights were exported
    int8_layers: tuple[str, ...] = ()  # the layers that run in int8 (in the onnx file only)


def plan_path_for(path: Path) -> Path:
    return path.with_name(path.stem + ".plan.json")


def export(
    name: str,
    path: str | Path,
    *,
    trial: int | None = None,
    max_latency_ms: float | None = None,
    storage: StorageArg = None,
    format: Format = "state",
    inherited: bool = False,
    space: SearchSpace | None = None,
) -> Exported:
    """Write trial ``trial`` (or the best one under ``max_latency_ms``) of search ``name``.

    A trial that was fine-tuned (``nasprune finetune``) is exported with its fine-tuned
    weights unless ``inherited``.
    """
    from nasprune import queries
    from nasprune.evaluation.stored import open_stored

    if (trial is None) == (max_latency_ms is None):
        raise SearchError("export needs exactly one of --trial N or --max-latency-ms X")
    if format not in FORMATS:
        raise SearchError(f"unknown export format {format!r}; known: {', '.join(FORMATS)}")
    out = Path(path)
    if not out.parent.is_dir():
        raise SearchError(f"cannot write {out}: directory {out.parent} does not exist")
    store = open_store(storage)
    with user_errors():
        record = store.get_search(name)
        number = trial
        if number is None:
            found = queries.best(name, max_latency_ms=max_latency_ms, storage=store)
            if found is None:
                raise StoreError(f"search {name!r} has no complete trial under {max_latency_ms} ms")
            number = found.number
        ctx = open_stored(store, record, space)
        chosen, subnet, run = ctx.trial_subnet(number, inherited)
        plan = _plan_document(ctx.space, chosen, name, run)
        int8 = tuple(ctx.space.int8_layers(chosen.arch))
        if int8 and format == "onnx":
            quantized = Int8Model(subnet, int8, ctx.int8_calibration)
            written = write_int8_onnx(quantized, next(iter(ctx.loaders.val))[0], out)
            accuracy, _ = accuracy_and_loss(written, ctx.loaders.val)
        else:
            accuracy, _ = accuracy_and_loss(subnet, ctx.loaders.val)
            _write(format, subnet, ctx.space.input_shape, out, plan)
    plan_file = plan_path_for(out)
    plan_file.write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    params = sum(p.numel() for p in subnet.parameters())
    return Exported(out, plan_file, chosen, accuracy, params, run, int8)


def _plan_document(
    space: Any, trial: TrialRecord, search: str, run: FinetuneRecord | None
) -> dict[str, Any]:
    return {
        "search": search,
        "trial": trial.number,
        "space": space.name,
        "space_params": space.params,
        "input_shape": list(space.input_shape),
        "arch": trial.arch,
        "plan": space.plan(trial.arch),
        "metrics": {
            "accuracy": trial.accuracy,
            "test_accuracy": trial.metrics.get("test_accuracy"),
            "latency_ms": trial.latency_ms,
            "params": trial.params,
            "macs": trial.macs,
        },
        "finetuned": None
        if run is None
        else {"accuracy": run.accuracy, "test_accuracy": run.test_accuracy, **run.settings},
    }


def _write(
    format: str, subnet: nn.Module, input_shape: tuple[int, ...], out: Path, plan: dict[str, Any]
) -> None:
    subnet = subnet.eval()
    example = torch.randn(1, *input_shape, generator=torch.Generator().manual_seed(0))
    if format == "state":
        payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **plan}
        torch.save(payload | {"state_dict": subnet.state_dict()}, out)
    elif format == "torchscript":
        torchscript(subnet, example).save(str(out))
    else:
        write_onnx(subnet, example, out)


def write_onnx(module: nn.Module, example: torch.Tensor, out: Path) -> float:
    """Export to ONNX and check the file under ONNX Runtime; returns the largest difference."""
    import numpy as np

    ort = require("onnxruntime", "ONNX export needs onnxruntime", "onnxruntime", SearchError)
    export_onnx(module, example, out)
    batch = torch.randn(4, *example.shape[1:], generator=torch.Generator().manual_seed(1))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": batch.numpy()})[0]
    with torch.no_grad():
        want = module(batch).numpy()
    gap = float(np.abs(got - want).max())
    if not gap <= ONNX_TOLERANCE:
        out.unlink(missing_ok=True)
        raise SearchError(f"the ONNX file differs from torch by {gap:.2e} (> {ONNX_TOLERANCE})")
    return gap


def write_int8_onnx(model: Int8Model, batch: torch.Tensor, out: Path) -> OrtModule:
    """Write ``model``'s QDQ int8 ONNX file, kept only if ONNX Runtime's outputs on ``batch``
    (validation inputs) are within :data:`INT8_TOLERANCE` of the fake-quantized model's largest
    output; returns the file's model, called like a module."""
    out.write_bytes(model.qdq())
    written = OrtModule(out.read_bytes())
    with torch.no_grad():
        want, got = model(batch), written(batch)
    gap = float((got - want).abs().max() / want.abs().max().clamp(min=1e-12))
    if not gap <= INT8_TOLERANCE:
        out.unlink(missing_ok=True)
        raise SearchError(
            f"the int8 ONNX file differs from the fake-quantized model by {gap:.1%} of its "
            f"largest output (> {INT8_TOLERANCE:.0%})"
        )
    return written


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


def load_subnet(path: str | Path, model: nn.Module | None = None) -> nn.Module:
    """Rebuild an exported subnet (``state`` format) as a standalone module in eval mode.

    A subnet of a derived space is rebuilt by replaying its plan on a fresh copy of the dense
    model: the model's factory by default, or ``model`` (for searches launched from Python
    with a module object); its weights then come from the file.
    """
    payload = read_export(path)
    with user_errors():
        module = rebuild(payload, model)
        module.load_state_dict(payload["state_dict"])
    return module.eval()


def rebuild(document: dict[str, Any], model: nn.Module | None = None) -> nn.Module:
    """The subnet's structure from a plan document (random or dense weights)."""
    plan = document["plan"]
    if plan.get("format") == "nasprune.arch":
        space = create_space(document["space"], **document["space_params"])
        return space.build_subnet(document["arch"])
    if model is not None:
        dense = copy.deepcopy(model).cpu().eval()
    else:
        from search_spaces.derived.loading import build_model

        spec = document["space_params"].get("model")
        if not spec:
            raise SearchError("this subnet's model was a Python object: pass it as model=")
        dense = build_model(spec, document["space_params"].get("model_args") or {}).eval()
    return apply_plan(dense, plan, document["input_shape"], sparsify=False)
