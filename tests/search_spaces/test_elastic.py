"""Elastic modules compute what plain modules of the active size compute, on shared storage."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from search_spaces import SpaceError
from search_spaces.elastic import (
    ElasticBatchNorm1d,
    ElasticBatchNorm2d,
    ElasticConv1d,
    ElasticConv2d,
    ElasticLinear,
    slice_like,
)


def test_elastic_linear_uses_first_rows_and_columns() -> None:
    layer = ElasticLinear(8, 6)
    layer.set_active(5, 3)
    x = torch.randn(4, 5)
    expected = F.linear(x, layer.weight[:3, :5], layer.bias[:3])
    torch.testing.assert_close(layer(x), expected)


def test_elastic_conv_uses_centre_crop_of_max_kernel() -> None:
    conv = ElasticConv2d(4, 6, 5, stride=2)
    conv.set_active(3, 2, 3)
    x = torch.randn(2, 3, 8, 8)
    expected = F.conv2d(x, conv.weight[:2, :3, 1:4, 1:4], stride=2, padding=1)
    torch.testing.assert_close(conv(x), expected)
    centre = conv.weight[:2, :3, 1:4, 1:4]
    assert slice_like(conv.weight, (2, 3, 3, 3)).data_ptr() == centre.data_ptr()


def test_elastic_conv1d_uses_the_centre_taps_of_its_max_kernel() -> None:
    conv = ElasticConv1d(4, 6, 7, stride=2)
    assert isinstance(conv, nn.Conv1d)
    conv.set_active(3, 2, 3)
    x = torch.randn(2, 3, 16)
    expected = F.conv1d(x, conv.weight[:2, :3, 2:5], stride=2, padding=1)
    torch.testing.assert_close(conv(x), expected)
    assert slice_like(conv.weight, (2, 3, 3)).data_ptr() == conv.weight[:2, :3, 2:5].data_ptr()
    with pytest.raises(SpaceError, match="odd"):
        conv.set_active(kernel_size=4)


def test_elastic_batchnorm_is_a_torch_batchnorm_for_generic_recalibration() -> None:
    bn = ElasticBatchNorm2d(8)
    assert isinstance(bn, nn.BatchNorm2d) and isinstance(bn, nn.modules.batchnorm._BatchNorm)
    assert isinstance(ElasticBatchNorm1d(4), nn.BatchNorm1d)
    bn.set_active(5)
    bn.reset_running_stats()
    bn.momentum = None  # cumulative average over the recalibration batches
    batches = [torch.randn(4, 5, 3, 3) + i for i in range(3)]
    for batch in batches:
        bn(batch)
    expected = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(dim=0)
    torch.testing.assert_close(bn.running_mean[:5], expected)
    assert torch.all(bn.running_mean[5:] == 0) and int(bn.num_batches_tracked) == 3


def test_elastic_batchnorm_matches_plain_batchnorm_of_active_size() -> None:
    elastic, plain = ElasticBatchNorm1d(8), nn.BatchNorm1d(3)
    elastic.set_active(3)
    x = torch.randn(10, 3)
    torch.testing.assert_close(elastic(x), plain(x))
    torch.testing.assert_close(elastic.running_var[:3], plain.running_var)
    elastic.eval()
    plain.eval()
    torch.testing.assert_close(elastic(x), plain(x))
