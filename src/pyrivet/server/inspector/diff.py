"""The inspector's diff of two states: `pyrivet._runtime.state_diff.diff_states` (the
one the ``pyrivet inspect diff`` command uses), written for reading.

Each change is ``{path, op, before?, after?}``: ``op`` is ``add``, ``remove`` or
``change``; ``path`` is written as code would reach the value (``items[2].name``; ``""``
is the whole value). Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Any

from ..._runtime.state_diff import diff_states

__all__ = ["diff", "path_text"]


def path_text(path: list[Any]) -> str:
    """``["items", 2, "name"]`` -> ``items[2].name`` (keys that are not identifiers in
    brackets, quoted)."""
    text = ""
    for part in path:
        if isinstance(part, str) and part.isidentifier():
            text = f"{text}.{part}" if text else part
        elif isinstance(part, int) and not isinstance(part, bool):
            text = f"{text}[{part}]"
        else:
            text = f"{text}[{part!r}]"
    return text


def diff(before: Any, after: Any) -> list[dict[str, Any]]:
    """The changes that turn ``before`` into ``after`` (empty when they are equal)."""
    out: list[dict[str, Any]] = []
    for change in diff_states(before, after):
        path, op = path_text(change["path"]), change["op"]
        if op == "add":
            out.append({"path": path, "op": "add", "after": change["value"]})
        elif op == "remove":
            out.append({"path": path, "op": "remove", "before": change["value"]})
        else:
            out.append(
                {"path": path, "op": "change", "before": change["old"], "after": change["new"]}
            )
    return out
