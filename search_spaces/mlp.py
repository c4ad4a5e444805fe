"""``builtin.mlp``: a multi-layer perceptron with elastic depth and per-layer width."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from search_spaces.base import SearchSpace, int_choices, positive_int
from search_spaces.dimensions import Architecture, Dimension, DimensionKind
from search_spaces.elastic import ElasticBatchNorm1d, ElasticLinear, expect
from search_spaces.registry import register_space


class MLPLayer(nn.Module):
    """Linear -> BatchNorm1d -> ReLU."""

    def __init__(self, linear: nn.Linear, norm: nn.BatchNorm1d) -> None:
        super().__init__()
        self.linear = linear
        self.norm = norm

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.norm(self.linear(x)))


class MLP(nn.Module):
    """Hidden layers, then a linear classifier. Only the first ``depth`` layers run.

    The supernet and the sub-networks are both an ``MLP``: the supernet holds elastic layers
    (all ``max_depth`` of them, at the largest width), a sub-network plain ones.
    """

    def __init__(self, layers: Sequence[MLPLayer], classifier: nn.Linear) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.classifier = classifier
        self.depth = len(layers)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers[: self.depth]:
            x = layer(x)
        return self.classifier(x)


@register_space
class MLPSpace(SearchSpace):
    """An MLP on flat feature vectors; inputs are float tensors of shape ``(N, in_features)``.

    Example::

        space = create_space("builtin.mlp", widths=[16, 32])
        supernet = space.build_supernet()
        arch = {"depth": 2, "width_1": 32, "width_2": 16, "width_3": 16, "width_4": 16}
        space.activate(supernet, arch)      # supernet(x) now runs the 64-32-16-10 network
        small = space.extract(supernet, arch)

    ``width_i`` is ignored when ``i > depth``.
    """

    name = "builtin.mlp"
    description = "MLP on flat features (digits: 64 -> 10): elastic depth and width per layer"
    latency_blocks = (MLPLayer,)  # a lookup table times each layer configuration whole

    def __init__(
        self,
        in_features: int = 64,
        num_classes: int = 10,
        max_depth: int = 4,
        widths: Sequence[int] = (16, 32, 64, 128),
    ) -> None:
        positive_int("num_classes", num_classes)
        self.in_features = positive_int("in_features", in_features)
        self.max_depth = positive_int("max_depth", max_depth)
        self.widths = int_choices("widths", widths)
        super().__init__(
            params={
                "in_features": in_features,
                "num_classes": num_classes,
                "max_depth": max_depth,
                "widths": self.widths,
            },
            input_shape=(in_features,),
            num_classes=num_classes,
        )

    def dimensions(self) -> list[Dimension]:
        depth = Dimension("depth", DimensionKind.DEPTH, tuple(range(1, self.max_depth + 1)))
        widths = [
            Dimension(f"width_{i}", DimensionKind.WIDTH, tuple(self.widths))
            for i in range(1, self.max_depth + 1)
        ]
        return [depth, *widths]

    def canonical(self, arch: Mapping[str, Any]) -> Architecture:
        """Widths past ``depth`` are unused, so they become the smallest width."""
        clean = self.validate(arch)
        for i in range(int(clean["depth"]) + 1, self.max_depth + 1):
            clean[f"width_{i}"] = self.widths[0]
        return clean

    def build_supernet(self) -> MLP:
        w = self.widths[-1]
        layers = [
            MLPLayer(ElasticLinear(self.in_features if i == 0 else w, w), ElasticBatchNorm1d(w))
            for i in range(self.max_depth)
        ]
        return MLP(layers, ElasticLinear(w, self.num_classes))

    def activate(self, supernet: nn.Module, arch: Mapping[str, Any]) -> None:
        arch = self.validate(arch)
        net = expect(supernet, MLP)
        net.depth = int(arch["depth"])
        features = self.in_features
        for i, module in enumerate(net.layers[: net.depth]):
            layer = expect(module, MLPLayer)
            width = int(arch[f"width_{i + 1}"])
            expect(layer.linear, ElasticLinear).set_active(features, width)
            expect(layer.norm, ElasticBatchNorm1d).set_active(width)
            features = width
        expect(net.classifier, ElasticLinear).set_active(in_features=features)

    def build_subnet(self, arch: Mapping[str, Any]) -> MLP:
        arch = self.validate(arch)
        layers = []
        features = self.in_features
        for i in range(1, int(arch["depth"]) + 1):
            width = int(arch[f"width_{i}"])
            layers.append(MLPLayer(nn.Linear(features, width), nn.BatchNorm1d(width)))
            features = width
        return MLP(layers, nn.Linear(features, self.num_classes))
