"""Residual branches whose skip is in their parent (``h = h + self.b1(h)`` in the parent's
forward, issue 15): found beside blocks that hold their own skip; removed, the subnet loses the
branch and its add and is smaller; it equals the masked supernet (elastic) and the source
model with the branch's output zeroed (prune); its plan replays from JSON; every zoo model
finds the blocks it found before."""

from __future__ import annotations

import json
import operator
import random
from collections.abc import Sequence
from pathlib import Path

import hf_zoo
import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
import zoo
from torch import Tensor, fx, nn

from search_spaces import SpaceError, create_space
from search_spaces.derived import DerivedSpace, apply_plan, derive_space
from search_spaces.derived.blocks import find_blocks
from search_spaces.derived.branches import trace_owner

SHAPE = (3, 16, 16)
BRANCHES = ["b1", "b2", "stage.refine", "extra.0", "extra.1"]
# every branch removed, every channel group at half its width
SMALL = {"stem.0": 0.5, "b1.0": 0.5, "block.conv1": 0.5, "stage.proj.0": 0.5}


def _space(**options: object) -> DerivedSpace:
    space = create_space("derived", model="zoo:parent_skips", input_shape=[1, *SHAPE], **options)
    assert isinstance(space, DerivedSpace)
    space.load_state(space.fit_state([], seed=0))
    return space


def _without(space: DerivedSpace, branches: Sequence[str], **widths: float) -> dict:
    return space.largest() | {f"{b}:keep": 0 for b in branches} | widths


def _zeroed_source(branches: Sequence[str]) -> nn.Module:
    """The source model with the output of each of ``branches`` zeroed where it is made."""
    model = zoo.parent_skips()
    for name in branches:
        model.get_submodule(name).register_forward_hook(lambda m, a, out: torch.zeros_like(out))
    return model


def _adds(graph: fx.Graph) -> int:
    adds = (operator.add, operator.iadd, torch.add)
    return sum(n.op == "call_function" and n.target in adds for n in graph.nodes)


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _x(batch: int = 4) -> Tensor:
    return torch.randn(batch, *SHAPE, generator=torch.Generator().manual_seed(0))


def test_branches_whose_skip_is_in_the_parent_are_found_beside_a_block_with_its_own() -> None:
    space = _space()
    found = [(b.name, b.stage, b.branch) for b in space.blocks]
    assert found == [
        ("b1", "model", True),
        ("b2", "model", True),
        ("block", "model", False),
        ("stage.refine", "stage", True),
        ("extra.0", "extra", True),
        ("extra.1", "extra", True),
    ]
    keeps = [d.name for d in space.dimensions() if d.name.endswith(":keep")]
    assert keeps == [f"{b.name}:keep" for b in space.blocks]
    depths = [d.name for d in _space(blocks="per_stage").dimensions() if ":depth" in d.name]
    assert depths == ["model:depth", "stage:depth", "extra:depth"]


def test_a_removed_branch_leaves_the_module_with_its_add_and_the_subnet_is_smaller() -> None:
    space = _space()
    dense = space.dense_model()
    subnet = space.extract(dense, _without(space, BRANCHES)).eval()
    names = dict(subnet.named_modules())
    for branch in ("b1", "b2", "stage.refine"):
        assert not any(n == branch or n.startswith(branch + ".") for n in names), branch
    # an entry of a ModuleList leaves a parameter-free placeholder that nothing calls
    assert all(_params(names[f"extra.{i}"]) == 0 for i in range(2))
    assert isinstance(subnet, fx.GraphModule) and isinstance(names["stage"], fx.GraphModule)
    called = {str(n.target) for n in subnet.graph.nodes if n.op == "call_module"}
    assert called == {"stem", "block", "stage", "head"}  # no branch, no dropout after one
    assert _adds(trace_owner(dense)) == 4 and _adds(trace_owner(dense.stage)) == 1
    assert _adds(subnet.graph) == 0 and _adds(names["stage"].graph) == 0
    assert "block.conv1.weight" in subnet.state_dict()  # the block with its own skip stays
    before, after = _params(dense), _params(subnet)
    assert after < before and after == space.num_params(_without(space, BRANCHES))
    assert before - after == sum(_params(dense.get_submodule(b)) for b in BRANCHES)
    assert space.macs(_without(space, BRANCHES)) < space.macs(space.largest())
    with torch.no_grad():
        assert (subnet(_x()) - dense(_x())).abs().max() > 1e-3  # removing them changes it


@pytest.mark.parametrize("branches", [["b1"], ["b2", "stage.refine", "extra.1"], BRANCHES])
def test_pruned_without_branches_it_computes_the_source_with_their_output_zeroed(
    branches: list[str],
) -> None:
    space = _space()
    subnet = space.extract(space.dense_model(), _without(space, branches)).eval()
    with torch.no_grad():
        want = _zeroed_source(branches)(_x())
        torch.testing.assert_close(subnet(_x()), want, atol=1e-5, rtol=0)
        assert (want - zoo.parent_skips()(_x())).abs().max() > 1e-3  # the branches count


def test_the_masked_supernet_without_branches_equals_its_extraction() -> None:
    space = _space()
    supernet = space.build_supernet()
    supernet.train()
    with torch.no_grad():  # batch-norm statistics other than the init's
        for _ in range(2):
            supernet(torch.randn(8, *SHAPE) * 2 + 0.3)
    supernet.eval()
    x = _x()
    arch = _without(space, BRANCHES, **SMALL)
    rng = random.Random(7)
    for candidate in [arch, *(space.sample(rng) for _ in range(8))]:
        space.activate(supernet, candidate)
        subnet = space.extract(supernet, candidate).eval()
        with torch.no_grad():
            torch.testing.assert_close(subnet(x), supernet(x), atol=1e-5, rtol=0)
        space.check_active(supernet, candidate, subnet)
    space.activate(supernet, space.largest())
    with torch.no_grad():
        dense = supernet(x)
        space.activate(supernet, _without(space, ["b1"]))
        assert (supernet(x) - dense).abs().max() > 1e-3  # the masks do remove the branch


def test_a_plan_without_branches_replays_from_json_and_from_an_exported_state_file(
    tmp_path: Path,
) -> None:
    from nasprune.exporting.subnet import FORMAT, FORMAT_VERSION, load_subnet

    space = _space()
    arch = _without(space, ["b2", "stage.refine", "extra.0"], **SMALL)
    subnet = space.extract(space.dense_model(), arch).eval()
    plan = json.loads(json.dumps(space.plan(arch)))
    assert plan["version"] == 2
    assert plan["removed_branches"] == ["b2", "extra.0", "stage.refine"]
    assert plan["removed_blocks"] == []
    replayed = apply_plan(zoo.parent_skips(), plan, SHAPE).eval()
    assert replayed.state_dict().keys() == subnet.state_dict().keys()
    for key, value in subnet.state_dict().items():
        assert torch.equal(value, replayed.state_dict()[key]), key
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "space": "derived",
        "space_params": space.params,
        "input_shape": list(SHAPE),
        "arch": arch,
        "plan": plan,
        "state_dict": subnet.state_dict(),
    }
    torch.save(document, tmp_path / "s.pt")
    loaded = load_subnet(tmp_path / "s.pt")
    with torch.no_grad():
        want = subnet(_x())
        torch.testing.assert_close(replayed(_x()), want, atol=0, rtol=0)
        torch.testing.assert_close(loaded(_x()), want, atol=0, rtol=0)
    # plans that remove no branch are version 1, as before
    assert space.plan(space.largest() | {"block:keep": 0})["version"] == 1
    assert "removed_branches" not in space.plan(space.largest() | {"block:keep": 0})


def test_a_subnet_without_branches_scripts_and_exports_to_onnx(tmp_path: Path) -> None:
    from nasprune.exporting.subnet import torchscript, write_onnx

    space = _space()
    subnet = space.extract(space.dense_model(), _without(space, BRANCHES, **SMALL)).eval()
    x = _x(3)
    with torch.no_grad():
        want = subnet(x)
    scripted = torchscript(subnet, x[:1])
    assert isinstance(scripted, torch.jit.RecursiveScriptModule)  # scripted, not traced
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), want)
    write_onnx(subnet, x[:1], tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(session.run(None, {"input": x.numpy()})[0] - want.numpy()).max() <= 1e-4


class TrainingDependent(nn.Module):
    """``h + dropout(branch(h))`` with the dropout's mode read from ``self.training``: a graph
    of this forward would freeze one mode, so ``branch`` is not offered."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 1, 1)
        self.branch = nn.Conv2d(8, 8, 3, 1, 1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.stem(x))
        h = h + F.dropout(self.branch(h), 0.1, self.training)
        return self.fc(h.mean(dim=(2, 3)))


class Reused(nn.Module):
    """``h + branch(h)`` whose branch output is read again: removing it would change more
    than the add, so it is no branch."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 1, 1)
        self.branch = nn.Conv2d(8, 8, 3, 1, 1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.stem(x))
        c = self.branch(h)
        return self.fc((h + c).mean(dim=(2, 3)) + c.mean(dim=(2, 3)))


@pytest.mark.parametrize("model", [TrainingDependent, Reused])
def test_a_branch_the_parent_graph_cannot_cut_safely_is_not_offered(model: type) -> None:
    torch.manual_seed(0)
    assert find_blocks(model().eval(), (3, 8, 8)) == []
    with pytest.raises(SpaceError, match="block 'branch' does not add its input to its output"):
        derive_space(model().eval(), [1, 3, 8, 8], block_names=["branch"])


# the blocks every zoo model found before issue 15 (skippable blocks, their own skip inside)
BEFORE = {
    "resnet": ["layer1.0", "layer1.1", "layer2.1", "layer3.1"],
    "mobilenet": ["features.1", "features.3", "features.5"],
    "densenet": [],
    "vit": ["blocks.0", "blocks.1"],
    "cnn1d": ["res1", "res2"],
    "permute_head": [],
    "stored_width": [],
    "skip_in_parent": [],
    "wide50": [],
    "normalized": [],
}
NEW_BRANCHES = {"skip_in_parent": ["branch"]}
SHAPES = {name: shape for name, (_, shape) in zoo.FAMILIES.items()} | {
    "permute_head": (3, 4, 4),
    "stored_width": (3, 8, 8),
    "skip_in_parent": (3, 8, 8),
    "wide50": (3, 8, 8),
    "normalized": (3, 8, 8),
}


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_every_zoo_model_finds_the_blocks_it_found_before_and_only_new_branches(
    name: str,
) -> None:
    blocks = find_blocks(getattr(zoo, name)(), SHAPES[name])
    assert [b.name for b in blocks if not b.branch] == BEFORE[name]
    assert [b.name for b in blocks if b.branch] == NEW_BRANCHES.get(name, [])


UNTRACEABLE = {"untraceable": (zoo.untraceable, (3, 16, 16))} | {
    f"hf_zoo.{name}": family for name, family in hf_zoo.FAMILIES.items()
}


@pytest.mark.parametrize("name", sorted(UNTRACEABLE))
def test_models_torch_fx_cannot_trace_are_still_refused_by_name(name: str) -> None:
    factory, shape = UNTRACEABLE[name]
    with pytest.raises(SpaceError, match="torch.fx cannot trace the model in module"):
        find_blocks(factory(), shape)
