"""Listing actors page by page: `ActorInfo`, `ActorPage` and the page cursor.

Shared by the management API (``GET /actors?name=…&limit=…&cursor=…``), the network
and in-process transports, and ``pyrivet inspect``. Actors are listed in creation
order; a cursor names the last actor of a page as ``{created_at_ms}:{actor_id}`` and is
opaque to callers (pass it back as is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "ActorInfo",
    "ActorPage",
    "decode_cursor",
    "encode_cursor",
]

#: Actors per page when the caller does not say.
DEFAULT_PAGE: Final = 100
#: The largest page the management API serves.
MAX_PAGE: Final = 1000


@dataclass(frozen=True, slots=True)
class ActorInfo:
    """One live actor as a listing reports it.

    Attributes:
        actor_id: its id.
        name: its type.
        key: its key.
        created_at: creation time, epoch seconds.
        awake: whether it is in memory now (None when the lister cannot tell).
    """

    actor_id: str
    name: str
    key: tuple[str, ...]
    created_at: float
    awake: bool | None = None


@dataclass(frozen=True, slots=True)
class ActorPage:
    """A page of actors and the cursor of the next page (None after the last one)."""

    actors: list[ActorInfo]
    cursor: str | None


def encode_cursor(created_at_ms: int, actor_id: str) -> str:
    """The cursor after the actor created at ``created_at_ms`` with id ``actor_id``."""
    return f"{created_at_ms}:{actor_id}"


def decode_cursor(cursor: str) -> tuple[int, str]:
    """``(created_at_ms, actor_id)`` from a cursor.

    Raises:
        ValueError: not a cursor this module made (the message says so).
    """
    ms, sep, actor_id = cursor.partition(":")
    if not sep or not actor_id or not ms.isdigit():
        raise ValueError(f"{cursor!r} is not a listing cursor; pass back the cursor of a page")
    return int(ms), actor_id
