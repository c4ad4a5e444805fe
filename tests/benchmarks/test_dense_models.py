"""The benchmarks' dense models: a seed names one model, in whatever process trains it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import dense_models  # noqa: E402


def _unseeded(classes: int) -> nn.Module:
    """A model whose factory draws its weights from torch's global generator, as most do."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, classes))


def test_a_seed_trains_the_same_model_whatever_the_global_generator_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torch seeds its global generator anew in every process, so a model built before the
    # seed is set starts from other weights each time: two processes, two "seed 3" models.
    monkeypatch.setattr(dense_models, "CACHE", tmp_path)
    monkeypatch.setitem(dense_models.MODELS, "unseeded", _unseeded)
    weights = []
    for other_state in (1, 2):
        torch.manual_seed(other_state)
        net, path = dense_models.trained("unseeded", "digits", seed=3, epochs=1)
        weights.append(net.state_dict())
        path.unlink()  # train again, not load
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    torch.manual_seed(1)
    other, _ = dense_models.trained("unseeded", "digits", seed=4, epochs=1)
    assert not torch.equal(other.state_dict()["1.weight"], weights[0]["1.weight"])
