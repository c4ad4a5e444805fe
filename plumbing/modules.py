"""Small facts about torch modules (imports torch: use it where torch is loaded already)."""

from __future__ import annotations

import torch
from torch import nn


def device_of(module: nn.Module) -> torch.device:
    """Where ``module``'s parameters (else its buffers) live; the CPU for an empty module."""
    for param in module.parameters():
        return param.device
    for buffer in module.buffers():
        return buffer.device
    return torch.device("cpu")
