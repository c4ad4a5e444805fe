"""builtin.mlp: its dimensions, and MACs that equal the hand count of its Linear layers."""

from __future__ import annotations

import random

import torch

from search_spaces import DimensionKind, create_space


def test_mlp_dimensions_are_depth_then_one_width_per_layer() -> None:
    space = create_space("builtin.mlp", max_depth=3, widths=[8, 16])
    dims = space.dimensions()
    assert [d.name for d in dims] == ["depth", "width_1", "width_2", "width_3"]
    assert dims[0].kind is DimensionKind.DEPTH and dims[0].choices == (1, 2, 3)
    assert all(d.kind is DimensionKind.WIDTH and d.choices == (8, 16) for d in dims[1:])
    assert space.params == {"in_features": 64, "num_classes": 10, "max_depth": 3, "widths": [8, 16]}
    assert space.input_shape == (64,) and space.num_classes == 10


def _linear_macs_by_hand(arch: dict, in_features: int = 64, num_classes: int = 10) -> int:
    sizes = [in_features, *(arch[f"width_{i}"] for i in range(1, arch["depth"] + 1)), num_classes]
    return sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))


def test_mlp_macs_equal_sum_of_active_linear_in_times_out() -> None:
    space = create_space("builtin.mlp")
    rng = random.Random(0)
    for arch in [space.smallest(), space.largest(), *(space.sample(rng) for _ in range(10))]:
        assert space.macs(arch) == _linear_macs_by_hand(arch)


def test_mlp_widths_beyond_depth_do_not_change_the_network() -> None:
    space = create_space("builtin.mlp")
    arch = space.smallest() | {"depth": 2}
    other = arch | {"width_3": 128, "width_4": 64}
    assert space.num_params(arch) == space.num_params(other)
    assert space.macs(arch) == space.macs(other)


def test_mlp_subnet_maps_flat_batch_to_logits() -> None:
    space = create_space("builtin.mlp")
    net = space.build_subnet(space.sample(random.Random(1))).eval()
    assert net(torch.zeros(5, 64)).shape == (5, 10)


def test_mlp_canonical_form_merges_architectures_that_build_the_same_network() -> None:
    space = create_space("builtin.mlp", max_depth=3, widths=[16, 32])
    a = {"depth": 1, "width_1": 32, "width_2": 32, "width_3": 16}
    b = {"depth": 1, "width_1": 32, "width_2": 16, "width_3": 32}
    assert (
        space.canonical(a)
        == space.canonical(b)
        == {"depth": 1, "width_1": 32, "width_2": 16, "width_3": 16}
    )
    deep = {"depth": 3, "width_1": 32, "width_2": 32, "width_3": 32}
    assert space.canonical(deep) == deep
    assert space.num_params(a) == space.num_params(b)
