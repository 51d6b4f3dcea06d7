"""`Parking`: the open sockets of sleeping actors' hibernated connections.

The runtime keeps one (``Services.parking``); ``hibernation.py`` parks a connection's
socket when its actor sleeps and hands it back when the actor wakes. Runs on the
runtime's event loop.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Parking"]


class Parking:
    """Open sockets of sleeping actors' connections, kept by the server's runtime.

    One small dict entry per parked socket; the actor holds nothing for it.
    """

    __slots__ = ("gone", "parked")

    def __init__(self) -> None:
        self.parked: dict[str, dict[str, Any]] = {}
        #: Connections whose client left while their actor slept.
        self.gone: dict[str, set[str]] = {}

    def park(self, actor_id: str, conn_id: str, sink: Any) -> None:
        self.parked.setdefault(actor_id, {})[conn_id] = sink

    def unpark(self, actor_id: str, conn_id: str) -> Any | None:
        sinks = self.parked.get(actor_id)
        if sinks is None:
            return None
        sink = sinks.pop(conn_id, None)
        if not sinks:
            del self.parked[actor_id]
        return sink

    def left(self, actor_id: str, conn_id: str, sink: Any) -> None:
        """The client of a parked socket is gone: forget the socket (the actor is not
        woken); ``on_disconnect`` runs when the actor next wakes."""
        sinks = self.parked.get(actor_id)
        if sinks is None or sinks.get(conn_id) is not sink:
            return
        self.unpark(actor_id, conn_id)
        self.gone.setdefault(actor_id, set()).add(conn_id)

    def count(self) -> int:
        """Parked sockets, over all actors."""
        return sum(len(s) for s in self.parked.values())
