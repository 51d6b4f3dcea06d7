"""Sockets handed from one process to the next: what a transport and the server agree on.

In envoy mode the Rivet Engine's gateway holds the client's WebSocket, not this
process: when the envoy restarts (or the engine starts the actor on another envoy) the
gateway keeps the socket open (it *hibernates*) and lists it in the actor's next
``StartActor``. A new process can serve that socket again only if it knows which
connection it carried and how to speak on it, so:

* the transport puts a `SocketIdentity` in the ASGI scope of each WebSocket it can
  hand over (``scope["extensions"][SOCKET_EXTENSION]``); the ``connect`` handler keeps
  it, and the runtime stores its `SocketIdentity.record` with the connection's own
  record when the actor sleeps (``hibernation.py``, the actor's final save);
* the new process reads those records back, and for each socket the gateway still
  holds it runs the ``connect`` handler on a scope marked with a `RevivedSocket`
  (``scope["extensions"][REVIVE_EXTENSION]``): the handler does not open a new
  connection (no ``on_connect``, no ``Init``: the client has had its ``Init``) but
  parks the socket for that connection, and the actor's wake attaches it as it would a
  socket parked in this process.

Both objects are called on the event loop; neither method may block.
"""

from __future__ import annotations

from typing import Final, Protocol

__all__ = ["REVIVE_EXTENSION", "SOCKET_EXTENSION", "RevivedSocket", "SocketIdentity"]

#: ``scope["extensions"]`` key of a WebSocket's `SocketIdentity`.
SOCKET_EXTENSION: Final = "pyrivet.socket"
#: ``scope["extensions"]`` key marking a socket served again by a new process.
REVIVE_EXTENSION: Final = "pyrivet.revive"


class SocketIdentity(Protocol):
    """What a new process needs to serve this socket again (opaque to the runtime)."""

    def record(self) -> bytes:
        """The socket's identity and position now (ids, message indexes, path and
        headers), encoded by the transport; stored with the connection's record."""
        ...


class RevivedSocket(Protocol):
    """A socket the gateway kept open while its actor moved here, to be re-attached."""

    #: The actor and the stored connection the socket carries.
    actor_id: str
    conn_id: str
    #: The connection negotiated numbered events (pyrivet's resume extension).
    sequenced: bool

    def parked(self, error: BaseException | None) -> None:
        """The handler parked the socket for its connection (None), or could not
        (the transport then closes it)."""
        ...
