"""The fine-tuning's learning-rate schedule: cosine decays to 0 at the run's horizon, and a
run trained in chunks (as `nasprune finetune` checkpoints it) takes the rates of one run."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nasprune.errors import SearchError
from nasprune.evaluation.finetune import checked_lr_schedule, finetune, lr_factor


def _data() -> DataLoader[tuple[torch.Tensor, ...]]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(96, 8, generator=gen)
    return DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))


def test_cosine_decays_from_the_rate_to_zero_at_the_horizon() -> None:
    assert 0.1 * lr_factor("constant", 7, 10) == 0.1
    assert 0.1 * lr_factor("cosine", 0, 10) == pytest.approx(0.1)
    assert 0.1 * lr_factor("cosine", 5, 10) == pytest.approx(0.05)
    assert 0.1 * lr_factor("cosine", 10, 10) == pytest.approx(0.0, abs=1e-12)
    rates = [0.1 * lr_factor("cosine", s, 10) for s in range(10)]
    assert rates == sorted(rates, reverse=True) and rates[-1] < 0.003  # the last step: 2.4%
    assert checked_lr_schedule("cosine") == "cosine"
    with pytest.raises(SearchError, match="unknown --lr-schedule 'step'; known: constant"):
        checked_lr_schedule("step")


def test_a_cosine_run_in_chunks_equals_one_run_and_differs_from_a_constant_one() -> None:
    data = _data()
    whole, constant, chunked = _model(), _model(), _model()
    finetune(whole, data, 12, 0.05, seed=3, lr_schedule="cosine")
    finetune(constant, data, 12, 0.05, seed=3)
    first = finetune(chunked, data, 5, 0.05, seed=3, lr_schedule="cosine", horizon=12)
    finetune(chunked, data, 12, 0.05, seed=3, start=5, optimiser_state=first.state_dict(),
             lr_schedule="cosine", horizon=12)  # fmt: skip
    for a, b, c in zip(
        whole.state_dict().values(), chunked.state_dict().values(),
        constant.state_dict().values(), strict=True,
    ):  # fmt: skip
        assert torch.allclose(a, b, atol=1e-6)
        assert not torch.allclose(a, c, atol=1e-4)
    # Without the horizon the first chunk would decay to 0 at its own end: another run.
    early = _model()
    first = finetune(early, data, 5, 0.05, seed=3, lr_schedule="cosine")
    finetune(early, data, 12, 0.05, seed=3, start=5, optimiser_state=first.state_dict(),
             lr_schedule="cosine", horizon=12)  # fmt: skip
    assert not torch.allclose(early[0].weight, whole[0].weight, atol=1e-4)
