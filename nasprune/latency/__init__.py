"""Latency measured on the target device: one abstract backend, a registry, one file each.

``torch`` (eager), ``torchscript`` and ``onnxruntime``, each on ``device: cpu`` or ``cuda``
(torch on a GPU is timed with CUDA events), and ``tensorrt`` (``device: cuda`` only) register
with :func:`register_backend` when this package is imported; a user's backend registers the
same way. :func:`create_backend` builds the one a config names and refuses, with one line, a
backend that cannot run here.
"""

from __future__ import annotations

from nasprune.latency import (  # noqa: F401  (register)
    onnxruntime,
    tensorrt,
    torch_eager,
    torchscript,
)
from nasprune.latency.base import Latency, LatencyBackend
from nasprune.latency.registry import BACKENDS, create_backend, register_backend

__all__ = ["BACKENDS", "Latency", "LatencyBackend", "create_backend", "register_backend"]
