"""The ``l0`` criterion: hard-concrete gates learnt on the frozen model rank every channel of
every zoo family, close the channels that carry nothing first, close more as the penalty
rises, leave the model's weights alone, and leave keep ratios in the space's state that
round-trip and become the space's suggested architecture; states without them still load."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
import zoo
from sklearn.datasets import load_digits
from torch import nn

from search_spaces import SpaceError
from search_spaces.derived import derive_space
from search_spaces.derived.criteria.l0 import (
    deterministic_gates,
    fit_gates,
    open_probability,
    sample_gates,
)
from search_spaces.derived.discovery import discover_groups
from search_spaces.derived.importance import channel_order, score_groups

DIGITS = [1, 1, 8, 8]  # a derived space's input_shape: one example, batch first
SHAPE = (1, 8, 8)  # what criteria get: without the batch
Batch = tuple[torch.Tensor, torch.Tensor]


def digit_batches(count: int, size: int = 64) -> list[Batch]:
    features, labels = load_digits(return_X_y=True)
    x = torch.tensor(features / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(labels, dtype=torch.long)
    return [(x[i * size : (i + 1) * size], y[i * size : (i + 1) * size]) for i in range(count)]


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained() -> nn.Module:
    """``small_net`` after one pass over the digits (so its cross-entropy means something)."""
    model = small_net().train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for x, y in digit_batches(25):
        optimiser.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimiser.step()
    model.zero_grad(set_to_none=True)
    return model.eval()


def random_batches(shape: tuple[int, ...], classes: int, count: int = 2) -> list[Batch]:
    gen = torch.Generator().manual_seed(1)
    return [
        (torch.randn(8, *shape, generator=gen), torch.randint(classes, (8,), generator=gen))
        for _ in range(count)
    ]


def test_hard_concrete_gates_follow_the_paper() -> None:
    log_alpha = torch.tensor([-10.0, 0.0, 10.0])
    assert deterministic_gates(log_alpha).tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert open_probability(log_alpha)[1] == pytest.approx(
        torch.sigmoid(torch.tensor(2 / 3 * torch.log(torch.tensor(11.0)).item())).item()
    )
    u = torch.tensor([1e-6, 0.5, 1 - 1e-6])
    z = sample_gates(torch.zeros(3), u)
    assert z.tolist() == pytest.approx([0.0, 0.5, 1.0])  # stretched, then clamped to [0, 1]


@pytest.mark.parametrize("family", sorted(zoo.FAMILIES))
def test_every_channel_of_every_family_gets_a_finite_score_unlike_random(family: str) -> None:
    build, shape = zoo.FAMILIES[family]
    model = build()
    groups = [g for g in discover_groups(model, shape) if g.heads is None]
    classes = int(model(torch.zeros(1, *shape)).shape[1])
    batches = random_batches(shape, classes)
    scores, _ = score_groups(model, shape, groups, "l0", batches, 0, {"steps": 6})
    chance, _ = score_groups(model, shape, groups, "random", batches, 0)
    assert set(scores) == {g.name for g in groups}
    for group in groups:
        values = torch.tensor(scores[group.name])
        assert len(values) == group.channels and torch.isfinite(values).all()
        assert float(values.mean()) == pytest.approx(1.0, rel=1e-6)
    orders = [channel_order(scores[g.name], g.unit) for g in groups]
    assert orders != [channel_order(chance[g.name], g.unit) for g in groups]


def test_channels_that_carry_nothing_are_ranked_last(trained: nn.Module) -> None:
    model = copy.deepcopy(trained)
    dead = [1, 6, 11]
    with torch.no_grad():  # conv0's channels 1, 6, 11 output exact zeros after their norm
        for param in (model[0].weight, model[0].bias, model[1].weight, model[1].bias):
            param[dead] = 0.0
    groups = discover_groups(model, SHAPE)
    scores, _ = score_groups(model, SHAPE, groups, "l0", digit_batches(4), 0, {"steps": 40})
    assert sorted(channel_order(scores["0"])[-3:]) == dead


def test_the_expected_l0_falls_as_the_penalty_rises(trained: nn.Module) -> None:
    groups = discover_groups(trained, SHAPE)
    expected = []
    for penalty in (0.0, 3.0, 30.0):
        log_alpha = fit_gates(trained, SHAPE, groups, digit_batches(4), 0, 40, penalty)
        expected.append(sum(float(open_probability(v).sum()) for v in log_alpha.values()))
    assert expected[0] > expected[1] > expected[2]
    assert expected[2] < 0.8 * expected[0]


def test_gates_weighted_by_measured_layer_times_close_the_slow_layers_channels(
    trained: nn.Module,
) -> None:
    """Group "0" is conv 0's outputs (conv 3's inputs), group "3" conv 3's outputs (the
    linear's inputs). By MACs conv 3 dominates, and both groups close gates to pay for it;
    where the device says another layer is the slow one, the group that does not feed it
    keeps its gates open. A table that lacks a layer, or a device with none, falls back to
    MACs and says so."""
    groups = discover_groups(trained, SHAPE)
    batches = digit_batches(4)

    def kept(layer_ms: dict[str, float] | None) -> tuple[dict[str, float], list[str]]:
        notes: list[str] = []
        log_alpha = fit_gates(trained, SHAPE, groups, batches, 0, 40, 30.0, notes, layer_ms)
        return {k: float(open_probability(v).mean()) for k, v in log_alpha.items()}, notes

    by_macs, none = kept(None)  # conv 3 dominates: both groups pay for it
    slow_conv0, timed = kept({"0": 5.0, "3": 0.05, "8": 0.05})  # only group "0" pays
    assert slow_conv0["3"] > by_macs["3"] + 0.3 and slow_conv0["0"] < by_macs["0"] + 0.05
    slow_linear, _ = kept({"0": 0.05, "3": 0.05, "8": 5.0})  # only group "3" pays
    assert slow_linear["0"] > by_macs["0"] + 0.3 and slow_linear["3"] < by_macs["3"] + 0.05
    assert none == [] and timed == ["l0: gates weighted by the device's measured latency (5.1 ms)"]
    lacking, notes = kept({"0": 5.0, "3": 0.05})
    assert lacking == by_macs and notes == [
        "l0: gates weighted by MACs (the device's latency table lacks 1 of 3 layers, '8' first)"
    ]
    uncalibrated, notes = kept({})
    assert uncalibrated == by_macs
    assert notes == ["l0: gates weighted by MACs (the device has no latency calibration)"]


def test_scoring_changes_no_weight_and_leaves_no_hook(trained: nn.Module) -> None:
    model = copy.deepcopy(trained)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model[3].weight.requires_grad_(False)  # a flag of the user's, restored as it was
    groups = discover_groups(model, SHAPE)
    score_groups(model, SHAPE, groups, "l0", digit_batches(2), 0, {"steps": 5, "penalty": 30.0})
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not model[3].weight.requires_grad and model[0].weight.requires_grad
    assert all(p.grad is None for p in model.parameters())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


@pytest.fixture(scope="module")
def fitted() -> Iterator[tuple[dict, dict]]:
    """A derived space's l0 state, fitted once, and the params of that space."""
    params = {
        "model": "zoo:resnet",
        "model_args": {"in_channels": 1, "widths": [8, 16, 32]},
        "input_shape": DIGITS,
        "importance": {"criterion": "l0", "steps": 40, "penalty": 30.0},
    }
    space = resnet_space(params)
    yield space.fit_state(iter(digit_batches(6)), seed=0), params


def resnet_space(params: dict):
    return derive_space(zoo.resnet(**params["model_args"]), DIGITS, importance=params["importance"])


def test_the_learnt_keep_ratios_round_trip_and_become_the_suggested_arch(fitted) -> None:
    state, params = fitted
    space = resnet_space(params)
    assert state["batches"] == 4  # importance.batches, as for every criterion
    keep = state["l0_keep"]
    assert set(keep) == {g.name for g in space.groups}
    assert all(0.0 <= v <= 1.0 for v in keep.values()) and min(keep.values()) < 1.0
    assert space.suggested() is None  # no state loaded yet
    space.load_state(json.loads(json.dumps(state)))  # as stored: JSON
    suggested = space.suggested()
    assert suggested is not None and suggested == space.canonical(suggested)
    for dim in space.dimensions():
        if dim.name.endswith(":keep"):
            assert suggested[dim.name] == 1  # blocks kept
        else:
            nearest = min(space.keep_ratios, key=lambda r: (abs(r - keep[dim.name]), -r))
            assert suggested[dim.name] == nearest
    assert suggested != space.largest()  # the penalty pruned something

    again = resnet_space(params)
    again.load_state(state)
    assert again.suggested() == suggested
    assert again.plan(suggested) == space.plan(suggested)


def test_a_state_without_keep_ratios_still_loads_and_suggests_nothing(fitted) -> None:
    state, params = fitted
    space = resnet_space(params)
    old = {k: v for k, v in state.items() if k != "l0_keep"}
    space.load_state(old)
    assert space.suggested() is None
    assert space.plan(space.smallest())["groups"]  # the scores still rank channels


def test_other_criteria_store_no_keep_ratios() -> None:
    space = derive_space(small_net(), DIGITS)
    state = space.fit_state(iter(digit_batches(2)), seed=0)
    assert "l0_keep" not in state
    space.load_state(state)
    assert space.suggested() is None


@pytest.mark.parametrize(
    ("importance", "message"),
    [
        ({"criterion": "l0", "steps": 0}, "importance.steps must be a positive integer, got 0"),
        ({"criterion": "l0", "penalty": -1}, "importance.penalty must be a number >= 0, got -1"),
        ({"criterion": "l0", "penalty": "big"}, "importance.penalty must be a number >= 0"),
        ({"criterion": "l2", "steps": 5}, "importance.steps is not a setting of criterion l2"),
        ({"criterion": "l0", "rounds": 5}, r"rounds is not a setting of criterion l0 \(steps"),
    ],
)
def test_bad_settings_are_one_line(importance: dict, message: str) -> None:
    with pytest.raises(SpaceError, match=message) as info:
        derive_space(small_net(), DIGITS, importance=importance)
    assert "\n" not in str(info.value)


def test_a_criterions_settings_are_in_the_params_of_its_spaces_only() -> None:
    """The params of a space with another criterion are what they were before l0 and synflow
    had settings: a search made then resumes with the same config hash and supernet."""
    assert derive_space(small_net(), DIGITS).params["importance"] == {
        "criterion": "l2", "batches": 4
    }  # fmt: skip
    l0 = derive_space(small_net(), DIGITS, importance={"criterion": "l0"})
    assert set(l0.params["importance"]) == {"criterion", "batches", "steps", "penalty"}


def test_stored_keep_ratios_of_another_model_are_refused(fitted) -> None:
    state, params = fitted
    space = resnet_space(params)
    with pytest.raises(SpaceError, match="l0 keep ratios do not match"):
        space.load_state(state | {"l0_keep": {"nowhere": 0.5}})
    with pytest.raises(SpaceError, match="numbers from 0 to 1"):
        space.load_state(state | {"l0_keep": dict.fromkeys(state["l0_keep"], 2.0)})
