"""Public type aliases."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, TypeAlias

__all__ = ["ActorKey", "Durability", "KeyLike", "ConnRequest"]

#: How an actor is addressed within its name: a tuple of strings; () is the singleton.
ActorKey: TypeAlias = tuple[str, ...]

#: What callers may pass as a key: a string is a one-part key, None is the empty key.
KeyLike: TypeAlias = str | Sequence[str] | None

#: "strict": a reply is released only after the change it reports is durable.
#: "relaxed": state is saved at most every ``state_save_interval`` (RivetKit behaviour).
Durability: TypeAlias = Literal["strict", "relaxed"]


@dataclass(frozen=True, slots=True)
class ConnRequest:
    """The HTTP request that opened a connection, as ``c.request`` shows it (read only).

    ``headers`` keys are lower-case; a header sent several times is joined with ", ".
    In-process calls have no request (``c.request`` is None).
    """

    url: str
    method: str
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, url: str, method: str, headers: Iterable[tuple[str, str]]) -> ConnRequest:
        """A record of ``(name, value)`` header pairs (names lower-cased, repeats joined)."""
        lowered: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            lowered[key] = f"{lowered[key]}, {value}" if key in lowered else value
        return cls(url, method.upper(), MappingProxyType(lowered))
