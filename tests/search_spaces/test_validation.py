"""Mistakes in architectures, space names and space parameters become one-line SpaceErrors."""

from __future__ import annotations

import pytest

from search_spaces import SpaceError, create_space, list_spaces


@pytest.fixture
def mlp():
    return create_space("builtin.mlp")


def test_unknown_dimension_is_named(mlp) -> None:
    with pytest.raises(SpaceError, match="unknown dimension.*'width_9'"):
        mlp.validate(mlp.largest() | {"width_9": 16})


def test_missing_dimension_is_named(mlp) -> None:
    arch = mlp.largest()
    del arch["width_2"]
    with pytest.raises(SpaceError, match="lacks dimension.*'width_2'"):
        mlp.validate(arch)


def test_value_not_among_choices_names_dimension_and_choices(mlp) -> None:
    with pytest.raises(SpaceError, match=r"17 is not a choice of dimension 'width_1'.*16, 32"):
        mlp.validate(mlp.largest() | {"width_1": 17})


def test_validate_returns_a_clean_copy(mlp) -> None:
    arch = mlp.largest()
    clean = mlp.validate(arch | {"depth": 4.0})
    assert clean == arch and isinstance(clean["depth"], int)


def test_decode_rejects_bad_indices(mlp) -> None:
    with pytest.raises(SpaceError, match="needs 5 indices"):
        mlp.decode([0, 0])
    with pytest.raises(SpaceError, match="out of range for dimension 'width_1'"):
        mlp.decode([0, 4, 0, 0, 0])


def test_unknown_space_name_lists_known_ones() -> None:
    with pytest.raises(SpaceError, match="'builtin.nope'; known: .*builtin.cnn.*builtin.mlp"):
        create_space("builtin.nope")


def test_list_spaces_names_builtins_with_descriptions() -> None:
    spaces = list_spaces()
    assert {"builtin.mlp", "builtin.cnn"} <= set(spaces)
    assert all(isinstance(d, str) and d for d in spaces.values())


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("builtin.mlp", {"depht": 3}, "unexpected keyword argument 'depht'"),
        ("builtin.mlp", {"widths": []}, "widths must be a non-empty list"),
        ("builtin.mlp", {"widths": [32, 16]}, "widths must be strictly ascending"),
        ("builtin.mlp", {"max_depth": 0}, "max_depth must be a positive integer"),
        ("builtin.cnn", {"stages": [{"channels": [8]}]}, "stage 1 must be a mapping with keys"),
        (
            "builtin.cnn",
            {"stages": [{"channels": [8], "depth": [1], "kernel": [3, 4]}]},
            "stage 1 kernel must hold odd kernel sizes",
        ),
        ("builtin.cnn", {"stages": []}, "stages must be a non-empty list"),
    ],
)
def test_bad_space_params_raise_one_line_space_error(name, params, message) -> None:
    with pytest.raises(SpaceError, match=message) as info:
        create_space(name, **params)
    assert "\n" not in str(info.value)


def test_register_space_rejects_a_second_class_with_the_same_name() -> None:
    from search_spaces import register_space
    from search_spaces.mlp import MLPSpace

    class Impostor(MLPSpace):
        name = "builtin.mlp"

    with pytest.raises(SpaceError, match="already registered"):
        register_space(Impostor)
    assert type(create_space("builtin.mlp")) is MLPSpace
