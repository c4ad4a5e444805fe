"""Hugging Face transformers (tiny BERT, GPT-2 and Llama with grouped-query attention, built
offline from their configs): attention is pruned by whole heads, every candidate computes the
dense model with those heads zeroed in both modes, and deriving shows its steps and stops at
its time limit with one line, never a silent hang."""

from __future__ import annotations

import logging
import random
import time

import hf_zoo
import pytest
import torch
from torch import nn

from search_spaces import SpaceError, create_space
from search_spaces.derived import DerivedSpace
from search_spaces.derived.verify import outputs, probe, zeroed

# family -> (layer 0's attention, its q, k and o projections, query heads, key/value heads)
BERT = "model.bert.encoder.layer.0.attention"
ATTENTION = {
    "bert": (BERT, "self.query", "self.key", "output.dense", 4, 4),
    "gpt2": ("backbone.h.0.attn", "c_attn", "c_attn", "c_proj", 4, 4),
    "llama": ("backbone.layers.0.self_attn", "q_proj", "k_proj", "o_proj", 4, 2),
}  # fmt: skip
HEAD_DIM = 8  # hidden 32 over 4 query heads


def _derive(family: str, **options: object) -> DerivedSpace:
    _, shape = hf_zoo.FAMILIES[family]
    options.setdefault("blocks", "none")  # torch.fx cannot trace them: blocks are listed
    space = create_space("derived", model=f"hf_zoo:{family}", input_shape=[1, *shape], **options)
    assert isinstance(space, DerivedSpace)
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(4, *shape, generator=gen), torch.tensor([0, 1, 2, 0]))]
    space.load_state(space.fit_state(batches, seed=0))
    return space


def _width(layer: nn.Module, out: bool) -> int:
    if hasattr(layer, "nf"):  # transformers' Conv1D
        return int(layer.nf if out else layer.nx)
    return int(layer.out_features if out else layer.in_features)


@pytest.mark.parametrize("family", sorted(ATTENTION))
def test_attention_is_one_group_of_whole_heads_per_layer(family: str) -> None:
    attention, q, _, o, heads, kv_heads = ATTENTION[family]
    space = _derive(family)
    group = next(g for g in space.groups if g.attention == attention)
    assert group.name == f"{attention}.{q}" and group.root == f"{attention}.{o}"
    assert group.unit == heads // kv_heads * HEAD_DIM  # a key/value head and its query heads
    assert group.channels == heads * HEAD_DIM
    assert not space.refused
    # the query, key and value projections are in no other group: nothing cuts single channels
    others = [g for g in space.groups if g is not group]
    assert not any(f"{attention}.{q}" in g.modules for g in others)


@pytest.mark.parametrize("family", sorted(ATTENTION))
def test_candidates_keep_whole_heads_and_compute_the_dense_model_with_those_heads_zeroed(
    family: str,
) -> None:
    attention, q, k, o, heads, kv_heads = ATTENTION[family]
    space = _derive(family)
    group = next(g for g in space.groups if g.attention == attention)
    x = probe(space.input_shape)
    dense = space.dense_model()
    with torch.no_grad():
        full = dense(x)
    for seed in range(6):
        arch = space.sample(random.Random(seed)) | {group.name: 0.5}
        subnet = space.extract(dense, arch)
        modules = dict(subnet.named_modules())
        kept = _width(modules[f"{attention}.{o}"], out=False)
        assert kept % group.unit == 0 and 0 < kept < group.channels
        kv = kept // group.unit * HEAD_DIM  # key/value channels of the kept key/value heads
        q_width, k_width = (
            _width(modules[f"{attention}.{q}"], True),
            _width(modules[f"{attention}.{k}"], True),
        )
        if family == "gpt2":
            assert q_width == kept + 2 * kv
        else:
            assert (q_width, k_width) == (kept, kv)
        keep, removed = space._selection(space.validate(arch))
        channels = {g.name: g.channels for g in space.groups}
        with zeroed(space.dense_model(), space._sites, channels, keep, removed) as reference:
            expected, _ = outputs(reference, x)
        got, _ = outputs(subnet, x)
        assert torch.allclose(got, expected, atol=1e-5)
        assert (got - full).abs().max() > 1e-3  # the heads removed mattered


@pytest.mark.parametrize("family", sorted(ATTENTION))
def test_elastic_mode_masks_whole_heads_as_physical_pruning_removes_them(family: str) -> None:
    space = _derive(family)
    supernet = space.build_supernet()
    for seed in range(4):
        arch = space.sample(random.Random(seed))
        space.activate(supernet, arch)
        space.check_active(supernet, arch, space.extract(supernet, arch))


def test_deriving_logs_its_steps_and_llama_with_gqa_derives_in_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="search_spaces.derived"):
        _derive("llama")
    steps = [r.getMessage() for r in caplog.records if r.getMessage().startswith("derive: ")]
    assert "derive: tracing the model with torch-pruning" in steps
    assert any(s.startswith("derive: checking its") for s in steps)
    assert time.monotonic() - started < 120  # it ran away in torch-pruning for over 10 minutes


def test_a_derivation_past_its_time_limit_stops_with_one_line_naming_the_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NASPRUNE_DERIVE_TIMEOUT_S", "0.5")
    started = time.monotonic()
    with pytest.raises(SpaceError) as caught:
        create_space("derived", model="zoo:stalling", input_shape=[1, 3, 8, 8])
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("deriving the space took over 0.5 s and was stopped while ")
    assert "running the model on one example input" in message
    monkeypatch.setenv("NASPRUNE_DERIVE_TIMEOUT_S", "soon")
    with pytest.raises(SpaceError, match="NASPRUNE_DERIVE_TIMEOUT_S must be a number"):
        create_space("derived", model="zoo:wide50", input_shape=[1, 3, 8, 8])


def test_llama_layers_listed_as_blocks_are_removed_in_both_modes_and_bert_layers_refused() -> None:
    layers = ["backbone.layers.0", "backbone.layers.1"]
    space = _derive("llama", blocks="per_block", block_names=layers)
    assert [d.name for d in space.dimensions()][-2:] == [f"{n}:keep" for n in layers]
    arch = space.largest() | {"backbone.layers.0:keep": 0}
    subnet = space.extract(space.dense_model(), arch)  # called with keywords: still bypassed
    supernet = space.build_supernet()
    space.activate(supernet, arch)
    space.check_active(supernet, arch, subnet)
    with pytest.raises(SpaceError, match=r"block 'model.bert.encoder.layer.0' is not called"):
        _derive("bert", blocks="per_block", block_names=["model.bert.encoder.layer.0"])
