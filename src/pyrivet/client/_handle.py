"""`ActorHandle`: a lazy reference to one actor, for stateless action calls.

```python
room = client.get_or_create("counter", ["room-1"])
await room.increment(5)              # by name
await room.call(increment, 5)        # typed by function reference: returns int
async with room.connect() as conn:   # a connection for events
    ...
```

A handle does no I/O until first used. Handles made by key remember the actor id they
resolved to; if that actor is destroyed, the next call re-resolves the key once (a
get_or_create handle then reaches a fresh actor), as RivetKit's handles do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, overload

from .._protocol.query import ActorQuery
from ..errors import ActorNotFoundError
from ._calls import ActionCalls
from ._connection import ActorConnection
from ._extensions import RawResponse, RawTransport, RawWebSocket, WebSocketOpening

if TYPE_CHECKING:
    from ._transport import Transport

__all__ = ["ActorHandle", "SendResult"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of ``handle.send(..., wait=True)``."""

    #: "completed" (a receiver called ``complete``) or "timedOut" (the message stays
    #: queued).
    status: str
    #: What the receiver passed to ``complete(response)``.
    response: Any = None

    @property
    def timed_out(self) -> bool:
        return self.status == "timedOut"


class ActorHandle(ActionCalls):
    """A reference to one actor (by key or by id); cheap to create, lazy."""

    def __init__(self, transport: Transport, query: ActorQuery, params: Any = None) -> None:
        self._transport = transport
        self._query = query
        self._params = params
        self._actor_id: str | None = query.actor_id if query.mode == "get_for_id" else None
        # RivetKit serializes the sends of one handle, keeping the caller's order.
        self._send_lock: asyncio.Lock | None = None

    @property
    def query(self) -> ActorQuery:
        return self._query

    async def resolve(self) -> str:
        """The actor's id (creating the actor for get_or_create handles)."""
        if self._actor_id is None:
            self._actor_id = await self._transport.resolve(self._query)
        return self._actor_id

    async def action(self, name: str, *args: Any) -> Any:
        """Call action ``name`` with positional ``args`` and return its result."""
        arg_list = list(args)
        stale_retry = self._query.mode in ("get", "get_or_create")
        while True:
            try:
                actor_id, result = await self._transport.call(
                    self._query, self._actor_id, name, arg_list, self._params
                )
            except ActorNotFoundError:
                if not self._forget_stale(stale_retry):
                    raise
                stale_retry = False
                continue
            if self._query.mode != "get_for_id" and actor_id:
                self._actor_id = actor_id
            return result

    @overload
    async def send(self, name: str, body: Any = None) -> None: ...
    @overload
    async def send(
        self, name: str, body: Any = None, *, wait: Literal[True], timeout: float | None = None
    ) -> SendResult: ...
    @overload
    async def send(
        self, name: str, body: Any = None, *, wait: bool, timeout: float | None = None
    ) -> SendResult | None: ...
    async def send(
        self, name: str, body: Any = None, *, wait: bool = False, timeout: float | None = None
    ) -> SendResult | None:
        """Send ``body`` to the actor's queue ``name``; returns once it is durably queued.

        With ``wait=True``, waits (at most ``timeout`` seconds) until a receiver
        completes the message and returns its `SendResult`; if the time runs out the
        status is "timedOut" and the message stays queued. Sends of one handle go out
        one at a time, in order (a waiting send holds the handle until it returns).

        Raises:
            QueueError: the queue is full, the message too large or the body invalid.
            ForbiddenError: the queue's ``can_publish`` refused.
        """
        if self._send_lock is None:
            self._send_lock = asyncio.Lock()
        async with self._send_lock:
            stale_retry = self._query.mode in ("get", "get_or_create")
            while True:
                try:
                    actor_id, status, response = await self._transport.send(
                        self._query, self._actor_id, name, body, wait, timeout
                    )
                except ActorNotFoundError:
                    if not self._forget_stale(stale_retry):
                        raise
                    stale_retry = False
                    continue
                if self._query.mode != "get_for_id" and actor_id:
                    self._actor_id = actor_id
                return SendResult(status, response) if wait else None

    def _forget_stale(self, may_retry: bool) -> bool:
        """After ``actor/not_found``: whether to retry (then the id is forgotten, so the
        key resolves again). Only once, and only for handles made by key.

        A get_or_create key may have resolved (inside the transport) to an actor being
        destroyed right then: it is retried even on a first call.
        """
        if not may_retry or (self._actor_id is None and self._query.mode == "get"):
            return False
        self._actor_id = None
        return True

    def _raw_transport(self) -> RawTransport:
        if not isinstance(self._transport, RawTransport):
            raise TypeError(
                "raw fetch/websocket need a transport that supports them, "
                "such as the network client (Client(url))"
            )
        return self._transport

    async def fetch(
        self,
        path: str = "/",
        *,
        method: str = "GET",
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse:
        """Send a raw HTTP request to the actor's ``on_request`` hook.

        ```python
        response = await room.fetch("/hello?x=1", method="POST", body=b"hi")
        print(response.status, response.text)
        ```

        The actor sees ``path`` (with its query); the response is returned as it is,
        whatever its status. The handle's connection params travel in the
        ``x-rivet-conn-params`` header.

        Raises:
            ActorError: the request could not reach the actor (e.g. `ActorNotFoundError`).
            TypeError: the transport has no raw HTTP (the in-process client).
        """
        return await self._raw_transport().fetch(
            self._query,
            self._actor_id,
            path,
            method=method,
            body=body,
            headers=headers,
            params=self._params,
        )

    def websocket(self, path: str = "/", *, protocols: Sequence[str] = ()) -> WebSocketOpening:
        """Open a raw WebSocket to the actor's ``on_websocket`` hook.

        ```python
        async with room.websocket("/chat") as ws:    # or: ws = await room.websocket(...)
            await ws.send("hello")
            print(await ws.recv())
        ```

        Opening raises `ActorError` if the socket cannot be opened, and `TypeError` if
        the transport has no raw WebSocket (the in-process client).
        """

        async def open_socket() -> RawWebSocket:
            return await self._raw_transport().websocket(
                self._query, self._actor_id, path, protocols=protocols, params=self._params
            )

        return WebSocketOpening(open_socket)

    def connect(self, *, params: Any = None) -> ActorConnection:
        """A connection to this actor; open it with ``async with`` (or `open()`)."""
        return ActorConnection(
            self._transport, self, params if params is not None else self._params
        )

    def __repr__(self) -> str:
        q = self._query
        return f"<ActorHandle {q.mode} {q.name!r} key={list(q.key)!r} id={self._actor_id}>"
