"""The criteria users ask for by name: ``snip`` (Lee et al. 2019), ``synflow`` (Tanaka et al.
2020), ``synaptic_strength`` (Lin et al. 2018). Each ranks every channel of every group of the
zoo's families, unlike random; each computes its paper's quantity on a model small enough to
work it out by hand; snip and taylor coincide exactly where the module docstring says and
differ where it says; synflow reads no data, changes no weight of the caller's model and takes
its rounds from the space's settings; synaptic_strength notes the groups it scores without a
norm layer; attention heads are scored sensibly for each."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import hf_zoo
import pytest
import torch
import zoo
from torch import Tensor, nn

from search_spaces import SpaceError
from search_spaces.derived import derive_space
from search_spaces.derived.criteria.taylor import accumulate_gradients
from search_spaces.derived.discovery import ChannelGroup, discover_groups
from search_spaces.derived.importance import channel_order, score_groups

NEW = ["snip", "synflow", "synaptic_strength"]
Batches = list[tuple[Tensor, Tensor]]


def _batches(shape: tuple[int, ...], classes: int = 4) -> Batches:
    gen = torch.Generator().manual_seed(1)
    return [(torch.randn(4, *shape, generator=gen), torch.arange(4) % classes) for _ in range(2)]


def _family(name: str) -> tuple[nn.Module, tuple[int, ...], list[ChannelGroup]]:
    build, shape = zoo.FAMILIES[name]
    model = build()
    return model, shape, discover_groups(model, shape)


def _scores(model: nn.Module, shape: tuple[int, ...], groups: list[ChannelGroup], name: str):
    scores, _ = score_groups(copy.deepcopy(model), shape, groups, name, _batches(shape))
    return scores


def _rank_correlation(a: list[float], b: list[float]) -> float:
    ra, rb = (torch.tensor(v).argsort().argsort().double() for v in (a, b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def _by_mean(values: Tensor) -> list[float]:
    return (values / values.mean()).tolist()


@pytest.mark.parametrize("family", sorted(zoo.FAMILIES))
@pytest.mark.parametrize("criterion", NEW)
def test_each_criterion_ranks_every_channel_of_every_group_unlike_random(
    criterion: str, family: str
) -> None:
    model, shape, groups = _family(family)
    scores = _scores(model, shape, groups, criterion)
    chance = _scores(model, shape, groups, "random")
    assert set(scores) == {g.name for g in groups}
    for group in groups:
        values = scores[group.name]
        assert len(values) == group.channels
        assert all(torch.isfinite(torch.tensor(values)))
        assert len(set(values)) > group.channels // 2  # a ranking, not a few tied blocks
        assert sum(values) / len(values) == pytest.approx(1.0)  # normalised by the mean
        assert _rank_correlation(values, chance[group.name]) < 0.8


def _exploding() -> Iterator[tuple[Tensor, Tensor]]:
    raise AssertionError("synflow read a batch")
    yield  # pragma: no cover


def test_synflow_reads_no_data_changes_no_weight_and_gives_the_same_scores_twice() -> None:
    model, shape, groups = _family("mobilenet")
    before = copy.deepcopy(model.state_dict())
    first, notes = score_groups(model, shape, groups, "synflow", _exploding())
    again, _ = score_groups(model, shape, groups, "synflow", _exploding())
    assert first == again and notes == []
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # signs, dtype, statistics
    assert any(isinstance(m, nn.ReLU6) for m in model.modules())  # the copy's were replaced
    assert not model.training


def test_synflow_with_one_round_is_the_papers_synaptic_saliency() -> None:
    """Bias-free, one hidden layer: R = sum_h a_h * b_h (a_h, b_h the hidden channel's |input|
    and |output| weight sums), and both of its weight slices have saliency a_h * b_h."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8, bias=False), nn.ReLU(), nn.Linear(8, 3, bias=False))
    groups = discover_groups(model, (6,))
    assert [g.name for g in groups] == ["0"]
    scores, _ = score_groups(model, (6,), groups, "synflow", settings={"rounds": 1})
    w1, w2 = model[0].weight.detach().double(), model[2].weight.detach().double()
    saliency = 2 * w1.abs().sum(1) * w2.abs().sum(0)
    assert scores["0"] == pytest.approx(_by_mean(1 + 0.5 * saliency / saliency.max()))


def test_synflow_takes_its_rounds_from_the_space_and_more_rounds_re_rank() -> None:
    model, shape, groups = _family("resnet")
    one = derive_space(model, [1, *shape], importance={"criterion": "synflow", "rounds": 1})
    state = one.fit_state([], seed=0)
    direct, _ = score_groups(model, shape, one.groups, "synflow", settings={"rounds": 1})
    assert state["scores"] == direct
    default = _scores(model, shape, groups, "synflow")  # 10 rounds
    changed = [
        g.name for g in groups if channel_order(default[g.name]) != channel_order(direct[g.name])
    ]
    assert changed  # masking and re-scoring moves channels: the iterative part matters


@pytest.mark.parametrize("rounds", [0, -1, 2.5, True])
def test_bad_synflow_rounds_are_one_clear_error(rounds: object) -> None:
    model, shape, _ = _family("cnn1d")
    with pytest.raises(SpaceError) as info:
        derive_space(model, [1, *shape], importance={"criterion": "synflow", "rounds": rounds})
    assert str(info.value) == f"importance.rounds must be a positive integer, got {rounds!r}"


@pytest.mark.parametrize("family", ["resnet", "densenet", "cnn1d"])
def test_snip_and_taylor_coincide_where_groups_are_plain_convolutions(family: str) -> None:
    model, shape, groups = _family(family)
    snip, taylor = (_scores(model, shape, groups, name) for name in ("snip", "taylor"))
    for group in groups:
        assert snip[group.name] == pytest.approx(taylor[group.name], rel=1e-4, abs=1e-6)


def test_snip_counts_the_depthwise_kernels_that_taylor_skips() -> None:
    model, shape, groups = _family("mobilenet")
    snip, taylor = (_scores(model, shape, groups, name) for name in ("snip", "taylor"))
    graded = copy.deepcopy(model)
    accumulate_gradients(graded, _batches(shape))

    def saliency(name: str, dims: tuple[int, ...]) -> Tensor:
        weight = graded.get_submodule(name).weight
        return (weight * weight.grad).detach().abs().double().sum(dims)

    expand = saliency("features.1.conv.0", (1, 2, 3))  # outputs of the 1x1 expansion
    depthwise = saliency("features.1.conv.3", (1, 2, 3))  # one 3x3 kernel per channel
    project = saliency("features.1.conv.6", (0, 2, 3))  # inputs of the 1x1 projection
    group = "features.1.conv.0"
    assert snip[group] == pytest.approx(_by_mean(expand + depthwise + project), rel=1e-4)
    assert taylor[group] == pytest.approx(_by_mean(expand + project), rel=1e-4)
    assert channel_order(snip[group]) != channel_order(taylor[group])


def test_snip_leaves_out_the_layer_norm_scales_that_taylor_adds() -> None:
    model, shape, groups = _family("vit")
    snip, taylor = (_scores(model, shape, groups, name) for name in ("snip", "taylor"))
    stream = "patch_embed"  # the residual stream: every LayerNorm of the model is in it
    assert channel_order(snip[stream]) != channel_order(taylor[stream])
    for group in groups:
        if group.name != stream:  # mlp and attention groups: linear layers only
            assert snip[group.name] == pytest.approx(taylor[group.name], rel=1e-4, abs=1e-6)


def _small(norms: bool) -> nn.Module:
    torch.manual_seed(0)
    bn: type[nn.Module] = nn.BatchNorm2d if norms else nn.Identity
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), bn(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), bn(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )  # fmt: skip
    if norms:
        with torch.no_grad():
            model[1].weight.copy_(torch.linspace(-2.0, 1.5, 8))  # signs do not count
            model[4].weight.copy_(torch.linspace(0.1, 3.0, 16).flip(0))
    return model.eval()


def test_synaptic_strength_sums_norm_scale_times_kernel_norm_over_the_connections_fed() -> None:
    model = _small(norms=True)
    groups = discover_groups(model, (3, 8, 8))
    scores, notes = score_groups(model, (3, 8, 8), groups, "synaptic_strength")
    assert notes == []
    gamma1, gamma2 = model[1].weight.detach().abs(), model[4].weight.detach().abs()
    kernels = model[3].weight.detach().flatten(2).norm(dim=2).sum(0)  # sum_j ||K_jc||_F
    fc = model[8].weight.detach().abs().sum(0)  # a linear layer's kernels are single weights
    assert scores["0"] == pytest.approx(_by_mean(gamma1 * kernels), rel=1e-5)
    assert scores["3"] == pytest.approx(_by_mean(gamma2 * fc), rel=1e-5)


def test_synaptic_strength_notes_each_group_without_a_norm_layer_and_uses_kernel_norms() -> None:
    model = _small(norms=False)
    groups = discover_groups(model, (3, 8, 8))
    scores, notes = score_groups(model, (3, 8, 8), groups, "synaptic_strength")
    assert notes == [
        "0: no norm layer, scored by kernel norm",
        "3: no norm layer, scored by kernel norm",
    ]
    kernels = model[3].weight.detach().flatten(2).norm(dim=2).sum(0)
    assert scores["0"] == pytest.approx(_by_mean(kernels), rel=1e-5)
    _, vit_notes = score_groups(*_family("vit"), "synaptic_strength")
    assert "blocks.0.mlp.fc1: no norm layer, scored by kernel norm" in vit_notes
    assert not any(note.startswith("patch_embed") for note in vit_notes)  # LayerNorms count


def test_attention_heads_use_gradients_for_snip_and_l1_with_a_note_for_the_other_two() -> None:
    build, shape = hf_zoo.FAMILIES["llama"]
    model = build()
    groups = derive_space(model, [1, *shape], blocks="none").groups
    heads = [g.name for g in groups if g.heads is not None]
    assert heads
    batches = _batches(shape, classes=hf_zoo.LABELS)

    def scored(name: str) -> tuple[dict[str, list[float]], list[str]]:
        settings = {"rounds": 1}
        return score_groups(copy.deepcopy(model), shape, groups, name, batches, 0, settings)

    snip, snip_notes = scored("snip")
    taylor, _ = scored("taylor")
    l1, _ = scored("l1")
    assert not any("attention heads" in note for note in snip_notes)
    for name in ("synflow", "synaptic_strength"):
        scores, notes = scored(name)
        assert [n for n in notes if "attention heads" in n] == [
            f"{head}: attention heads, scored by l1" for head in heads
        ]
        for head in heads:
            assert scores[head] == pytest.approx(l1[head])
    for head in heads:
        assert snip[head] == pytest.approx(taylor[head])
        assert snip[head] != pytest.approx(l1[head])
