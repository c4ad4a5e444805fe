"""builtin.cnn: its dimensions, strides and residual blocks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from search_spaces import DimensionKind, SpaceError, create_space
from search_spaces.cnn import ConvBlock


def test_cnn_dimensions_are_named_per_stage() -> None:
    dims = create_space("builtin.cnn").dimensions()
    assert [d.name for d in dims] == [
        "stage1.channels",
        "stage1.depth",
        "stage1.kernel",
        "stage2.channels",
        "stage2.depth",
        "stage2.kernel",
    ]
    assert [d.kind for d in dims[:3]] == [
        DimensionKind.WIDTH,
        DimensionKind.DEPTH,
        DimensionKind.KERNEL,
    ]
    assert dims[0].choices == (8, 12, 16) and dims[3].choices == (16, 24, 32)
    assert dims[1].choices == (1, 2, 3) and dims[2].choices == (3, 5)


def test_cnn_subnet_has_stride_two_in_stage_two_and_residual_after_first_block() -> None:
    space = create_space("builtin.cnn")
    arch = space.largest() | {"stage2.kernel": 3}
    net = space.build_subnet(arch)
    blocks = [b for b in net.modules() if isinstance(b, ConvBlock)]
    assert [b.residual for b in blocks] == [False, True, True, False, True, True]
    assert blocks[0].conv.stride == (1, 1) and blocks[3].conv.stride == (2, 2)
    assert blocks[0].conv.kernel_size == (5, 5) and blocks[3].conv.kernel_size == (3, 3)
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert not any(isinstance(m, nn.Linear) and m.in_features != 32 for m in net.modules())


def test_cnn_macs_of_smallest_arch_match_a_hand_count() -> None:
    space = create_space("builtin.cnn")
    # stage1: 1->8, 3x3, on 8x8; stage2: 8->16, 3x3, stride 2 -> 4x4; classifier 16->10
    expected = 8 * 1 * 9 * 64 + 16 * 8 * 9 * 16 + 16 * 10
    assert space.macs(space.smallest()) == expected


def test_cnn1d_is_the_same_network_on_series_with_1d_layers() -> None:
    space = create_space("builtin.cnn1d", in_channels=2, length=40, num_classes=5)
    assert space.input_shape == (2, 40)
    assert [d.name for d in space.dimensions()] == [
        d.name for d in create_space("builtin.cnn").dimensions()
    ]
    net = space.build_subnet(space.largest() | {"stage2.kernel": 3})
    blocks = [b for b in net.modules() if isinstance(b, ConvBlock)]
    assert all(isinstance(b.conv, nn.Conv1d) and isinstance(b.norm, nn.BatchNorm1d) for b in blocks)
    assert blocks[0].conv.stride == (1,) and blocks[3].conv.stride == (2,)
    assert blocks[0].conv.kernel_size == (7,) and blocks[3].conv.kernel_size == (3,)
    assert net(torch.zeros(3, 2, 40)).shape == (3, 5)
    # stage1: 2->16, k3, on 40; stage2: 16->32, k3, stride 2 -> 20; classifier 32->5
    assert space.macs(space.smallest()) == 16 * 2 * 3 * 40 + 32 * 16 * 3 * 20 + 32 * 5


def test_cnn1d_supernet_with_a_smaller_kernel_active_is_its_extraction() -> None:
    torch.manual_seed(0)
    space = create_space("builtin.cnn1d", length=24)
    supernet = space.build_supernet().eval()
    arch = space.smallest() | {"stage1.kernel": 5, "stage2.depth": 2}
    space.activate(supernet, arch)
    subnet = space.extract(supernet, arch).eval()
    x = torch.randn(4, 1, 24)
    with torch.no_grad():
        torch.testing.assert_close(subnet(x), supernet(x), atol=1e-6, rtol=0)
    first = supernet.stages[0].blocks[0].conv.weight  # 32 x 1 x 7: the centre 5 taps of 16
    assert torch.equal(subnet.stages[0].blocks[0].conv.weight, first[:16, :, 1:6])


def test_cnn1d_refuses_a_bad_length_in_one_line() -> None:
    with pytest.raises(SpaceError, match="length must be a positive integer"):
        create_space("builtin.cnn1d", length=0)
