"""Spaces derived from models of the common families (tests/support/zoo.py): what is found,
that every candidate is a valid network with exact costs, that the masked supernet equals
the physically pruned module, that plans replay, and that subnets export and reload."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import zoo
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from search_spaces import SpaceError, create_space
from search_spaces.derived import DerivedSpace, apply_plan
from search_spaces.derived.discovery import ROOT_TYPES
from search_spaces.derived.space import derive_space

WIDTH = (0.25, 0.5, 0.75, 1.0)
EXPECTED_DIMENSIONS = {
    "resnet": [
        "stem.0", "layer1.0.conv1", "layer1.1.conv1", "layer2.0.conv1", "layer2.0.conv2",
        "layer2.1.conv1", "layer3.0.conv1", "layer3.0.conv2", "layer3.1.conv1",
        "layer1.0:keep", "layer1.1:keep", "layer2.1:keep", "layer3.1:keep",
    ],
    "mobilenet": [
        "features.0.0", "features.1.conv.0", "features.2.conv.0", "features.2.conv.6",
        "features.3.conv.0", "features.4.conv.0", "features.4.conv.6", "features.5.conv.0",
        "features.6.0", "features.1:keep", "features.3:keep", "features.5:keep",
    ],
    "densenet": ["stem", "block.0.conv", "block.1.conv", "block.2.conv", "transition.2"],
    "vit": [
        "patch_embed", "blocks.0.attn.qkv", "blocks.0.mlp.fc1", "blocks.1.attn.qkv",
        "blocks.1.mlp.fc1", "blocks.0:keep", "blocks.1:keep",
    ],
    "cnn1d": ["stem.0", "res1.conv1", "down.0", "res2.conv1", "res1:keep", "res2:keep"],
}  # fmt: skip
FAMILIES = sorted(EXPECTED_DIMENSIONS)


def _space(family: str, **options: object) -> DerivedSpace:
    _, shape = zoo.FAMILIES[family]
    space = create_space("derived", model=f"zoo:{family}", input_shape=[1, *shape], **options)
    assert isinstance(space, DerivedSpace)
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randn(4, *shape, generator=gen), torch.arange(4)) for _ in range(2)]
    space.load_state(space.fit_state(batches, seed=0))
    return space


def _warm(space: DerivedSpace, supernet: nn.Module) -> None:
    """Training-mode passes so that batch-norm statistics are not the init's."""
    supernet.train()
    with torch.no_grad():
        for _ in range(2):
            supernet(torch.randn(8, *space.input_shape) * 2 + 0.3)
    supernet.eval()


def _macs(module: nn.Module, shape: tuple[int, ...]) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module.eval()(torch.zeros(1, *shape))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("family", FAMILIES)
def test_the_discovered_dimensions_are_the_groups_and_blocks_of_the_model(family: str) -> None:
    space = _space(family)
    assert [d.name for d in space.dimensions()] == EXPECTED_DIMENSIONS[family]
    for dim in space.dimensions():
        assert dim.choices == (WIDTH if not dim.name.endswith(":keep") else (0, 1))
    assert space.num_classes == (5 if family == "cnn1d" else 10)


def test_attention_groups_prune_whole_heads_and_update_num_heads() -> None:
    space = _space("vit")
    group = next(g for g in space.groups if g.attention == "blocks.0.attn")
    assert (group.root, group.channels, group.unit) == ("blocks.0.attn.proj", 64, 16)
    arch = space.largest() | {"blocks.0.attn.qkv": 0.5}
    subnet = space.extract(space.build_supernet(), arch)
    attention = subnet.get_submodule("blocks.0.attn")
    assert attention.num_heads == 2 and attention.qkv.out_features == 3 * 32
    assert attention.proj.in_features == 32 and attention.head_dim == 16


@pytest.mark.parametrize("family", FAMILIES)
def test_random_candidates_run_with_exact_costs_and_equal_their_activated_supernet(
    family: str,
) -> None:
    space = _space(family, sparsity=[0.5])
    supernet = space.build_supernet()
    rng = random.Random(20)
    x = torch.randn(5, *space.input_shape, generator=torch.Generator().manual_seed(0))
    for _ in range(20):
        arch = space.sample(rng)
        space.activate(supernet, arch)
        _warm(space, supernet)
        subnet = space.extract(supernet, arch).eval()
        with torch.no_grad():
            out = subnet(x)
            assert out.shape == (5, space.num_classes)
            if space.masks_emulate(arch):
                torch.testing.assert_close(out, supernet(x), atol=1e-5, rtol=0)
        assert sum(p.numel() for p in subnet.parameters()) == space.num_params(arch)
        assert _macs(subnet, space.input_shape) == space.macs(arch)
        if arch["sparsity"]:
            weights = [m.weight for m in subnet.modules() if isinstance(m, ROOT_TYPES)]
            zeros = sum(int((w == 0).sum()) for w in weights)
            total = sum(w.numel() for w in weights)
            assert zeros / total == pytest.approx(float(arch["sparsity"]), abs=0.01)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_plan_replayed_on_the_dense_weights_reproduces_the_subnet_exactly(
    family: str,
) -> None:
    space = _space(family, sparsity=[0.5])
    dense = space.dense_model()
    for arch in (space.smallest(), space.sample(random.Random(3))):
        subnet = space.extract(dense, arch).eval()
        plan = space.plan(arch)
        replayed = apply_plan(zoo.FAMILIES[family][0](), plan, space.input_shape).eval()
        for key, value in subnet.state_dict().items():
            assert torch.equal(value, replayed.state_dict()[key]), key
        assert set(replayed.state_dict()) == set(subnet.state_dict())


def test_a_removed_block_is_gone_from_the_module_not_bypassed() -> None:
    space = _space("resnet")
    arch = space.largest() | {"layer2.1:keep": 0}
    subnet = space.extract(space.dense_model(), arch)
    assert isinstance(subnet.get_submodule("layer2.1"), nn.Identity)
    assert not any(k.startswith("layer2.1.") for k in subnet.state_dict())
    assert "layer2.1" in space.plan(arch)["removed_blocks"]


def test_widths_inside_removed_blocks_and_equal_channel_counts_are_one_canonical_arch() -> None:
    space = _space("resnet")
    removed = space.largest() | {"layer1.0:keep": 0}
    assert space.canonical(removed | {"layer1.0.conv1": 0.25}) == space.canonical(removed)
    # 16 channels at round_to 8: 0.25 and 0.5 both keep 8
    assert space.canonical(space.largest() | {"stem.0": 0.25})["stem.0"] == 0.25
    assert space.canonical(space.largest() | {"stem.0": 0.5})["stem.0"] == 0.25


def test_global_granularity_spends_one_ratio_unevenly_across_groups() -> None:
    space = _space("resnet", granularity="global", blocks="none", round_to=1)
    assert [d.name for d in space.dimensions()] == ["width"]
    plan = space.plan({"width": 0.5})
    kept = {name: len(spec["keep"]) / spec["channels"] for name, spec in plan["groups"].items()}
    assert len(set(kept.values())) > 1  # each layer loses a different share
    local = _space("resnet", blocks="none")
    assert space.num_params({"width": 0.5}) < local.num_params(local.largest())


def test_per_stage_granularity_and_depth_per_stage() -> None:
    space = _space("resnet", granularity="per_stage", blocks="per_stage")
    names = [d.name for d in space.dimensions()]
    assert names == [
        "stem:width", "layer1:width", "layer2:width", "layer3:width",
        "layer1:depth", "layer2:depth", "layer3:depth",
    ]  # fmt: skip
    assert space.plan(space.largest() | {"layer1:depth": 1})["removed_blocks"] == ["layer1.1"]


def test_ignored_modules_and_the_classifier_are_never_pruned() -> None:
    space = _space("resnet", ignore=["layer3"])
    assert all(not g.name.startswith("layer3.") for g in space.groups)
    subnet = space.extract(space.dense_model(), space.smallest())
    assert subnet.fc.out_features == 10


def test_a_model_passed_as_an_object_derives_the_same_space() -> None:
    by_name = _space("mobilenet")
    by_object = derive_space(zoo.mobilenet(), [1, 3, 32, 32])
    assert by_object.dimensions() == by_name.dimensions()
    assert by_object.params["model"] is None
    assert by_object.params["model_sha256"] == by_name.params["model_sha256"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": "zoo:no_such_factory"}, "cannot be imported"),
        ({"model": "no_such_module:build"}, "cannot be imported"),
        ({"input_shape": [1, 3, 7]}, "rejects input of shape"),
        ({"ignore": ["layer9"]}, "'layer9', which is not a module"),
        ({"keep_ratios": [0.5, 0.9]}, "must end with 1.0"),
        ({"granularity": "layerwise"}, "granularity must be one of"),
        ({"importance": {"criterion": "magic"}}, "unknown importance criterion"),
        ({"block_names": ["layer2.0"]}, "only shape-preserving"),
        ({"round_to": 1000, "blocks": "none"}, "nothing prunable"),
    ],
)
def test_bad_space_params_are_one_clear_error(options: dict, message: str) -> None:
    params = {"model": "zoo:resnet", "input_shape": [1, 3, 32, 32]} | options
    with pytest.raises(SpaceError, match=message):
        create_space("derived", **params)


def test_weights_that_do_not_fit_name_the_first_bad_key(tmp_path: Path) -> None:
    state = zoo.resnet().state_dict()
    state["fc.weight"] = torch.zeros(3, 3)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(SpaceError, match=r"fc.weight has shape \(3, 3\)"):
        create_space("derived", model="zoo:resnet", input_shape=[1, 3, 32, 32],
                     weights=str(tmp_path / "bad.pt"))  # fmt: skip
    del state["fc.weight"]
    torch.save(state, tmp_path / "missing.pt")
    with pytest.raises(SpaceError, match="missing fc.weight"):
        create_space("derived", model="zoo:resnet", input_shape=[1, 3, 32, 32],
                     weights=str(tmp_path / "missing.pt"))  # fmt: skip


def test_weights_load_and_change_the_fingerprint(tmp_path: Path) -> None:
    model = zoo.resnet()
    with torch.no_grad():
        model.fc.bias.add_(1.0)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    loaded = _space("resnet", weights=str(tmp_path / "w.pt"))
    assert loaded.params["model_sha256"] != _space("resnet").params["model_sha256"]
    assert torch.equal(loaded.dense_model().fc.bias, model.fc.bias)


@pytest.mark.parametrize("family", FAMILIES)
def test_subnets_export_to_torchscript_and_onnx_and_reload_with_equal_outputs(
    family: str, tmp_path: Path
) -> None:
    from nasprune.exporting.subnet import torchscript, write_onnx

    space = _space(family)
    subnet = space.extract(space.dense_model(), space.sample(random.Random(5))).eval()
    example = torch.randn(1, *space.input_shape)
    x = torch.randn(3, *space.input_shape)
    with torch.no_grad():
        want = subnet(x)
    torchscript(subnet, example).save(str(tmp_path / "m.ts"))
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(tmp_path / "m.ts"))(x), want)
    write_onnx(subnet, example, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    assert np.abs(got - want.numpy()).max() <= 1e-4


@pytest.mark.parametrize(
    "criterion", ["random", "l1", "l2", "taylor", "bn_scale", "nni.l1", "nni.taylor"]
)
def test_every_importance_criterion_scores_every_channel_of_every_group(criterion: str) -> None:
    space = _space("mobilenet", importance={"criterion": criterion, "batches": 2})
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(4, 3, 32, 32, generator=gen), torch.arange(4)) for _ in range(3)]
    state = space.fit_state(iter(batches), seed=0)
    assert state["criterion"] == criterion
    assert state["batches"] == (2 if "taylor" in criterion else 0)
    for group in space.groups:
        scores = state["scores"][group.name]
        assert len(scores) == group.channels and all(np.isfinite(scores))
    space.load_state(state)
    assert space.extract(space.dense_model(), space.smallest()) is not None


def test_nni_l1_ranks_a_single_layer_group_by_its_filters_l1_norm() -> None:
    space = _space("resnet", importance={"criterion": "nni.l1"})
    state = space.fit_state([], seed=0)
    conv = space.dense_model().get_submodule("layer1.0.conv1")
    norms = conv.weight.detach().abs().flatten(1).sum(1)
    scores = torch.tensor(state["scores"]["layer1.0.conv1"])
    assert torch.equal(scores.argsort(), norms.argsort())


def test_a_model_torch_fx_cannot_trace_is_named_and_can_list_its_blocks() -> None:
    params = {"model": "zoo:untraceable", "input_shape": [1, 3, 16, 16]}
    with pytest.raises(SpaceError, match=r"torch.fx cannot trace the model in module 'gate'"):
        create_space("derived", **params)
    listed = create_space("derived", **params, block_names=["gate"])
    assert [d.name for d in listed.dimensions()] == ["stem", "gate:keep"]
    assert [d.name for d in create_space("derived", **params, blocks="none").dimensions()] == [
        "stem"
    ]


def test_latency_is_filed_under_the_pruned_structure_not_the_arch_dict() -> None:
    small = _space("resnet", granularity="global", model_args={"widths": [8, 16, 32]})
    large = _space("resnet", granularity="global")
    arch = small.largest() | {"width": 0.5}
    a = small.extract(small.dense_model(), arch)
    b = large.extract(large.dense_model(), arch)
    assert small.latency_key(arch, a) != large.latency_key(arch, b)
    again = small.extract(small.build_supernet(), arch)
    assert small.latency_key(arch, again) == small.latency_key(arch, a)
