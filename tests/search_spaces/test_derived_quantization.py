"""int8 dimensions of a derived space and the built-in CNN (``quantization`` in their params,
issue 17): one per layer,
per stage or global; an architecture names the layers that run in int8, its plan lists them
(version 3), its latency key differs from the fp32 one's, and bad settings are one line."""

from __future__ import annotations

import pytest
import torch

from search_spaces import SpaceError, arch_hash, create_space
from search_spaces.derived import DerivedSpace, apply_plan
from search_spaces.derived.plan import check_plan
from search_spaces.quantization import quantizable

SHAPE = [1, 4, 128]
LAYERS = ["stem.0", "res1.conv1", "res1.conv2", "down.0", "res2.conv1", "res2.conv2", "fc"]


def _space(**quantization: object) -> DerivedSpace:
    space = create_space("derived", model="zoo:cnn1d", input_shape=SHAPE, quantization=quantization)
    assert isinstance(space, DerivedSpace)
    space.load_state(space.fit_state([], seed=0))
    return space


def test_per_layer_gives_each_convolution_and_linear_layer_a_bit_width() -> None:
    space = _space()
    bits = {d.name: d.choices for d in space.dimensions() if d.kind == "bits"}
    assert bits == {f"{layer}:bits": (8, 32) for layer in LAYERS}
    assert space.largest() == space.largest() | {f"{layer}:bits": 32 for layer in LAYERS}
    assert space.int8_layers(space.largest()) == []


def test_per_stage_and_global_group_the_layers() -> None:
    stages = {d.name for d in _space(dims="per_stage").dimensions() if d.kind == "bits"}
    assert stages == {"stem:bits", "res1:bits", "down:bits", "res2:bits", "fc:bits"}
    whole = _space(dims="global", exclude=["stem.0", "fc"])
    assert [d.name for d in whole.dimensions() if d.kind == "bits"] == ["bits"]
    arch = whole.largest() | {"bits": 8}
    assert whole.int8_layers(arch) == sorted(set(LAYERS) - {"stem.0", "fc"})


def test_an_architecture_with_int8_layers_has_them_in_its_plan_and_latency_key() -> None:
    space = _space()
    fp32 = space.largest()
    int8 = fp32 | {"res1.conv1:bits": 8, "fc:bits": 8}
    assert space.int8_layers(int8) == ["fc", "res1.conv1"]
    plan = space.plan(int8)
    check_plan(plan)
    assert plan["version"] == 3 and plan["int8"] == ["fc", "res1.conv1"]
    assert "int8" not in space.plan(fp32) and space.plan(fp32)["version"] == 1
    module = apply_plan(space.dense_model(), plan, space.input_shape)  # the fp32 module
    assert set(quantizable(module)) >= set(plan["int8"])
    subnet = space.build_subnet(int8)
    assert space.latency_key(int8, subnet) != space.latency_key(fp32, subnet)
    assert space.latency_key(fp32, subnet) == space.latency_key(fp32, space.build_subnet(fp32))
    assert not space.masks_emulate(int8) and space.masks_emulate(fp32)


def test_the_layers_of_a_removed_block_run_nothing_and_their_bits_are_canonical_fp32() -> None:
    space = _space()
    keeps = [d.name for d in space.dimensions() if d.name.endswith(":keep")]
    assert "res1:keep" in keeps
    arch = space.largest() | {"res1:keep": 0, "res1.conv1:bits": 8, "down.0:bits": 8}
    assert space.int8_layers(arch) == ["down.0"]
    assert space.canonical(arch)["res1.conv1:bits"] == 32
    assert space.canonical(arch)["down.0:bits"] == 8


def test_the_settings_survive_the_stored_params() -> None:
    space = _space(dims="per_stage", choices=["int8", "fp32"], exclude=["fc"])
    again = create_space("derived", **space.params)
    assert again.dimensions() == space.dimensions()
    assert space.params["quantization"] == {
        "dims": "per_stage", "choices": ["fp32", "int8"], "calibration_batches": 8,
        "exclude": ["fc"],
    }  # fmt: skip
    plain = create_space("derived", model="zoo:cnn1d", input_shape=SHAPE)
    assert "quantization" not in plain.params and plain.quantization is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"exclude": ["res1.bn1", "nowhere"]}, r"exclude names no convolution or linear layer "
         r"of the model: \['res1.bn1', 'nowhere'\] \(its layers: stem.0, res1.conv1"),
        ({"choices": ["fp32", "int4"]}, r"fp32 and int8, not \['int4'\]: no CPU runtime"),
        ({"dims": "per_block"}, "dims must be one of per_layer, per_stage, global"),
        ({"bits": 8}, r"quantization takes dims, choices, calibration_batches, exclude, not "),
        ({"calibration_batches": 0}, "calibration_batches"),
        ({"exclude": LAYERS}, "every convolution and linear layer is excluded"),
    ],
)  # fmt: skip
def test_bad_quantization_settings_are_one_line(settings: dict, message: str) -> None:
    with pytest.raises(SpaceError, match=message) as caught:
        _space(**settings)
    assert "\n" not in str(caught.value)


def test_a_space_without_quantization_is_unchanged() -> None:
    space = create_space("derived", model="zoo:cnn1d", input_shape=SHAPE)
    assert isinstance(space, DerivedSpace)
    space.load_state(space.fit_state([], seed=0))
    assert not any(d.kind == "bits" for d in space.dimensions())
    assert space.int8_layers(space.largest()) == []
    assert space.plan(space.smallest())["version"] == 1 and space.masks_emulate(space.smallest())


def test_the_small_vit_offers_its_patch_embedding_attention_and_mlp_layers() -> None:
    space = create_space(
        "derived", model="zoo:vit", input_shape=[1, 3, 32, 32],
        quantization={"exclude": ["patch_embed"]},
    )  # fmt: skip
    assert isinstance(space, DerivedSpace)
    space.load_state(space.fit_state([], seed=0))
    bits = [d.name for d in space.dimensions() if d.kind == "bits"]
    assert "blocks.0.attn.qkv:bits" in bits and "blocks.1.mlp.fc2:bits" in bits
    assert "head:bits" in bits and "patch_embed:bits" not in bits
    arch = space.smallest() | {"blocks.0.attn.qkv:bits": 8, "head:bits": 8}
    assert set(space.int8_layers(arch)) <= {"blocks.0.attn.qkv", "head"}
    subnet = space.build_subnet(arch)
    named = dict(subnet.named_modules())
    assert all(isinstance(named[layer], torch.nn.Linear) for layer in space.int8_layers(arch))


def test_the_builtin_cnn_offers_each_blocks_convolution_and_its_classifier() -> None:
    space = create_space("builtin.cnn", quantization={})
    bits = sorted(d.name for d in space.dimensions() if d.kind == "bits")
    assert bits == sorted(
        [f"stages.{s}.blocks.{b}.conv:bits" for s in range(2) for b in range(3)]
        + ["classifier:bits"]
    )
    fp32 = space.smallest() | {name: 32 for name in bits}  # the smallest widths, all in fp32
    arch = fp32 | {"stages.0.blocks.0.conv:bits": 8, "stages.0.blocks.2.conv:bits": 8}
    assert space.int8_layers(arch) == ["stages.0.blocks.0.conv"]  # depth 1: block 2 runs nothing
    assert space.canonical(arch)["stages.0.blocks.2.conv:bits"] == 32
    assert arch_hash(space.canonical(arch)) != arch_hash(space.canonical(fp32))
    assert len(space.int8_layers(space.smallest())) == 3  # stage depths 1: two convs, classifier
    named = dict(space.build_subnet(arch).named_modules())
    assert isinstance(named["stages.0.blocks.0.conv"], torch.nn.Conv2d)
    assert create_space("builtin.cnn", **space.params).dimensions() == space.dimensions()
    per_stage = create_space("builtin.cnn", quantization={"dims": "per_stage"})
    assert {d.name for d in per_stage.dimensions() if d.kind == "bits"} == {
        "stages.0:bits", "stages.1:bits", "classifier:bits"
    }  # fmt: skip
