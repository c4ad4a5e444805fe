"""Fake int8 against the int8 model ONNX Runtime runs (nasprune.quantization)."""

from __future__ import annotations

import copy
import random

import pytest
import torch
from torch import nn

from nasprune.errors import SearchError
from nasprune.onnx_export import onnx_bytes
from nasprune.quantization import Int8Model
from nasprune.quantization.fake import FakeInt8, folded_norms
from nasprune.quantization.qdq import OrtModule, fits, layer_nodes, quantize_qdq
from search_spaces import create_space
from search_spaces.quantization import quantizable
from tests.support import zoo


def _onnx_model(module: nn.Module, shape: tuple[int, ...]):  # type: ignore[no-untyped-def]
    import onnx

    return onnx.load_from_string(onnx_bytes(module, torch.randn(1, *shape)))


@pytest.mark.parametrize("family", ["resnet", "vit", "cnn1d", "mobilenet"])
def test_every_convolution_and_linear_layer_is_found_in_the_exported_graph(family: str) -> None:
    factory, shape = zoo.FAMILIES[family]
    module = factory()
    nodes = layer_nodes(_onnx_model(module, shape), quantizable(module))
    assert set(quantizable(module)) == set(nodes)


class _Nested(nn.Module):
    """Containers called and not called: a list's and a dict's modules called straight."""

    def __init__(self) -> None:
        super().__init__()
        conv = lambda: nn.Conv1d(2, 2, 1)  # noqa: E731
        self.a = nn.Sequential(nn.Sequential(conv(), conv()), nn.ModuleList([conv()]))
        self.d = nn.ModuleDict({"x": conv()})
        self.x = conv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.x(self.d["x"](self.a[1][0](self.a[0](x))))


def test_a_node_is_traced_to_its_module_through_containers_and_ambiguous_ones_to_none() -> None:
    module = _Nested().eval()
    names = quantizable(module)
    nodes = layer_nodes(_onnx_model(module, (2, 4)), names)
    assert sorted(names) == ["a.0.0", "a.0.1", "a.1.0", "d.x", "x"]
    assert sorted(nodes) == ["a.0.0", "a.0.1", "a.1.0"]  # d.x and x are both "/x" in the graph
    assert fits("/layer2/layer2.0/shortcut/shortcut.0/Conv", "layer2.0.shortcut.0")
    assert fits("/blocks/blocks.1/attn/qkv/MatMul_1", "blocks.1.attn.qkv")
    assert not fits("/blocks/blocks.1/attn/qkv/MatMul_1", "blocks.0.attn.qkv")


def test_the_norm_after_each_convolution_is_the_one_the_export_folds() -> None:
    norms = folded_norms(zoo.resnet())
    assert norms["stem.0"] == "stem.1"
    assert norms["layer1.0.conv1"] == "layer1.0.bn1"
    assert norms["layer2.0.shortcut.0"] == "layer2.0.shortcut.1"
    assert "fc" not in norms


def _trained_cnn1d() -> tuple[nn.Module, list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """The zoo's residual 1-D CNN trained briefly on a separable synthetic task."""
    torch.manual_seed(0)
    centres = torch.randn(5, 4, 128)
    labels = torch.randint(0, 5, (1200,))
    inputs = centres[labels] + 0.8 * torch.randn(1200, 4, 128)
    module = zoo.cnn1d()
    optimiser = torch.optim.Adam(module.parameters(), 3e-3)
    module.train()
    for step in range(60):
        batch = slice((step % 15) * 64, (step % 15 + 1) * 64)
        optimiser.zero_grad()
        nn.functional.cross_entropy(module(inputs[batch]), labels[batch]).backward()
        optimiser.step()
    module.eval()
    batches = [inputs[i * 64 : (i + 1) * 64] for i in range(4)]
    return module, batches, inputs[960:], labels[960:]


def test_fake_int8_computes_what_onnx_runtime_int8_computes_on_20_random_layer_choices() -> None:
    module, batches, inputs, labels = _trained_cnn1d()
    layers = quantizable(module)
    rng = random.Random(0)
    gaps, agreements = [], []
    for _ in range(20):
        chosen = [name for name in layers if rng.random() < 0.5] or [rng.choice(layers)]
        int8 = OrtModule(quantize_qdq(onnx_bytes(module, inputs[:1]), chosen, batches, layers))
        fake = copy.deepcopy(module)
        FakeInt8(fake, chosen, batches)
        with torch.no_grad():
            want, got = fake(inputs), int8(inputs)
        gaps.append(float((got - want).abs().max() / want.abs().max()))
        agreements.append(float((got.argmax(1) == want.argmax(1)).float().mean()))
    assert max(gaps) < 0.05, gaps  # the bound nasprune.quantization states
    assert min(agreements) >= 0.97, agreements
    assert float((module(inputs).argmax(1) == labels).float().mean()) > 0.5  # it learned


def test_removing_fake_int8_leaves_the_module_computing_in_fp32() -> None:
    module, batches, inputs, _ = _trained_cnn1d()
    before = module(inputs)
    fake = FakeInt8(module, quantizable(module), batches)
    assert not torch.equal(module(inputs), before)
    fake.remove()
    assert torch.equal(module(inputs), before)
    assert set(module.state_dict()) == set(zoo.cnn1d().state_dict())


def test_int8_layers_the_graph_does_not_have_are_refused() -> None:
    module, batches, inputs, _ = _trained_cnn1d()
    with pytest.raises(SearchError, match=r"no node in the exported model: \['nowhere'\]"):
        quantize_qdq(onnx_bytes(module, inputs[:1]), ["nowhere"], batches, ["fc"])
    with pytest.raises(ValueError, match="not a convolution or linear layer"):
        FakeInt8(module, ["res1.bn1"], batches)


def test_only_the_chosen_layers_run_in_int8() -> None:
    import onnx

    module, batches, inputs, _ = _trained_cnn1d()
    fp32 = onnx_bytes(module, inputs[:1])
    model = onnx.load_from_string(quantize_qdq(fp32, ["fc"], batches, quantizable(module)))
    weights = {n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    assert any(w.startswith("fc.weight") for w in weights)
    assert sum("weight" in w or "Conv" in w for w in weights) == 1  # the stem's and others' stay


def test_the_qdq_model_tensorrt_reads_has_signed_activations_with_zero_points_of_0() -> None:
    import onnx
    from onnx import numpy_helper

    module, batches, inputs, _ = _trained_cnn1d()
    layers = quantizable(module)
    int8 = Int8Model(module, layers, batches)
    model = onnx.load_from_string(int8.qdq(symmetric=True))
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    zero_points = [constants[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert zero_points and all(z.dtype.name == "int8" and not z.any() for z in zero_points)
    default = onnx.load_from_string(int8.qdq())
    kinds = {numpy_helper.to_array(t).dtype.name for t in default.graph.initializer}
    assert "uint8" in kinds  # the ONNX Runtime backend's model keeps unsigned activations
    with torch.inference_mode():
        want, got = int8(inputs), OrtModule(int8.qdq(symmetric=True))(inputs)
    assert (got - want).abs().max() <= int8.tolerance * want.abs().max()


@pytest.mark.parametrize(
    ("space_name", "params", "shape"),
    [
        ("derived", {"model": "zoo:vit", "input_shape": [1, 3, 32, 32]}, (3, 32, 32)),
        ("builtin.cnn", {}, (1, 8, 8)),
    ],
)
def test_int8_subnets_of_the_vit_and_the_builtin_cnn_run_as_their_qdq_models(
    space_name: str, params: dict, shape: tuple[int, ...]
) -> None:
    space = create_space(space_name, **params, quantization={})
    if space.needs_state():
        space.load_state(space.fit_state([], seed=0))
    batches = [
        torch.randn(16, *shape, generator=torch.Generator().manual_seed(i)) for i in range(2)
    ]
    rng, checked = random.Random(0), 0
    for _ in range(3):
        arch = space.sample(rng)
        layers = space.int8_layers(arch)
        if not layers:
            continue
        int8 = Int8Model(space.build_subnet(arch).eval(), layers, batches)
        with torch.no_grad():
            want, got = int8(batches[0]), int8.deployed()(batches[0])
        assert float((got - want).abs().max() / want.abs().max()) < 0.05
        checked += 1
    assert checked
