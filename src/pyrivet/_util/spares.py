"""`Spares`: a bounded stack of objects given back for reuse.

For objects a hot path makes and drops once per operation while they live across an
event-loop turn (an actor's pending writes, its in-flight commit): reusing them spares
the allocation and, above all, the garbage collector's work for every container alive
at a collection. Shared by the runtimes of a process, which may run on threads of their
own: `take` is one ``pop``, atomic under the GIL. Never raises. A hot path may use
`items` directly, as `take` and `give_back` do (a call less per object).
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["Spares"]

T = TypeVar("T")


class Spares(Generic[T]):
    """At most ``limit`` spare objects; the caller resets an object before reuse."""

    __slots__ = ("items", "limit")

    def __init__(self, limit: int) -> None:
        #: The spare objects (``pop`` one to take it; append only below `limit`).
        self.items: list[T] = []
        self.limit = limit

    def take(self) -> T | None:
        """A spare object, or None if there is none."""
        try:
            return self.items.pop()
        except IndexError:
            return None

    def give_back(self, item: T) -> None:
        """Keep ``item``, referenced by nobody else, for a later `take` (unless full)."""
        if len(self.items) < self.limit:
            self.items.append(item)
