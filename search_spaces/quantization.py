"""The int8 dimensions of a space: which convolution and linear layers run in int8.

``quantization: {dims, choices, calibration_batches, exclude}`` in a derived space's params
gives one dimension per quantizable layer (``per_layer``, named ``<layer>:bits``), per stage
(``<stage>:bits``) or one for the whole network (``bits``), each with the bit widths of
``choices`` (``fp32`` is 32, ``int8`` is 8). A CPU runtime has fast kernels for int8 and fp32
only (ONNX Runtime's QDQ format), so no other width is offered. An architecture stays plain
JSON; its plan lists the layers that run in int8, and the application measures and scores such
a candidate as the int8 model ONNX Runtime runs (:mod:`nasprune.quantization`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from search_spaces.base import mapping_param, positive_int
from search_spaces.dimensions import Dimension, DimensionKind, SpaceError

QUANTIZABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
BITS = {"int8": 8, "fp32": 32}
DIMS = ("per_layer", "per_stage", "global")
DEFAULTS: dict[str, Any] = {
    "dims": "per_layer", "choices": ["fp32", "int8"], "calibration_batches": 8, "exclude": [],
}  # fmt: skip


def quantizable(module: nn.Module) -> list[str]:
    """Names of the layers ONNX Runtime can run in int8 (convolutions and linear layers)."""
    return [name for name, m in module.named_modules() if isinstance(m, QUANTIZABLE)]


@dataclass(frozen=True)
class Quantization:
    """The int8 dimensions of one space: ``dimension name -> the layers it sets``."""

    dims: str
    bits: tuple[int, ...]  # the choices, small to large
    calibration_batches: int
    exclude: tuple[str, ...]
    layers: dict[str, tuple[str, ...]]

    @classmethod
    def of(cls, value: object, model: nn.Module, stage_depth: int) -> Quantization | None:
        """The settings of ``value`` (the ``quantization`` param) for ``model``, checked."""
        if value is None:
            return None
        settings = mapping_param("quantization", value, DEFAULTS)
        if settings["dims"] not in DIMS:
            raise SpaceError(f"quantization.dims must be one of {', '.join(DIMS)}")
        choices = settings["choices"]
        if isinstance(choices, str) or not isinstance(choices, Sequence) or not choices:
            raise SpaceError("quantization.choices must be a list like [fp32, int8]")
        wrong = [c for c in choices if c not in BITS]
        if wrong:
            raise SpaceError(
                f"quantization.choices can be fp32 and int8, not {wrong}: no CPU runtime has "
                "fast kernels for other widths"
            )
        count = positive_int("quantization.calibration_batches", settings["calibration_batches"])
        exclude = settings["exclude"]
        if isinstance(exclude, str) or not isinstance(exclude, Sequence):
            raise SpaceError("quantization.exclude must be a list of layer names")
        found = quantizable(model)
        missing = [name for name in exclude if name not in found]
        if missing:
            some = ", ".join(found[:12]) + (" ..." if len(found) > 12 else "")
            raise SpaceError(
                f"quantization.exclude names no convolution or linear layer of the model: "
                f"{missing} (its layers: {some})"
            )
        layers = [name for name in found if name not in exclude]
        if not layers:
            raise SpaceError("quantization: every convolution and linear layer is excluded")
        return cls(
            settings["dims"], tuple(sorted({BITS[c] for c in choices})), count,
            tuple(exclude), _grouped(settings["dims"], layers, stage_depth),
        )  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        names = {bits: name for name, bits in BITS.items()}
        return {
            "dims": self.dims, "choices": [names[b] for b in reversed(self.bits)],
            "calibration_batches": self.calibration_batches, "exclude": list(self.exclude),
        }  # fmt: skip

    def dimensions(self) -> list[Dimension]:
        return [Dimension(name, DimensionKind.BITS, self.bits) for name in self.layers]

    def int8_layers(self, arch: Mapping[str, Any], gone: Sequence[str]) -> list[str]:
        """The layers ``arch`` runs in int8, but those inside the removed modules ``gone``."""
        chosen = [
            layer for name, layers in self.layers.items() if int(arch[name]) == BITS["int8"]
            for layer in layers
        ]  # fmt: skip
        return sorted(layer for layer in chosen if not _inside(layer, gone))

    def fp32(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        """``arch`` with every layer in fp32 (its channels and blocks as they are)."""
        return {**arch, **{name: max(self.bits) for name in self.layers}}

    def canonical(self, arch: dict[str, Any], gone: Sequence[str]) -> None:
        """A dimension whose layers are all removed runs nothing: it becomes fp32 (largest)."""
        for name, layers in self.layers.items():
            if all(_inside(layer, gone) for layer in layers):
                arch[name] = self.bits[-1]


def _inside(layer: str, gone: Sequence[str]) -> bool:
    return any(layer == g or layer.startswith(g + ".") for g in gone)


def _grouped(dims: str, layers: Sequence[str], stage_depth: int) -> dict[str, tuple[str, ...]]:
    if dims == "global":
        return {"bits": tuple(layers)}
    if dims == "per_layer":
        return {f"{layer}:bits": (layer,) for layer in layers}
    stages: dict[str, list[str]] = {}
    for layer in layers:
        stages.setdefault(".".join(layer.split(".")[:stage_depth]) + ":bits", []).append(layer)
    return {name: tuple(found) for name, found in stages.items()}
