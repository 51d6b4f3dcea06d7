"""`Watcher`: the hook a live inspector attaches to one actor.

`ActorInstance.watcher` is None while nobody watches, so an uninspected actor pays one
``is None`` test per commit, per released event and per connection change, nothing
more (`Runtime.watch` attaches one).
"""

from __future__ import annotations

from typing import Protocol

from ..storage._base import CommitRecord
from .writes import Outgoing

__all__ = ["Watcher"]


class Watcher(Protocol):
    """A live inspector of one actor. Both methods run on the event loop, inside the
    runtime's own work (a commit's completion, a connection opening or closing): they
    must only note what changed and return at once. An exception is not caught: it
    would surface in the committer's or the connection's code, so implementations
    must not raise."""

    __slots__ = ()

    def committed(self, record: CommitRecord) -> None:
        """``record`` (one commit of the actor: state, history entry, ops) is durable."""
        ...

    def connections_changed(self) -> None:
        """A connection of the actor opened or closed."""
        ...

    def emitted(self, outgoing: Outgoing) -> None:
        """An event was released to the actor's connections: ``(target connection or
        None for a broadcast, name, encoded argument list)``."""
        ...
