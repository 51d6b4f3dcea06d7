"""Optional transport capabilities, beyond the `Transport` Protocol every transport has.

A handle checks for them with ``isinstance`` and uses them when present:

* `QueryConnectTransport`: open a connection from the handle's query rather than from a
  pre-resolved actor id, so a reconnect can reach a new actor when the old one was
  destroyed (the network transport: query-gateway WebSocket, as RivetKit 2.3.19 does).
* `RawTransport`: raw HTTP (``…/request/…``) and raw WebSocket (``…/websocket/…``) to the
  actor's ``on_request`` / ``on_websocket`` hooks.

It also holds the values those return, `RawResponse` and the `RawWebSocket` Protocol.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .._protocol.query import ActorQuery

if TYPE_CHECKING:
    from types import TracebackType

    from ._transport import ConnectionListener, TransportConnection

__all__ = [
    "QueryConnectTransport",
    "RawResponse",
    "RawTransport",
    "RawWebSocket",
    "WebSocketOpening",
]


@dataclass(frozen=True)
class RawResponse:
    """What an actor's ``on_request`` answered, verbatim.

    Attributes:
        status: the HTTP status code.
        headers: response headers, names lower-cased (repeated headers joined by ``,``).
        content: the body bytes.
    """

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            ValueError: the body is not JSON.
        """
        return json.loads(self.content)


class RawWebSocket(Protocol):
    """A raw WebSocket to an actor's ``on_websocket``; frames are opaque both ways.

    ```python
    async with room.websocket("/chat") as ws:     # or: ws = await room.websocket("/chat")
        await ws.send("hello")
        print(await ws.recv())
    ```
    """

    @property
    def subprotocol(self) -> str | None: ...

    @property
    def close_code(self) -> int | None: ...

    @property
    def close_reason(self) -> str | None: ...

    async def send(self, data: str | bytes) -> None:
        """Send a text (str) or binary (bytes) frame.

        Raises:
            ConnectionClosedError: the socket is closed.
        """
        ...

    async def recv(self) -> str | bytes:
        """The next frame.

        Raises:
            ConnectionClosedError: the socket closed normally.
            ActorError: it closed with a ``group.code`` reason (e.g. the actor refused
                the connection); the matching subclass is raised.
        """
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...

    def __aiter__(self) -> RawWebSocket: ...

    async def __anext__(self) -> str | bytes: ...

    async def __aenter__(self) -> RawWebSocket: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class WebSocketOpening:
    """What `ActorHandle.websocket` returns: await it for the socket, or use it in
    ``async with`` (the socket is closed at the end of the block)."""

    def __init__(self, open_socket: Callable[[], Awaitable[RawWebSocket]]) -> None:
        self._open = open_socket
        self._socket: RawWebSocket | None = None

    def __await__(self) -> Generator[Any, None, RawWebSocket]:
        return self._open().__await__()

    async def __aenter__(self) -> RawWebSocket:
        self._socket = await self._open()
        return self._socket

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._socket is not None:
            await self._socket.close()


@runtime_checkable
class QueryConnectTransport(Protocol):
    """A transport that opens connections from a query (see the module doc)."""

    async def connect_query(
        self,
        query: ActorQuery,
        params: Any,
        subscriptions: set[str],
        listener: ConnectionListener,
    ) -> TransportConnection:
        """Open a connection to the actor ``query`` names, already subscribed to
        ``subscriptions``; raises the actor's error if it refuses the connection."""
        ...


@runtime_checkable
class RawTransport(Protocol):
    """A transport that reaches an actor's raw HTTP and WebSocket handlers."""

    async def fetch(
        self,
        query: ActorQuery,
        actor_id: str | None,
        path: str,
        *,
        method: str,
        body: bytes | str | None,
        headers: Mapping[str, str] | None,
        params: Any,
    ) -> RawResponse:
        """Send ``method path`` to the actor's ``on_request``; return its response."""
        ...

    async def websocket(
        self,
        query: ActorQuery,
        actor_id: str | None,
        path: str,
        *,
        protocols: Sequence[str],
        params: Any,
    ) -> RawWebSocket:
        """Open a WebSocket to the actor's ``on_websocket`` at ``path``."""
        ...
