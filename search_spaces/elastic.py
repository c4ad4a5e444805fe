"""Elastic (weight-sharing) modules: one max-size tensor, many active sub-configurations.

Every elastic module subclasses its plain torch counterpart and holds the weights of its
largest configuration. ``set_active(...)`` picks the active one; the forward pass then runs on
*views* of the max tensors, never on copies, so all sub-networks share the same storage:

* features / channels: the first ``n`` rows (outputs) and columns (inputs);
* kernel size: the centre ``k`` (1-d) or ``k x k`` (2-d) crop of the max kernel (as in
  Once-for-All), padding ``k // 2``.

:func:`slice_like` is the same convention applied to a whole tensor; extraction uses it to
copy the active part of a supernet into a standalone sub-network.
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from search_spaces.dimensions import SpaceError


def _check_active(name: str, value: int, maximum: int) -> int:
    if not 1 <= value <= maximum:
        raise SpaceError(f"{name} must be in 1..{maximum}, got {value}")
    return value


class ElasticLinear(nn.Linear):
    """A ``nn.Linear`` whose active in/out features are the first columns/rows of its weight."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.active_in = in_features
        self.active_out = out_features

    def set_active(self, in_features: int | None = None, out_features: int | None = None) -> None:
        """Set the active sizes; ``None`` keeps the current one."""
        if in_features is not None:
            self.active_in = _check_active("in_features", in_features, self.in_features)
        if out_features is not None:
            self.active_out = _check_active("out_features", out_features, self.out_features)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight[: self.active_out, : self.active_in]
        bias = None if self.bias is None else self.bias[: self.active_out]
        return F.linear(x, weight, bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, active=({self.active_in}, {self.active_out})"


class ElasticConv(nn.modules.conv._ConvNd):
    """A convolution with elastic in/out channels and an elastic odd kernel size.

    The active kernel is the centre crop of the max kernel along every spatial axis and is
    padded by ``k // 2``, so a stride-1 convolution keeps the spatial size whatever the kernel.
    """

    _conv: Any  # F.conv1d or F.conv2d

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        bias: bool = False,
    ) -> None:
        if kernel_size % 2 != 1:
            raise SpaceError(f"elastic kernels must be odd, got {kernel_size}")
        conv_init: Any = super().__init__  # the subclass's Conv1d / Conv2d, which take ints
        conv_init(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                  bias=bias)  # fmt: skip
        self.max_kernel = kernel_size
        self.active_in = in_channels
        self.active_out = out_channels
        self.active_kernel = kernel_size

    def set_active(
        self,
        in_channels: int | None = None,
        out_channels: int | None = None,
        kernel_size: int | None = None,
    ) -> None:
        """Set the active sizes; ``None`` keeps the current one."""
        if in_channels is not None:
            self.active_in = _check_active("in_channels", in_channels, self.in_channels)
        if out_channels is not None:
            self.active_out = _check_active("out_channels", out_channels, self.out_channels)
        if kernel_size is not None:
            if kernel_size % 2 != 1:
                raise SpaceError(f"elastic kernels must be odd, got {kernel_size}")
            self.active_kernel = _check_active("kernel_size", kernel_size, self.max_kernel)

    def forward(self, x: Tensor) -> Tensor:
        k = self.active_kernel
        start = (self.max_kernel - k) // 2
        crop = (slice(start, start + k),) * (self.weight.dim() - 2)
        weight = self.weight[(slice(self.active_out), slice(self.active_in), *crop)]
        bias = None if self.bias is None else self.bias[: self.active_out]
        return type(self)._conv(x, weight, bias, self.stride, k // 2)

    def extra_repr(self) -> str:
        active = (self.active_in, self.active_out, self.active_kernel)
        return f"{super().extra_repr()}, active={active}"


class ElasticConv1d(ElasticConv, nn.Conv1d):
    """``nn.Conv1d`` with elastic channels and kernel (see :class:`ElasticConv`)."""

    _conv = F.conv1d


class ElasticConv2d(ElasticConv, nn.Conv2d):
    """A square ``nn.Conv2d`` with elastic channels and kernel (see :class:`ElasticConv`)."""

    _conv = F.conv2d


class ElasticBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm on the first ``active_features`` channels of the max parameters and buffers.

    The running statistics passed to ``F.batch_norm`` are views, so a training-mode forward
    updates the shared buffers in place. Being a ``_BatchNorm``, generic code can reset the
    statistics and set ``momentum = None`` for a cumulative recalibration.
    """

    def __init__(self, num_features: int, **kwargs: Any) -> None:
        super().__init__(num_features, **kwargs)
        self.active_features = num_features

    def set_active(self, num_features: int) -> None:
        self.active_features = _check_active("num_features", num_features, self.num_features)

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        c = self.active_features
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.batch_norm(
            input,
            _first(self.running_mean, c) if track else None,
            _first(self.running_var, c) if track else None,
            _first(self.weight, c),
            _first(self.bias, c),
            use_batch_stats,
            factor,
            self.eps,
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, active={self.active_features}"


def _first(t: Tensor | None, n: int) -> Tensor | None:
    return None if t is None else t[:n]


class ElasticBatchNorm1d(ElasticBatchNorm, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` with an elastic number of features (see :class:`ElasticBatchNorm`)."""


class ElasticBatchNorm2d(ElasticBatchNorm, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with an elastic number of channels (see :class:`ElasticBatchNorm`)."""


def slice_like(full: Tensor, shape: torch.Size | tuple[int, ...]) -> Tensor:
    """The active part of ``full`` with the given ``shape``, by the elastic convention.

    Leading dimensions keep their first entries; the spatial dimensions of a convolution
    weight (3-d or 4-d) keep their centre. Returns a view.
    """
    if full.dim() != len(shape):
        raise SpaceError(f"cannot slice a tensor of shape {tuple(full.shape)} to {tuple(shape)}")
    index: list[slice] = []
    for axis, (have, want) in enumerate(zip(full.shape, shape, strict=True)):
        spatial = axis >= 2 and full.dim() in (3, 4)
        if want > have or (spatial and (have - want) % 2):
            raise SpaceError(
                f"cannot slice a tensor of shape {tuple(full.shape)} to {tuple(shape)}"
            )
        start = (have - want) // 2 if spatial else 0
        index.append(slice(start, start + want))
    return full[tuple(index)]


M = TypeVar("M", bound=nn.Module)


def expect(module: nn.Module, cls: type[M]) -> M:
    """``module`` typed as ``cls``; a :class:`SpaceError` if the supernet is not this space's."""
    if not isinstance(module, cls):
        raise SpaceError(
            f"expected {cls.__name__} in the supernet, found {type(module).__name__}; "
            "was it built by this space's build_supernet()?"
        )
    return module
