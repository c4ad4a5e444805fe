"""The small int8 search the int8 tests share: the zoo's ResNet on digits, per-stage int8
dimensions, ONNX Runtime as the latency backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MODEL = {"model": "zoo:resnet", "model_args": {"in_channels": 1, "widths": [8, 16, 32]}}


def int8_config(tmp_path: Path, mode: str = "elastic", **quantization: Any) -> dict[str, Any]:
    return {
        "name": f"int8-{mode}",
        "seed": 0,
        "storage": f"sqlite:///{tmp_path / 'store.db'}",
        "space": {"name": "derived", "params": MODEL | {
            "input_shape": [1, 1, 8, 8], "blocks": "none",
            "quantization": {"dims": "per_stage", "calibration_batches": 2} | quantization}},
        "data": {"builtin": "digits", "batch_size": 64},
        "supernet": {"epochs": 3, "checkpoint_dir": str(tmp_path / "checkpoints")},
        "evaluation": {"mode": mode, "finetune_steps": 3 if mode == "prune" else 0},
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms", "direction": "minimize"},
        ],
        "latency": {"backend": "onnxruntime", "threads": 1, "warmup": 1, "repeats": 3},
        "strategy": {"name": "random"},
        "budget": {"trials": 4},
    }  # fmt: skip
