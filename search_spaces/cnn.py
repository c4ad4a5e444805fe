"""``builtin.cnn``: a small residual CNN with elastic channels, depth and kernel per stage.

Its layers are 2-d; :mod:`search_spaces.cnn1d` is the same network on series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from search_spaces.base import SearchSpace, int_choices, positive_int
from search_spaces.dimensions import Dimension, DimensionKind, SpaceError
from search_spaces.elastic import (
    ElasticBatchNorm,
    ElasticBatchNorm2d,
    ElasticConv,
    ElasticConv2d,
    ElasticLinear,
    expect,
)
from search_spaces.quantization import Quantization
from search_spaces.registry import register_space

# Choices of each stage, smallest first. Stage 1 has stride 1, every later stage stride 2.
DEFAULT_STAGES: tuple[dict[str, list[int]], ...] = (
    {"channels": [8, 12, 16], "depth": [1, 2, 3], "kernel": [3, 5]},
    {"channels": [16, 24, 32], "depth": [1, 2, 3], "kernel": [3, 5]},
)
_STAGE_KEYS = ("channels", "depth", "kernel")
_KINDS = {
    "channels": DimensionKind.WIDTH,
    "depth": DimensionKind.DEPTH,
    "kernel": DimensionKind.KERNEL,
}


class ConvBlock(nn.Module):
    """Conv -> BatchNorm -> ReLU, plus the input when ``residual``."""

    def __init__(self, conv: nn.Module, norm: nn.Module, residual: bool) -> None:
        super().__init__()
        self.conv = conv
        self.norm = norm
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.norm(self.conv(x)))
        return x + y if self.residual else y


class Stage(nn.Module):
    """A first block that may change channels and stride, then residual blocks.

    Only the first ``depth`` blocks run.
    """

    def __init__(self, blocks: Sequence[ConvBlock]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.depth = len(blocks)

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks[: self.depth]:
            x = block(x)
        return x


class CNN(nn.Module):
    """Stages, global average pooling over ``pooled`` (the spatial axes), a linear classifier
    (supernet and sub-network alike)."""

    def __init__(
        self, stages: Sequence[Stage], classifier: nn.Linear, pooled: tuple[int, ...] = (2, 3)
    ) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.classifier = classifier
        self.pooled = pooled

    def forward(self, x: Tensor) -> Tensor:
        for stage in self.stages:
            x = stage(x)
        return self.classifier(x.mean(dim=self.pooled))


@register_space
class CNNSpace(SearchSpace):
    """A residual CNN on images of shape ``(N, in_channels, image_size, image_size)``.

    Example::

        space = create_space("builtin.cnn")
        arch = space.smallest() | {"stage2.kernel": 5}
        supernet = space.build_supernet()
        space.activate(supernet, arch)
        small = space.extract(supernet, arch)

    Dimensions per stage ``s`` (1-based): ``stage{s}.channels``, ``stage{s}.depth``,
    ``stage{s}.kernel``. All blocks of a stage share its channels and kernel. With
    ``quantization`` (see :mod:`search_spaces.quantization`), bit widths of the subnet's layers
    (``stages.0.blocks.1.conv:bits``, ``classifier:bits``; ``stages.0:bits`` per stage).
    """

    name = "builtin.cnn"
    description = "Residual CNN on small images (digits: 1x8x8): elastic channels, depth, kernel"
    latency_blocks = (ConvBlock,)  # a lookup table times each block configuration whole
    # the layers, by the number of spatial axes (2: images; 1 in builtin.cnn1d: series)
    elastic_conv: type[ElasticConv] = ElasticConv2d
    elastic_norm: type[ElasticBatchNorm] = ElasticBatchNorm2d
    conv: type[nn.Conv1d | nn.Conv2d] = nn.Conv2d
    norm: type[nn.BatchNorm1d | nn.BatchNorm2d] = nn.BatchNorm2d
    default_stages = DEFAULT_STAGES

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 8,
        num_classes: int = 10,
        stages: Sequence[Mapping[str, Sequence[int]]] | None = None,
        quantization: Mapping[str, Any] | None = None,
    ) -> None:
        positive_int("image_size", image_size)
        size = {"image_size": image_size}
        self._set_up(in_channels, size, (image_size, image_size), num_classes, stages, quantization)

    def _set_up(
        self,
        in_channels: int,
        size: dict[str, int],
        spatial: tuple[int, ...],
        num_classes: int,
        stages: Sequence[Mapping[str, Sequence[int]]] | None,
        quantization: Mapping[str, Any] | None,
    ) -> None:
        """The constructor's work once the spatial ``size`` (its parameter) is checked."""
        positive_int("in_channels", in_channels)
        positive_int("num_classes", num_classes)
        if stages is None:
            stages = self.default_stages
        if isinstance(stages, str | Mapping) or not isinstance(stages, Sequence) or not stages:
            raise SpaceError(f"stages must be a non-empty list of stage mappings, got {stages!r}")
        self.in_channels = in_channels
        self.stages = [_check_stage(i, s) for i, s in enumerate(stages, 1)]
        super().__init__(
            params={
                "in_channels": in_channels,
                **size,
                "num_classes": num_classes,
                "stages": self.stages,
            },
            input_shape=(in_channels, *spatial),
            num_classes=num_classes,
        )
        if quantization is not None:  # the layers of the largest subnet, each block's conv
            largest = self.build_subnet(self.largest())
            int8 = Quantization.of(quantization, largest, stage_depth=2)
            self.params["quantization"] = None if int8 is None else int8.as_json()
            self.quantization = int8

    def dimensions(self) -> list[Dimension]:
        return [
            Dimension(f"stage{i}.{key}", _KINDS[key], tuple(stage[key]))
            for i, stage in enumerate(self.stages, 1)
            for key in _STAGE_KEYS
        ] + ([] if self.quantization is None else self.quantization.dimensions())

    def int8_layers(self, arch: Mapping[str, Any]) -> list[str]:
        if self.quantization is None:
            return []
        clean = self.validate(arch)
        return self.quantization.int8_layers(clean, self._unused_blocks(clean))

    def canonical(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        """The bit widths of blocks past a stage's depth run nothing: canonical fp32."""
        clean = self.validate(arch)
        if self.quantization is not None:
            self.quantization.canonical(clean, self._unused_blocks(clean))
        return clean

    def _unused_blocks(self, arch: Mapping[str, Any]) -> list[str]:
        return [
            f"stages.{i}.blocks.{b}"
            for i, spec in enumerate(self.stages)
            for b in range(int(arch[f"stage{i + 1}.depth"]), spec["depth"][-1])
        ]

    def build_supernet(self) -> CNN:
        stages = []
        c_in = self.in_channels
        for i, spec in enumerate(self.stages):
            c, k = spec["channels"][-1], spec["kernel"][-1]
            blocks = [
                ConvBlock(
                    self.elastic_conv(c_in if b == 0 else c, c, k, stride=_stride(i, b)),
                    self.elastic_norm(c),
                    residual=b > 0,
                )
                for b in range(spec["depth"][-1])
            ]
            stages.append(Stage(blocks))
            c_in = c
        return CNN(stages, ElasticLinear(c_in, self.num_classes), self._pooled())

    def activate(self, supernet: nn.Module, arch: Mapping[str, Any]) -> None:
        arch = self.validate(arch)
        net = expect(supernet, CNN)
        c_in = self.in_channels
        for i, module in enumerate(net.stages, 1):
            stage = expect(module, Stage)
            c, depth, k = (int(arch[f"stage{i}.{key}"]) for key in _STAGE_KEYS)
            stage.depth = depth
            for b, child in enumerate(stage.blocks[:depth]):
                block = expect(child, ConvBlock)
                expect(block.conv, self.elastic_conv).set_active(c_in if b == 0 else c, c, k)
                expect(block.norm, self.elastic_norm).set_active(c)
            c_in = c
        expect(net.classifier, ElasticLinear).set_active(in_features=c_in)

    def build_subnet(self, arch: Mapping[str, Any]) -> CNN:
        arch = self.validate(arch)
        stages = []
        c_in = self.in_channels
        for i in range(len(self.stages)):
            c, depth, k = (int(arch[f"stage{i + 1}.{key}"]) for key in _STAGE_KEYS)
            blocks = [
                ConvBlock(
                    self.conv(c_in if b == 0 else c, c, k, _stride(i, b), k // 2, bias=False),
                    self.norm(c),
                    residual=b > 0,
                )
                for b in range(depth)
            ]
            stages.append(Stage(blocks))
            c_in = c
        return CNN(stages, nn.Linear(c_in, self.num_classes), self._pooled())

    def _pooled(self) -> tuple[int, ...]:
        """The spatial axes of the last stage's output, which the classifier's pooling averages."""
        return tuple(range(2, len(self.input_shape) + 1))


def _stride(stage: int, block: int) -> int:
    """Stage 1 keeps the resolution; the first block of every later stage halves it."""
    return 2 if stage > 0 and block == 0 else 1


def _check_stage(number: int, stage: Mapping[str, Sequence[int]]) -> dict[str, list[int]]:
    if not isinstance(stage, Mapping) or set(stage) != set(_STAGE_KEYS):
        raise SpaceError(
            f"stage {number} must be a mapping with keys {list(_STAGE_KEYS)}, got {stage!r}"
        )
    return {
        key: int_choices(f"stage {number} {key}", stage[key], odd=key == "kernel")
        for key in _STAGE_KEYS
    }
