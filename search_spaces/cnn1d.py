"""``builtin.cnn1d``: ``builtin.cnn``'s residual network on series, with 1-d layers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from search_spaces.base import positive_int
from search_spaces.cnn import CNNSpace
from search_spaces.elastic import ElasticBatchNorm1d, ElasticConv1d
from search_spaces.registry import register_space

# Choices of each stage, smallest first: wider and with longer kernels than the image space's,
# since a series is long and has one axis. Stage 1 has stride 1, every later stage stride 2.
DEFAULT_STAGES: tuple[dict[str, list[int]], ...] = (
    {"channels": [16, 24, 32], "depth": [1, 2, 3], "kernel": [3, 5, 7]},
    {"channels": [32, 48, 64], "depth": [1, 2, 3], "kernel": [3, 5, 7]},
)


@register_space
class CNN1dSpace(CNNSpace):
    """A residual 1-d CNN on series of shape ``(N, in_channels, length)``.

    Example::

        space = create_space("builtin.cnn1d", length=40)   # MNIST-1D
        small = space.extract(space.build_supernet(), space.smallest())

    The dimensions are ``builtin.cnn``'s (``stage{s}.channels``, ``stage{s}.depth``,
    ``stage{s}.kernel`` and, with ``quantization``, bit widths); the layers are
    ``nn.Conv1d`` and ``nn.BatchNorm1d``, and the classifier averages over the series.
    """

    name = "builtin.cnn1d"
    description = "Residual 1-d CNN on series (MNIST-1D: 1x40): elastic channels, depth, kernel"
    elastic_conv = ElasticConv1d
    elastic_norm = ElasticBatchNorm1d
    conv = nn.Conv1d
    norm = nn.BatchNorm1d
    default_stages = DEFAULT_STAGES

    def __init__(
        self,
        in_channels: int = 1,
        length: int = 40,
        num_classes: int = 10,
        stages: Sequence[Mapping[str, Sequence[int]]] | None = None,
        quantization: Mapping[str, Any] | None = None,
    ) -> None:
        positive_int("length", length)
        self._set_up(in_channels, {"length": length}, (length,), num_classes, stages, quantization)
