"""The search spaces' registry: a space a user registers is found by name and built with its
params checked; a name taken by another space is refused, naming the holder; an unknown name
lists the known ones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from search_spaces import SearchSpace, SpaceError, create_space, list_spaces, register_space
from search_spaces.mlp import MLPSpace
from search_spaces.registry import SPACES


@pytest.fixture
def user_space() -> Iterator[type[SearchSpace]]:
    """A space registered from user code (a narrow MLP under its own name), removed after."""

    @register_space
    class NarrowMLP(MLPSpace):
        name = "test.narrow_mlp"
        description = "An MLP of at most two narrow layers"

        def __init__(self, max_depth: int = 2) -> None:
            super().__init__(max_depth=max_depth, widths=(8, 16))

    yield NarrowMLP
    SPACES.pop("test.narrow_mlp")


def test_a_registered_space_is_found_by_name_and_built(user_space: type[SearchSpace]) -> None:
    assert list_spaces()["test.narrow_mlp"] == "An MLP of at most two narrow layers"
    built = create_space("test.narrow_mlp", max_depth=1)
    assert type(built) is user_space and [d.name for d in built.dimensions()][0] == "depth"


def test_a_registered_space_gets_its_params_checked(user_space: type[SearchSpace]) -> None:
    with pytest.raises(SpaceError) as info:
        create_space("test.narrow_mlp", widths=[8])
    assert str(info.value).startswith("bad parameters for search space 'test.narrow_mlp'")
    assert str(info.value).endswith("it takes: max_depth")


def test_the_same_space_registered_again_changes_nothing(user_space: type[SearchSpace]) -> None:
    assert register_space(user_space) is user_space
    assert register_space(MLPSpace) is MLPSpace
    assert SPACES.get("builtin.mlp") is MLPSpace


def test_another_space_under_a_taken_name_is_refused_naming_the_holder() -> None:
    class Impostor(MLPSpace):
        name = "builtin.mlp"

    with pytest.raises(SpaceError) as info:
        register_space(Impostor)
    assert str(info.value) == (
        "search space 'builtin.mlp' is already registered (by search_spaces.mlp.MLPSpace)"
    )
    assert SPACES.get("builtin.mlp") is MLPSpace


def test_an_unknown_space_lists_the_known_ones_in_one_line() -> None:
    with pytest.raises(SpaceError) as info:
        create_space("builtin.nope")
    assert str(info.value) == (
        "unknown search space 'builtin.nope'; known: "
        "builtin.cnn, builtin.cnn1d, builtin.mlp, derived"
    )
