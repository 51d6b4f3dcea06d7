"""Actor keys as the engine stores them: one string, RivetKit's serialization.

The parts are joined with ``/``; inside a part ``\\`` and ``/`` are escaped with a
backslash, an empty part is ``\\0``, and the empty key is ``/`` alone. The other
direction is `pyrivet.storage._base.serialize_key`.
"""

from __future__ import annotations

__all__ = ["parse_actor_key"]

_EMPTY = "/"


def parse_actor_key(text: str | None) -> tuple[str, ...]:
    """The key parts of the engine's string (None and ``/`` are the empty key).

    A trailing lone backslash is kept as a literal backslash, as RivetKit does.
    """
    if text is None or text == _EMPTY:
        return ()
    parts: list[str] = []
    current: list[str] = []
    escaping = empty_marker = False
    for char in text:
        if escaping:
            if char == "0":
                empty_marker = True
            else:
                current.append(char)
            escaping = False
        elif char == "\\":
            escaping = True
        elif char == "/":
            parts.append("" if empty_marker else "".join(current))
            current, empty_marker = [], False
        else:
            current.append(char)
    if escaping:
        parts.append("".join(current) + "\\")
    elif empty_marker:
        parts.append("")
    elif current or parts:
        parts.append("".join(current))
    return tuple(parts)
