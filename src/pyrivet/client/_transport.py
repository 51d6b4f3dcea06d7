"""The transport seam of the client: how a `Client` reaches actors.

`Client` works over any `Transport`: the in-process one a `Runtime` provides
(``runtime.client_transport()``) and, with the server, HTTP/WebSocket. Transports
speak in plain Python values; copying or encoding them is the transport's job. Errors
reach the client as `pyrivet.errors.ActorError` subclasses.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .._protocol.listing import ActorInfo
from .._protocol.query import ActorQuery

__all__ = ["ConnectionListener", "Transport", "TransportConnection", "TransportSource"]


class ConnectionListener(Protocol):
    """Receives what arrives on a connection. Called on the event loop; must not block."""

    def on_event(self, event: str, args: list[Any]) -> None: ...

    def on_close(self, reason: str | None) -> None: ...


class TransportConnection(Protocol):
    """One open connection to an actor."""

    @property
    def actor_id(self) -> str: ...

    @property
    def connection_id(self) -> str: ...

    async def call(self, name: str, args: list[Any]) -> Any:
        """Run an action over this connection."""
        ...

    def subscribe(self, event: str) -> None: ...

    def unsubscribe(self, event: str) -> None: ...

    async def close(self) -> None: ...


class Transport(Protocol):
    """What a `Client` needs from a way of reaching actors."""

    async def resolve(self, query: ActorQuery) -> str:
        """The actor id for ``query`` (creating the actor if the query says so)."""
        ...

    async def call(
        self, query: ActorQuery, actor_id: str | None, name: str, args: list[Any], params: Any
    ) -> tuple[str, Any]:
        """Run action ``name``; resolves ``query`` first when ``actor_id`` is None.

        Returns:
            (the actor id the call went to, the action's result)
        """
        ...

    async def connect(
        self,
        actor_id: str,
        params: Any,
        subscriptions: set[str],
        listener: ConnectionListener,
    ) -> TransportConnection:
        """Open a connection already subscribed to ``subscriptions``."""
        ...

    async def send(
        self,
        query: ActorQuery,
        actor_id: str | None,
        name: str,
        body: Any,
        wait: bool,
        timeout: float | None,
    ) -> tuple[str, str, Any]:
        """Send ``body`` to queue ``name``; resolves ``query`` first when ``actor_id``
        is None. ``timeout`` (seconds) bounds a ``wait`` for the completion.

        Returns:
            (the actor id, "completed" or "timedOut", the completion response or None)
        """
        ...

    async def list_actors(
        self, name: str | None, cursor: str | None, limit: int
    ) -> tuple[list[ActorInfo], str | None]:
        """A page of live actors (of type ``name`` if given) in creation order, from
        after ``cursor``; returns the page and the next page's cursor (None: last).

        Raises:
            ActorError: a malformed cursor or limit (``actor/invalid_request``).
        """
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class TransportSource(Protocol):
    """Something that can hand out a transport, e.g. a running `pyrivet.Runtime`."""

    def client_transport(self) -> Transport: ...
