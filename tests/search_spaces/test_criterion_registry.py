"""The importance criteria's registry: a criterion a user registers is found by name, scores
the channel groups of a derived space that names it (with training batches only if it needs
data) while attention heads keep their own scoring; a name taken by another criterion is
refused, naming the holder; an unknown name lists the known ones."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import hf_zoo
import pytest
import torch
from torch import nn

from search_spaces import SpaceError
from search_spaces.derived import Criterion, derive_space, register_criterion
from search_spaces.derived.criteria import CRITERIA, check_criterion
from search_spaces.derived.criteria.magnitude import L2
from search_spaces.derived.discovery import ChannelGroup
from search_spaces.derived.importance import score_groups

SHAPE = [1, 3, 8, 8]
REPO = Path(__file__).resolve().parents[2]


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )  # fmt: skip


def _batches(count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn(4, *SHAPE[1:], generator=gen), torch.arange(4)) for _ in range(count)]


class Ascending(Criterion):
    """Channel i scores i + 1 over the group's mean: the last channel matters most."""

    name = "test.ascending"
    seen: list[int] = []  # how many batches each call got

    def __call__(
        self,
        model: nn.Module,
        input_shape: Sequence[int],
        groups: Sequence[ChannelGroup],
        batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
        seed: int,
    ) -> tuple[dict[str, list[float]], list[str]]:
        Ascending.seen.append(len(batches))
        mean = {g.name: (g.channels + 1) / 2 for g in groups}
        scores = {g.name: [(i + 1) / mean[g.name] for i in range(g.channels)] for g in groups}
        return scores, [f"{g.name}: ascending" for g in groups]


@pytest.fixture
def ascending() -> Iterator[type[Criterion]]:
    """The criterion registered from user code, removed after."""
    Ascending.seen = []
    register_criterion(Ascending)
    yield Ascending
    CRITERIA.pop(Ascending.name)


@pytest.fixture
def ascending_with_data(ascending: type[Criterion]) -> Iterator[type[Criterion]]:
    ascending.needs_data = True
    yield ascending
    ascending.needs_data = False


def test_a_registered_criterion_is_found_by_name(ascending: type[Criterion]) -> None:
    assert CRITERIA.get("test.ascending") is ascending
    assert "test.ascending" in CRITERIA.names()
    assert check_criterion("test.ascending") == "test.ascending"


def test_a_derived_space_naming_a_registered_criterion_ranks_channels_by_it(
    ascending: type[Criterion],
) -> None:
    space = derive_space(_model(), SHAPE, importance={"criterion": "test.ascending"})
    state = space.fit_state(iter(_batches(3)), seed=0)
    assert ascending.seen == [0]  # needs_data is False: no batch is read
    assert state["criterion"] == "test.ascending" and state["batches"] == 0
    assert state["notes"] == [f"{g.name}: ascending" for g in space.groups]
    for group in space.groups:
        assert state["scores"][group.name] == pytest.approx(
            [(i + 1) / ((group.channels + 1) / 2) for i in range(group.channels)]
        )
    space.load_state(state)
    planned = space.plan(space.smallest())["groups"]
    assert planned  # the smallest candidate prunes, keeping the highest-index channels
    for group in planned.values():
        assert group["keep"] == list(
            range(group["channels"] - len(group["keep"]), group["channels"])
        )


def test_a_criterion_that_needs_data_gets_as_many_batches_as_asked(
    ascending_with_data: type[Criterion],
) -> None:
    importance = {"criterion": "test.ascending", "batches": 2}
    space = derive_space(_model(), SHAPE, importance=importance)
    assert space.fit_state(iter(_batches(5)), seed=0)["batches"] == 2
    assert ascending_with_data.seen == [2]


def test_attention_heads_are_scored_by_whole_heads_the_other_groups_by_the_criterion(
    ascending: type[Criterion],
) -> None:
    build, shape = hf_zoo.FAMILIES["llama"]
    model = build()
    groups = derive_space(model, [1, *shape], blocks="none").groups
    heads = {g.name for g in groups if g.heads is not None}
    assert heads and len(heads) < len(groups)
    scores, notes = score_groups(model, [1, *shape], groups, "test.ascending")
    assert set(scores) == {g.name for g in groups}
    assert notes == [f"{g.name}: ascending" for g in groups if g.heads is None] + [
        f"{name}: attention heads, scored by l1" for name in sorted(heads)
    ]


def test_score_groups_calls_the_registered_criterion(ascending: type[Criterion]) -> None:
    groups = derive_space(_model(), SHAPE).groups
    scores, notes = score_groups(_model(), SHAPE, groups, "test.ascending")
    assert set(scores) == {g.name for g in groups} and len(notes) == len(groups)


def test_the_same_criterion_registered_again_changes_nothing(ascending: type[Criterion]) -> None:
    assert register_criterion(ascending) is ascending
    assert register_criterion(L2) is L2
    assert CRITERIA.get("l2") is L2


def test_another_criterion_under_a_taken_name_is_refused_naming_the_holder() -> None:
    class Impostor(Ascending):
        name = "l2"

    with pytest.raises(SpaceError) as info:
        register_criterion(Impostor)
    assert str(info.value) == (
        "importance criterion 'l2' is already registered "
        "(by search_spaces.derived.criteria.magnitude.L2)"
    )
    assert CRITERIA.get("l2") is L2


def test_an_unknown_criterion_lists_the_known_ones_in_one_line() -> None:
    known = (
        "bn_scale, l0, l1, l2, nni.l1, nni.taylor, random, snip, synaptic_strength, synflow, taylor"
    )
    with pytest.raises(SpaceError) as info:
        derive_space(_model(), SHAPE, importance={"criterion": "magic"})
    assert str(info.value) == f"unknown importance criterion 'magic'; known: {known}"
    with pytest.raises(SpaceError, match=f"unknown importance criterion None; known: {known}"):
        score_groups(_model(), SHAPE, [], None)  # type: ignore[arg-type]


def test_the_builtin_criteria_are_registered_without_importing_nni() -> None:
    code = (
        "import sys; from search_spaces.derived.criteria import CRITERIA; "
        "print(CRITERIA.names(), [m for m in sys.modules if m.split('.')[0] == 'nni'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == (
        "['bn_scale', 'l0', 'l1', 'l2', 'nni.l1', 'nni.taylor', 'random', 'snip', "
        "'synaptic_strength', 'synflow', 'taylor'] []"
    )
