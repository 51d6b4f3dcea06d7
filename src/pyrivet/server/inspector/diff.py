"""A readable structural diff of two plain-data values (two states of an actor).

``diff(before, after)`` lists the changes, each ``{path, op, before?, after?}`` with
``op`` one of ``add``, ``remove``, ``change``; ``path`` is written as code would reach
the value (``items[2].name``; ``""`` is the whole value). Dicts are compared key by key,
lists index by index (a list that grew or shrank adds or removes its tail); anything
else that differs (or changes type) is one ``change``. Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Any

__all__ = ["diff"]


def _key_path(path: str, key: Any) -> str:
    if isinstance(key, str) and key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


def diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """The changes that turn ``before`` into ``after`` (empty when they are equal)."""
    out: list[dict[str, Any]] = []
    _walk(before, after, path, out)
    return out


def _walk(before: Any, after: Any, path: str, out: list[dict[str, Any]]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in before:
            sub = _key_path(path, key)
            if key not in after:
                out.append({"path": sub, "op": "remove", "before": before[key]})
            else:
                _walk(before[key], after[key], sub, out)
        for key in after:
            if key not in before:
                out.append({"path": _key_path(path, key), "op": "add", "after": after[key]})
        return
    if isinstance(before, list | tuple) and isinstance(after, list | tuple):
        common = min(len(before), len(after))
        for index in range(common):
            _walk(before[index], after[index], f"{path}[{index}]", out)
        for index in range(common, len(before)):
            out.append({"path": f"{path}[{index}]", "op": "remove", "before": before[index]})
        for index in range(common, len(after)):
            out.append({"path": f"{path}[{index}]", "op": "add", "after": after[index]})
        return
    if type(before) is not type(after) or before != after:
        out.append({"path": path, "op": "change", "before": before, "after": after})
