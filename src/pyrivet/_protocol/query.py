"""How a client names the actor it wants: `ActorQuery`.

Shared by the in-process and network transports; mirrors RivetKit's query kinds
(``get``, ``getOrCreate``, ``create``, ``getForId``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec

__all__ = ["ActorQuery", "QueryMode", "deserialize_key", "normalize_key"]

QueryMode = Literal["get", "get_or_create", "create", "get_for_id"]


def normalize_key(key: str | Sequence[str] | None) -> tuple[str, ...]:
    """Turn a user key into its canonical tuple: a str is a one-part key, None is ().

    Raises:
        TypeError: a key part is not a str.
    """
    if key is None:
        return ()
    if isinstance(key, str):
        return (key,)
    parts = tuple(key)
    for part in parts:
        if not isinstance(part, str):
            raise TypeError(
                f"actor key parts must be str, got {type(part).__name__} in {key!r}; "
                "convert ids with str()"
            )
    return parts


def deserialize_key(text: str) -> tuple[str, ...]:
    """Parse a serialized key; the inverse of `serialize_key` (as RivetKit parses it).

    An unknown escape ``\\x`` stands for ``x``; a trailing lone ``\\`` is kept.
    """
    if text == "/":
        return ()
    parts: list[str] = []
    current: list[str] = []
    escaping = False
    for char in text:
        if escaping:
            escaping = False
            if char != "0":
                current.append(char)
        elif char == "\\":
            escaping = True
        elif char == "/":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaping:
        current.append("\\")
    parts.append("".join(current))
    return tuple(parts)


class ActorQuery(msgspec.Struct, frozen=True):
    """Which actor a handle addresses."""

    mode: QueryMode
    name: str
    key: tuple[str, ...] = ()
    #: Input for a newly created actor (get_or_create / create).
    input: Any = None
    #: For get_for_id.
    actor_id: str | None = None
