"""Fake int8: chosen layers of a torch module compute as ONNX Runtime's static QDQ model of it
will (:mod:`nasprune.quantization.qdq`), in float, with torch's core fake-quantize operators
(not ``torch.ao.quantization``, which torch will remove): the layer's input as unsigned 8 bits,
one scale and zero point for the tensor from the range calibration batches gave it (MinMax, the
range widened to hold 0), and its weight as signed 8 bits, symmetric, one scale per output
channel, and its output as unsigned 8 bits per tensor again (ONNX Runtime quantizes the output
of a quantized node). The ONNX export folds a batch norm into the convolution before it, so
such a layer's output is rounded after its norm; per-channel weight scales commute with that
folding, so the weights round as the folded ones do. What remains differs in small ways
(rounding of the folded bias, ONNX Runtime's fused kernels), a gap the tests bound.

The rounding passes gradients straight through inside the range, so the same module trains
with it (quantization-aware fine-tuning); the input ranges stay as calibrated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.hooks import RemovableHandle

from search_spaces.quantization import QUANTIZABLE

WEIGHT_MAX = 127  # symmetric signed 8 bits, as ONNX Runtime quantizes weights: [-127, 127]
ACTIVATION_LEVELS = 255  # unsigned 8 bits: [0, 255]


class _Weight(nn.Module):
    """The weight's per-output-channel symmetric int8 rounding (a parametrization)."""

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        flat = weight.detach().reshape(weight.shape[0], -1).abs().amax(dim=1)
        scale = (flat / WEIGHT_MAX).clamp(min=1e-12).float()
        zero = torch.zeros(weight.shape[0], dtype=torch.int32, device=weight.device)
        return torch.fake_quantize_per_channel_affine(
            weight, scale, zero, 0, -WEIGHT_MAX, WEIGHT_MAX
        )


def activation_params(low: float, high: float) -> tuple[float, int]:
    """Scale and zero point of unsigned 8 bits over [low, high] widened to hold 0 (MinMax)."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / ACTIVATION_LEVELS if high > low else 1.0
    return scale, int(round(-low / scale))


def folded_norms(module: nn.Module) -> dict[str, str]:
    """Layer name -> the batch norm the ONNX export folds into it: the norm that comes right
    after a convolution among its parent's children, over as many channels."""
    found: dict[str, str] = {}
    for parent_name, parent in module.named_modules():
        children = list(parent.named_children())
        for (name, layer), (norm_name, norm) in zip(children, children[1:], strict=False):
            if (
                isinstance(layer, nn.Conv1d | nn.Conv2d | nn.Conv3d)
                and isinstance(norm, nn.modules.batchnorm._BatchNorm)
                and norm.num_features == layer.out_channels
            ):
                prefix = f"{parent_name}." if parent_name else ""
                found[prefix + name] = prefix + norm_name
    return found


@torch.no_grad()
def ranges(
    module: nn.Module, layers: Sequence[str], batches: Iterable[torch.Tensor]
) -> dict[str, tuple[float, float]]:
    """The smallest and largest value each layer's input (``name``) and output (``name:out``,
    after its folded norm) took over ``batches``."""
    found: dict[str, tuple[float, float]] = {}
    named = dict(module.named_modules())
    norms = folded_norms(module)
    hooks = []

    def keep(key: str, x: torch.Tensor) -> None:
        low, high = float(x.min()), float(x.max())
        old = found.get(key, (low, high))
        found[key] = (min(old[0], low), max(old[1], high))

    for name in layers:
        hooks.append(named[name].register_forward_pre_hook(lambda _m, a, k=name: keep(k, a[0])))
        out = named[norms.get(name, name)]
        hooks.append(out.register_forward_hook(lambda _m, _a, y, k=f"{name}:out": keep(k, y)))
    was_training = module.training
    module.eval()
    try:
        for x in batches:
            module(x)
    finally:
        for hook in hooks:
            hook.remove()
        module.train(was_training)
    return found


class FakeInt8:
    """Fake int8 installed on ``module`` itself for ``layers`` (input ranges calibrated on
    ``batches`` first); :meth:`remove` leaves the module as it was.

    Example::

        fake = FakeInt8(subnet, ["features.0", "head"], batches)
        accuracy = evaluate(subnet)      # as the int8 model will score, within the stated gap
        fake.remove()
    """

    def __init__(
        self,
        module: nn.Module,
        layers: Sequence[str],
        batches: Sequence[torch.Tensor],
        known: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        named = dict(module.named_modules())
        unknown = [n for n in layers if not isinstance(named.get(n), QUANTIZABLE)]
        if unknown:
            raise ValueError(f"not a convolution or linear layer of the model: {unknown}")
        if not batches and known is None:
            raise ValueError("fake int8 needs calibration batches")
        self.module = module
        self.layers = list(layers)
        # ``known``: ranges calibrated before (a resumed quantization-aware fine-tune keeps
        # the ranges it started with)
        self.ranges = dict(known) if known is not None else ranges(module, self.layers, batches)
        norms = folded_norms(module)
        self._hooks: list[RemovableHandle] = []
        for name in self.layers:
            layer = named[name]
            rounding = _rounding(*self.ranges.get(name, (0.0, 0.0)))
            self._hooks.append(layer.register_forward_pre_hook(
                lambda _m, args, r=rounding: (r(args[0]), *args[1:])
            ))  # fmt: skip
            rounding = _rounding(*self.ranges.get(f"{name}:out", (0.0, 0.0)))
            out = named[norms.get(name, name)]
            self._hooks.append(out.register_forward_hook(lambda _m, _a, y, r=rounding: r(y)))
            parametrize.register_parametrization(layer, "weight", _Weight())

    def plain_state(self) -> dict[str, torch.Tensor]:
        """The module's state dict under its fp32 names (the weights as trained, unrounded)."""
        tag = ".parametrizations.weight.original"
        return {key.replace(tag, ".weight"): v for key, v in self.module.state_dict().items()}

    def remove(self) -> None:
        """The module in fp32 again, with the weights it has now (trained or not)."""
        named = dict(self.module.named_modules())
        for hook in self._hooks:
            hook.remove()
        for name in self.layers:
            parametrize.remove_parametrizations(named[name], "weight", leave_parametrized=False)
        self._hooks = []


def _rounding(low: float, high: float) -> Callable[[torch.Tensor], torch.Tensor]:
    scale, zero = activation_params(low, high)
    return lambda x: torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, ACTIVATION_LEVELS)
