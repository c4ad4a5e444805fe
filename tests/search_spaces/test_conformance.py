"""The contract of SearchSpace, checked on every registered space."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from search_spaces import SearchSpace, create_space
from search_spaces.elastic import (
    ElasticBatchNorm1d,
    ElasticBatchNorm2d,
    ElasticConv1d,
    ElasticConv2d,
)

ELASTIC = (ElasticBatchNorm1d, ElasticBatchNorm2d, ElasticConv1d, ElasticConv2d)


def warm_up(space: SearchSpace, supernet: nn.Module, steps: int = 3) -> None:
    """Training-mode forward passes on random data, so that BN running stats are non-trivial."""
    supernet.train()
    with torch.no_grad():
        for _ in range(steps):
            supernet(torch.randn(16, *space.input_shape) * 2 + 0.5)


def _archs(space: SearchSpace, n_random: int = 10) -> list[dict]:
    rng = random.Random(1234)
    return [space.largest(), space.smallest(), *(space.sample(rng) for _ in range(n_random))]


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_extracted_subnet_matches_activated_supernet_in_eval_mode(space: SearchSpace) -> None:
    torch.manual_seed(0)
    supernet = space.build_supernet()
    x = torch.randn(7, *space.input_shape)
    archs = [a for a in _archs(space) if space.masks_emulate(a)]  # sparse weights are not masked
    assert len(archs) >= 3
    for arch in archs:
        space.activate(supernet, arch)
        warm_up(space, supernet)
        supernet.eval()
        subnet = space.extract(supernet, arch).eval()
        with torch.no_grad():
            torch.testing.assert_close(subnet(x), supernet(x), atol=1e-5, rtol=0)
        assert _n_params(subnet) == space.num_params(arch)


def test_extracted_subnet_is_plain_and_physically_smaller(space: SearchSpace) -> None:
    supernet = space.build_supernet()
    arch = space.smallest()
    subnet = space.extract(supernet, arch)
    assert _n_params(subnet) < _n_params(supernet)
    assert not any(isinstance(m, ELASTIC) for m in subnet.modules())
    assert _n_params(space.build_subnet(arch)) == _n_params(subnet)


def test_extracted_subnet_shares_no_storage_with_supernet(space: SearchSpace) -> None:
    supernet = space.build_supernet()
    subnet = space.extract(supernet, space.largest())
    ptrs = {t.untyped_storage().data_ptr() for t in supernet.state_dict().values()}
    assert not ptrs & {t.untyped_storage().data_ptr() for t in subnet.state_dict().values()}


def test_activate_shares_weights_without_copy(space: SearchSpace) -> None:
    torch.manual_seed(0)
    supernet = space.build_supernet().eval()
    before = {k: t.data_ptr() for k, t in supernet.state_dict().items()}
    arch = space.sample(random.Random(7))
    space.activate(supernet, arch)
    assert {k: t.data_ptr() for k, t in supernet.state_dict().items()} == before

    x = torch.randn(3, *space.input_shape)
    with torch.no_grad():
        out = supernet(x)
        for param in supernet.parameters():
            param.add_(0.5)  # in place: the active sub-network sees it at once
        assert not torch.allclose(supernet(x), out)


def test_training_the_active_subnet_updates_shared_bn_buffers(space: SearchSpace) -> None:
    supernet = space.build_supernet()
    space.activate(supernet, space.smallest())
    norms = [m for m in supernet.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    first = norms[0]
    if not hasattr(first, "active_features"):
        pytest.skip("a masked supernet (derived) normalises every channel; pruned ones go unread")
    active = first.active_features
    warm_up(space, supernet, steps=1)
    assert not torch.all(first.running_mean[:active] == 0)
    assert torch.all(first.running_mean[active:] == 0)  # inactive channels untouched


def test_extract_leaves_supernet_unchanged(space: SearchSpace) -> None:
    supernet = space.build_supernet()
    state = {k: v.clone() for k, v in supernet.state_dict().items()}
    space.extract(supernet, space.smallest())
    for key, value in supernet.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_space_rebuilt_from_its_params_is_equal(space: SearchSpace) -> None:
    again = create_space(space.name, **space.params)
    assert again == space and hash(again) == hash(space)
    assert again.dimensions() == space.dimensions()


def test_encode_decode_round_trip(space: SearchSpace) -> None:
    for arch in _archs(space):
        indices = space.encode(arch)
        assert all(isinstance(i, int) for i in indices)
        assert space.decode(indices) == arch
    assert space.encode(space.smallest()) == [0] * len(space.dimensions())


def test_size_is_product_of_choice_counts(space: SearchSpace) -> None:
    expected = 1
    for dim in space.dimensions():
        expected *= len(dim.choices)
    assert space.size() == expected


def test_sample_is_deterministic_with_seeded_rng(space: SearchSpace) -> None:
    first = [space.sample(random.Random(42)) for _ in range(3)]
    rng_a, rng_b = random.Random(5), random.Random(5)
    assert [space.sample(rng_a) for _ in range(20)] == [space.sample(rng_b) for _ in range(20)]
    assert first[0] == first[1] == first[2]
    assert all(space.validate(a) == a for a in first)


def test_macs_and_params_grow_monotonically_from_smallest_to_largest(space: SearchSpace) -> None:
    def cost(indices: list[int]) -> tuple[int, int]:
        arch = space.decode(indices)
        return space.num_params(arch), space.macs(arch)

    # Walk from smallest to largest, raising one dimension by one choice at a time.
    indices = space.encode(space.smallest())
    costs = [cost(indices)]
    for d, dim in enumerate(space.dimensions()):
        while indices[d] < len(dim.choices) - 1:
            indices[d] += 1
            costs.append(cost(indices))
    assert space.decode(indices) == space.largest()
    for (p0, m0), (p1, m1) in zip(costs, costs[1:], strict=False):
        assert p1 >= p0 and m1 >= m0
    assert costs[-1][0] > costs[0][0] and costs[-1][1] > costs[0][1]


def test_cost_queries_do_not_draw_from_torch_global_rng(space: SearchSpace) -> None:
    supernet = space.build_supernet()
    torch.manual_seed(3)
    state = torch.random.get_rng_state()
    arch = space.sample(random.Random(3))
    space.num_params(arch)
    space.macs(arch)
    space.extract(supernet, arch)
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("method", ["activate_first", "build_subnet", "num_params", "encode"])
def test_every_arch_method_validates(space: SearchSpace, method: str) -> None:
    from search_spaces import SpaceError

    bad = space.largest() | {"no_such_dimension": 1}
    with pytest.raises(SpaceError, match="no_such_dimension"):
        if method == "activate_first":
            space.activate(space.build_supernet(), bad)
        else:
            getattr(space, method)(bad)
