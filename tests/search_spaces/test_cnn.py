"""builtin.cnn: its dimensions, strides and residual blocks."""

from __future__ import annotations

import torch
from torch import nn

from search_spaces import DimensionKind, create_space
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
