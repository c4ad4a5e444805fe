"""Never a silently wrong subnet: a group torch-pruning prunes wrongly is refused at derive time
with one line naming the layer; every candidate of both modes is checked against the dense
model with the same channels zeroed; keep 1.0 is the dense model; a listed block must hold its
own skip connection, or be a branch its parent's torch.fx graph adds to its input."""

from __future__ import annotations

import logging
import random

import pytest
import torch
import zoo
from torch import nn

from search_spaces import SpaceError, create_space
from search_spaces.derived import DerivedSpace, apply_plan
from search_spaces.derived import space as derived_space
from search_spaces.derived.verify import outputs, probe, zeroed


def _derive(model: str, shape: list[int], **options: object) -> DerivedSpace:
    space = create_space("derived", model=f"zoo:{model}", input_shape=[1, *shape], **options)
    assert isinstance(space, DerivedSpace)
    space.load_state(space.fit_state([], seed=0))
    return space


@pytest.mark.parametrize("view", [False, True], ids=["permute-reshape", "permute-view"])
def test_torch_pruning_through_a_permute_would_be_wrong_so_the_group_is_refused_by_name(
    view: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # What torch-pruning alone builds: the classifier keeps the wrong columns, and the model
    # still runs, with other outputs than the dense one with those channels zeroed.
    dense = zoo.permute_head(view=view)
    pruned = apply_plan(
        zoo.permute_head(view=view),
        {
            "format": "nasprune.plan",
            "version": 1,
            "groups": {
                "conv": {"root": "conv", "root_is_input": False, "channels": 16, "unit": 1,
                         "attention": None, "keep": list(range(0, 16, 2))},
            },
            "removed_blocks": [],
            "sparsity": {"ratio": 0.0, "method": "global_l1_unstructured", "seed": 0},
        },
        (3, 4, 4),
    )  # fmt: skip
    even = (torch.arange(16) % 2 == 0).view(1, -1, 1, 1)
    dense.conv.register_forward_hook(lambda module, args, out: out * even)  # odd ones zeroed
    x = probe((3, 4, 4))
    with torch.no_grad():
        assert (pruned(x) - dense(x)).abs().max() > 1e-2

    with caplog.at_level(logging.WARNING):
        space = _derive("permute_head", [3, 4, 4], model_args={"view": view})
    assert "conv" in space.refused and "conv" not in [d.name for d in space.dimensions()]
    assert "first at layer 'fc'" in space.refused["conv"]
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 1 and "'conv'" in lines[0] and "\n" not in lines[0]
    # the group that prunes correctly (the stem, read by a convolution) is still searched
    assert [d.name for d in space.dimensions()] == ["stem"]
    for seed in range(4):
        arch = space.sample(random.Random(seed))
        _assert_equals_its_reference(space, space.dense_model(), arch)


def _assert_equals_its_reference(space: DerivedSpace, source: nn.Module, arch: dict) -> None:
    keep, removed = space._selection(space.validate(arch))
    x = probe(space.input_shape)
    channels = {g.name: g.channels for g in space.groups}
    reference = space.dense_model()
    reference.load_state_dict(source.state_dict())
    with zeroed(reference, space._sites, channels, keep, removed):
        expected, _ = outputs(reference, x)
    got, _ = outputs(space.extract(source, arch), x)
    assert torch.allclose(got, expected, atol=1e-5)


def test_a_model_that_crashes_once_pruned_has_that_group_refused_naming_the_module() -> None:
    space = _derive("stored_width", [3, 8, 8])
    assert list(space.refused) == ["stem"]
    assert space.refused["stem"].startswith("the pruned model fails in module 'mix': RuntimeError")
    assert [d.name for d in space.dimensions()] == ["mix.conv"]
    for ratio in (0.25, 1.0):
        subnet = space.extract(space.dense_model(), {"mix.conv": ratio})
        subnet(torch.randn(2, 3, 8, 8))


def test_a_wrong_extraction_is_refused_before_it_is_evaluated(monkeypatch) -> None:
    """A fault injected into the physical pruning (a weight off by 0.5, as a pruning library's
    wrong index would leave it) makes extract refuse the candidate instead of returning it."""
    space = _derive("resnet", [3, 32, 32], model_args={"widths": [8, 16, 32]})
    arch = space.smallest()
    space.extract(space.dense_model(), arch)  # the honest extraction passes

    real = derived_space.apply_plan

    def faulty(model: nn.Module, plan: dict, shape: tuple, sparsify: bool = True) -> nn.Module:
        model = real(model, plan, shape, sparsify=sparsify)
        with torch.no_grad():
            model.fc.weight[0, 0] += 0.5
        return model

    monkeypatch.setattr(derived_space, "apply_plan", faulty)
    refused = r"candidate refused, not evaluated: .*first at layer 'fc'"
    with pytest.raises(SpaceError, match=refused):
        space.extract(space.dense_model(), arch)


def test_an_activated_supernet_that_is_not_its_extraction_is_refused() -> None:
    space = _derive("resnet", [3, 32, 32], model_args={"widths": [8, 16, 32]})
    supernet = space.build_supernet()
    small, large = space.smallest(), space.largest()
    space.activate(supernet, small)
    space.check_active(supernet, small, space.extract(supernet, small))
    with pytest.raises(SpaceError, match="candidate refused, not evaluated"):
        space.check_active(supernet, small, space.extract(supernet, large))


def test_keep_one_keeps_every_channel_of_a_width_round_to_would_cut() -> None:
    space = _derive("wide50", [3, 8, 8], blocks="none")
    dense = space.dense_model()
    largest = space.extract(dense, space.largest())
    assert largest.conv.out_channels == 50
    assert space.num_params(space.largest()) == sum(p.numel() for p in dense.parameters())
    assert space.extract(dense, {"conv": 0.75}).conv.out_channels == 40


def test_block_names_accept_a_branch_whose_parent_adds_it_and_refuse_what_cannot_be_read() -> None:
    # the parent's torch.fx graph shows h + branch(h): removing the branch removes the add
    listed = _derive("skip_in_parent", [3, 8, 8], block_names=["branch"])
    assert [(b.name, b.branch) for b in listed.blocks] == [("branch", True)]
    subnet = listed.extract(listed.dense_model(), listed.largest() | {"branch:keep": 0})
    assert not any(n.startswith("branch") for n, _ in subnet.named_modules())
    # behind data-dependent control flow, torch.fx cannot read the add: refused, saying why
    unread = r"block 'branch' does not add its input to its output .* its parent 'model' cannot"
    with pytest.raises(SpaceError, match=unread + r" be read: torch.fx cannot trace it"):
        create_space(
            "derived", model="zoo:gated_parent", input_shape=[1, 3, 8, 8], block_names=["branch"]
        )
    # a layer inside a block, which its parent does not add to its input: refused
    inner = r"block 'layer1.1.conv2' .* its parent's forward does not add its output to its input"
    with pytest.raises(SpaceError, match=inner):
        create_space(
            "derived",
            model="zoo:resnet",
            input_shape=[1, 3, 32, 32],
            block_names=["layer1.1.conv2"],
        )
    # the residual blocks of a ResNet, listed by name, are accepted
    listed = create_space(
        "derived", model="zoo:resnet", input_shape=[1, 3, 32, 32], block_names=["layer1.1"]
    )
    assert "layer1.1:keep" in [d.name for d in listed.dimensions()]
