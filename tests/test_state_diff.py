"""`diff_states`: the changes between two states, as ``pyrivet inspect diff`` prints them."""

from __future__ import annotations

from pyrivet._runtime.state_diff import diff_states


def test_equal_states_have_no_changes() -> None:
    state = {"a": [1, {"b": None}], "c": "x"}
    assert diff_states(state, {"a": [1, {"b": None}], "c": "x"}) == []


def test_keys_added_removed_and_replaced_with_their_paths() -> None:
    old = {"count": 1, "gone": True, "nested": {"x": 1}}
    new = {"count": 2, "nested": {"x": 1, "y": [1]}, "fresh": "yes"}
    assert diff_states(old, new) == [
        {"op": "replace", "path": ["count"], "old": 1, "new": 2},
        {"op": "remove", "path": ["gone"], "value": True},
        {"op": "add", "path": ["nested", "y"], "value": [1]},
        {"op": "add", "path": ["fresh"], "value": "yes"},
    ]


def test_lists_compare_item_by_item_then_the_extra_items() -> None:
    assert diff_states([1, 2, 3], [1, 5]) == [
        {"op": "replace", "path": [1], "old": 2, "new": 5},
        {"op": "remove", "path": [2], "value": 3},
    ]
    assert diff_states([], ["a"]) == [{"op": "add", "path": [0], "value": "a"}]


def test_a_changed_type_is_a_replacement_even_when_equal() -> None:
    assert diff_states(1, True) == [{"op": "replace", "path": [], "old": 1, "new": True}]
    assert diff_states({"a": 1}, [1]) == [
        {"op": "replace", "path": [], "old": {"a": 1}, "new": [1]}
    ]
