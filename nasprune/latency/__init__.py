"""Latency measured on the target device: one abstract backend, a registry, one file each.

``torch`` (eager), ``torchscript`` and ``onnxruntime``, each on ``device: cpu`` or ``cuda``
(torch on a GPU is timed with CUDA events). :func:`create_backend` builds the one a config
names and refuses, with one line, a backend that cannot run here.
"""

from __future__ import annotations

from collections.abc import Callable

from nasprune.config import LatencyConfig
from nasprune.errors import ConfigError
from nasprune.latency.base import Latency, LatencyBackend
from nasprune.latency.onnxruntime import OnnxRuntimeBackend
from nasprune.latency.torch_eager import TorchBackend
from nasprune.latency.torchscript import TorchScriptBackend

BACKENDS: dict[str, Callable[[LatencyConfig], LatencyBackend]] = {
    TorchBackend.name: TorchBackend,
    TorchScriptBackend.name: TorchScriptBackend,
    OnnxRuntimeBackend.name: OnnxRuntimeBackend,
}


def create_backend(settings: LatencyConfig) -> LatencyBackend:
    """The backend that ``settings.backend`` names; unknown names list the known ones."""
    try:
        factory = BACKENDS[settings.backend]
    except KeyError:
        raise ConfigError(
            f"unknown latency backend {settings.backend!r}; known: {', '.join(sorted(BACKENDS))}"
        ) from None
    return factory(settings)


__all__ = ["BACKENDS", "Latency", "LatencyBackend", "create_backend"]
