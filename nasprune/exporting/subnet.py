"""Export a chosen subnetwork as a standalone, physically smaller model, and load it back.

Three formats, each written with the pruning plan as JSON beside it (``NAME.plan.json``):

* ``state``: a plain dict of JSON-able values and tensors (``torch.save``), loaded with
  ``weights_only=True`` by :func:`load_subnet`: the architecture is data, never a pickle;
* ``torchscript``: ``torch.jit.script`` (``trace`` for models that do not script);
* ``onnx``: the TorchScript-based exporter (opset 17, dynamic batch), checked under ONNX
  Runtime against torch to 1e-4 before the file is kept.
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
from nasprune.store_access import StorageArg, open_store
from plumbing import require
from search_spaces import SearchSpace, create_space
from search_spaces.derived import apply_plan
from storage import FinetuneRecord, TrialRecord

FORMAT = "nasprune.subnet"
FORMAT_VERSION = 2
FORMATS = ("state", "torchscript", "onnx")
ONNX_TOLERANCE = 1e-4
Format = Literal["state", "torchscript", "onnx"]


@dataclass(frozen=True)
class Exported:
    path: Path
    plan_path: Path
    trial: TrialRecord
    accuracy: float  # the exported module's accuracy on the validation split
    params: int
    finetuned: FinetuneRecord | None  # the fine-tuning run whose weights were exported


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
        accuracy, _ = accuracy_and_loss(subnet, ctx.loaders.val)
        plan = _plan_document(ctx.space, chosen, name, run)
        _write(format, subnet, ctx.space.input_shape, out, plan)
    plan_file = plan_path_for(out)
    plan_file.write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    params = sum(p.numel() for p in subnet.parameters())
    return Exported(out, plan_file, chosen, accuracy, params, run)


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
