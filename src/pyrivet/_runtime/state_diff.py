"""`diff_states`: what changed between two states of an actor, as a list of changes.

Used by ``pyrivet inspect diff`` (and meant for the inspector's diff view). States are
compared as plain data (dicts, lists, scalars; a dataclass or model is compared through
its fields as stored). Each change is a dict:

- ``{"op": "add", "path": [...], "value": new}`` for a key present only in the newer;
- ``{"op": "remove", "path": [...], "value": old}`` for a key present only in the older;
- ``{"op": "replace", "path": [...], "old": old, "new": new}`` for a changed value.

``path`` lists the dict keys and list indexes from the root; a list whose length
changed is compared item by item up to the shorter length, then the extra items are
added or removed. Equal states give ``[]``. Pure function, no I/O.
"""

from __future__ import annotations

from typing import Any

__all__ = ["diff_states"]


def diff_states(old: Any, new: Any) -> list[dict[str, Any]]:
    """The changes that turn ``old`` into ``new`` (see the module docstring)."""
    changes: list[dict[str, Any]] = []
    _diff(old, new, [], changes)
    return changes


def _diff(old: Any, new: Any, path: list[Any], out: list[dict[str, Any]]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            if key not in new:
                out.append({"op": "remove", "path": [*path, key], "value": old[key]})
            else:
                _diff(old[key], new[key], [*path, key], out)
        for key in new:
            if key not in old:
                out.append({"op": "add", "path": [*path, key], "value": new[key]})
        return
    if isinstance(old, list) and isinstance(new, list):
        for index in range(min(len(old), len(new))):
            _diff(old[index], new[index], [*path, index], out)
        for index in range(len(new), len(old)):
            out.append({"op": "remove", "path": [*path, index], "value": old[index]})
        for index in range(len(old), len(new)):
            out.append({"op": "add", "path": [*path, index], "value": new[index]})
        return
    if type(old) is not type(new) or old != new:
        out.append({"op": "replace", "path": path, "old": old, "new": new})
