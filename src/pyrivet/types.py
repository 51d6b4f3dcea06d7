"""Public type aliases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeAlias

__all__ = ["ActorKey", "Durability", "KeyLike"]

#: How an actor is addressed within its name: a tuple of strings; () is the singleton.
ActorKey: TypeAlias = tuple[str, ...]

#: What callers may pass as a key: a string is a one-part key, None is the empty key.
KeyLike: TypeAlias = str | Sequence[str] | None

#: "strict": a reply is released only after the change it reports is durable.
#: "relaxed": state is saved at most every ``state_save_interval`` (RivetKit behaviour).
Durability: TypeAlias = Literal["strict", "relaxed"]
