"""The one registry idiom: entries by name, the same entry again a no-op, another entry under
a taken name refused naming the holder, unknown names listing the known, built-ins loaded on
first lookup."""

from __future__ import annotations

import pytest

from plumbing import Registry


class RoomError(ValueError):
    pass


class Shipped:
    name = "shipped"


def test_entries_are_found_by_name_and_popped() -> None:
    room: Registry[type] = Registry("widget", RoomError)
    assert room.add_named(Shipped) is Shipped
    assert room.get("shipped") is Shipped and "shipped" in room and list(room) == ["shipped"]
    assert room.pop("shipped") is Shipped and "shipped" not in room


def test_the_same_entry_again_is_a_no_op_and_another_is_refused_naming_the_holder() -> None:
    room: Registry[type] = Registry("widget", RoomError)
    room.add_named(Shipped)
    room.add_named(Shipped)

    class Other:
        name = "shipped"

    with pytest.raises(RoomError) as info:
        room.add_named(Other)
    assert str(info.value) == (f"widget 'shipped' is already registered (by {__name__}.Shipped)")


def test_unknown_names_of_any_type_list_the_known_ones() -> None:
    room: Registry[type] = Registry("widget", RoomError)
    room.add("b", Shipped)
    room.add("a", Shipped)
    for name in ("c", None, ["a"]):
        with pytest.raises(RoomError, match=r"^unknown widget .*; known: a, b$"):
            room.get(name)


def test_entries_need_a_name() -> None:
    room: Registry[type] = Registry("widget", RoomError)
    with pytest.raises(RoomError, match="widget names are non-empty strings, not ''"):
        room.add("", Shipped)

    class Nameless:
        pass

    with pytest.raises(RoomError, match="Nameless needs a class attribute `name`"):
        room.add_named(Nameless)


def test_builtins_register_on_the_first_lookup_only() -> None:
    calls: list[int] = []

    def builtins() -> None:
        calls.append(1)
        room.add_named(Shipped)

    room: Registry[type] = Registry("widget", RoomError, builtins=builtins)
    assert calls == []
    assert room.names() == ["shipped"] and room.get("shipped") is Shipped
    assert calls == [1]
