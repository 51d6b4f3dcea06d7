"""The inspector's readable diff (paths written as code, before/after)."""

from __future__ import annotations

from pyrivet.server.inspector.diff import diff, path_text


def test_paths_read_like_code() -> None:
    assert path_text([]) == ""
    assert path_text(["items", 2, "name"]) == "items[2].name"
    assert path_text(["by key", 0]) == "['by key'][0]"
    assert path_text([3]) == "[3]"


def test_changes_say_what_was_and_what_is() -> None:
    before = {"a": 1, "gone": True, "list": [1, 2, 3], "odd key": {"x": 1}}
    after = {"a": 2, "list": [1, 2], "odd key": {"x": 1, "y": 2}, "new": None}
    assert diff(before, after) == [
        {"path": "a", "op": "change", "before": 1, "after": 2},
        {"path": "gone", "op": "remove", "before": True},
        {"path": "list[2]", "op": "remove", "before": 3},
        {"path": "['odd key'].y", "op": "add", "after": 2},
        {"path": "new", "op": "add", "after": None},
    ]
    assert diff({"a": [1]}, {"a": [1]}) == []
    assert diff(1, "1") == [{"path": "", "op": "change", "before": 1, "after": "1"}]
