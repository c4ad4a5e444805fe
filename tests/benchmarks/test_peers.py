"""The quality benchmark's peers (benchmarks/peers/) on the real libraries, without mocks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT, ROOT / "tests" / "support"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import zoo  # noqa: E402

from benchmarks.dense_models import PaperCNN, ResCNN1d  # noqa: E402
from benchmarks.peers import fastnas_peer  # noqa: E402
from benchmarks.peers import torch_pruning_peer as tpp  # noqa: E402


def _rescnn() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return ResCNN1d().eval(), torch.randn(2, 1, 40)


def _mobilenet() -> tuple[nn.Module, torch.Tensor]:
    return zoo.mobilenet(), torch.randn(2, 3, 32, 32)


def _paper_cnn() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return PaperCNN().eval(), torch.randn(2, 1, 40)


def _widths(model: nn.Module) -> list[int]:
    return [m.out_channels for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]


def _stand_in_ms(model: nn.Module) -> float:
    """Thousands of parameters, read as milliseconds: a deterministic stand-in for a timer
    (wall-clock latency is too noisy for a test's assertions), falling as pruning grows."""
    return tpp.params(model) / 1000


@pytest.mark.parametrize("method", ["uniform", "global"])
@pytest.mark.parametrize("build", [_rescnn, _mobilenet], ids=["rescnn", "mobilenet"])
def test_pruned_copy_is_smaller_runs_and_leaves_the_dense_model_alone(build, method):
    dense, x = build()
    widths, dense_out = _widths(dense), dense(x)

    pruned = tpp.METHODS[method](dense, x[:1], 0.5)

    assert tpp.params(pruned) < 0.5 * tpp.params(dense)
    assert pruned(x).shape == dense_out.shape  # the classifier keeps its 10 outputs
    assert _widths(dense) == widths and torch.equal(dense(x), dense_out)
    assert not pruned.training


def test_uniform_halves_every_layer_and_keeps_residual_adds_matched():
    dense, x = _rescnn()

    pruned = tpp.uniform(dense, x[:1], 0.5)

    # stem, b1's two convolutions, down, b2's two: the adds tie stem to b1.3, down to b2.3
    assert _widths(pruned) == [32, 32, 32, 64, 64, 64]
    assert pruned.fc.out_features == 10


def test_global_ranks_channels_across_layers():
    dense, x = _rescnn()

    widths = _widths(tpp.global_magnitude(dense, x[:1], 0.5))

    assert widths != [32, 32, 32, 64, 64, 64]
    assert widths[0] == widths[2] and widths[3] == widths[5]  # residual adds still matched


def test_to_latency_bisects_to_the_target():
    dense, x = _paper_cnn()
    target = 0.4 * _stand_in_ms(dense)

    fit = tpp.to_latency(dense, x[:1], target, _stand_in_ms, "uniform", max_iter=12)

    assert fit.reached and fit.latency_ms == _stand_in_ms(fit.model) <= target
    assert 0 < fit.ratio < tpp.MAX_RATIO
    assert fit.measurements <= 12 + 2
    # the ratio a little lower misses: the bisection did not stop at a needlessly small model
    assert _stand_in_ms(tpp.uniform(dense, x[:1], fit.ratio - 0.05)) > target


def test_to_latency_steps_down_when_torch_pruning_keeps_a_layer_whole_at_the_cap():
    dense, x = _paper_cnn()
    # global 0.95 would empty conv2 and conv3: Torch-Pruning leaves them whole (3,428 params),
    # while global 0.9 keeps 155
    assert tpp.params(tpp.global_magnitude(dense, x[:1], 0.95)) > 3000

    fit = tpp.to_latency(dense, x[:1], 0.5, _stand_in_ms, "global")

    assert fit.reached and fit.latency_ms <= 0.5 and fit.ratio <= 0.9


def test_to_latency_says_when_the_target_is_out_of_reach():
    dense, x = _paper_cnn()

    fit = tpp.to_latency(dense, x[:1], 0.01, _stand_in_ms, "uniform")

    assert not fit.reached
    assert fit.note.startswith("uniform cannot reach 0.01 ms")
    assert fit.latency_ms == _stand_in_ms(fit.model) > 0.01
    assert fit.ratio == tpp.MAX_RATIO  # uniform's smallest model is at its cap here


def test_to_latency_returns_the_dense_model_when_it_already_meets_the_target():
    dense, x = _paper_cnn()

    fit = tpp.to_latency(dense, x[:1], 100.0, _stand_in_ms, "uniform")

    assert fit.reached and fit.ratio == 0.0 and fit.measurements == 1
    assert tpp.params(fit.model) == tpp.params(dense) and fit.model is not dense


def test_unknown_method_lists_the_known_ones():
    dense, x = _paper_cnn()
    with pytest.raises(ValueError, match="known: global, uniform"):
        tpp.to_latency(dense, x[:1], 1.0, _stand_in_ms, "random")


@pytest.fixture(scope="module")
def fastnas() -> None:
    reason = fastnas_peer.available()
    if reason is not None:
        pytest.skip(reason)


def _tiny_task(shape: tuple[int, ...]) -> tuple[DataLoader, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, *shape, generator=generator), torch.arange(64) % 10
    return DataLoader(TensorDataset(x, y), batch_size=32), x, y


def test_fastnas_prunes_a_residual_1d_cnn_under_a_params_bound(fastnas, tmp_path):
    dense, _ = _rescnn()
    loader, x, y = _tiny_task((1, 40))

    def accuracy(net: nn.Module) -> float:
        with torch.no_grad():
            return float((net(x).argmax(1) == y).float().mean())

    bound = tpp.params(dense) // 2
    found = fastnas_peer.prune(
        dense, x[:1], {"params": bound}, loader, accuracy, channel_divisor=8,
        checkpoint=tmp_path / "fastnas.pth",
    )  # fmt: skip

    # FastNAS counts no BatchNorm parameter (BatchNorm folds into the convolution before it)
    counted = sum(
        p.numel()
        for m in found.model.modules()
        if not isinstance(m, nn.modules.batchnorm._BatchNorm)
        for p in m.parameters(recurse=False)
    )
    assert found.constraints["params"] == counted <= bound
    assert found.search_s > 0 and found.model(x).shape == (64, 10)
    assert type(found.model) is ResCNN1d and found.model is not dense
    modules = {type(m).__module__.split(".")[0] for m in found.model.modules()}
    assert modules == {"benchmarks", "torch"}  # exported: no modelopt dynamic module is left
    assert all(width % 8 == 0 for width in _widths(found.model))  # the channel divisor
    assert tpp.params(dense) == 150_218  # the dense model is untouched


def test_fastnas_says_when_the_bound_is_below_its_smallest_subnet(fastnas):
    dense, _ = _paper_cnn()
    loader, x, y = _tiny_task((1, 40))

    with pytest.raises(ValueError, match="FastNAS cannot meet .* smallest subnet"):
        fastnas_peer.prune(dense, x[:1], {"params": 10}, loader, lambda net: 0.0)
