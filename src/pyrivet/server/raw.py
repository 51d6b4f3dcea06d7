"""The request/response and WebSocket objects of raw ``on_request`` / ``on_websocket`` hooks.

```python
from pyrivet.server import Request, Response, WebSocket

@counter.on_request
async def on_request(c, request: Request) -> Response:
    if request.method == "POST" and request.path == "/add":
        c.state["count"] += request.json()["amount"]
    return Response.json({"count": c.state["count"]})

@counter.on_websocket
async def on_websocket(c, ws: WebSocket) -> None:
    async for message in ws:          # ends when the client closes
        await ws.send(f"echo {message}")
```

What runs where:

* ``…/gateway/{actor}/request/{path}`` (any method) calls ``on_request(c, request)``.
  ``request.path`` is the part after ``/request`` (``/add``), ``request.query_string``
  the caller's own query (gateway ``rvt-*`` parameters removed). The body is read
  before the hook runs (at most ``max_raw_request_size`` bytes, else 400
  ``message/incoming_too_long``). The hook must return a `Response`, sent verbatim;
  anything else is a 500. It runs with a transient connection (``c.conn``;
  ``on_before_connect`` / ``on_connect`` / ``on_disconnect`` run around it, with params
  from ``x-rivet-conn-params``) and within the actor's ``action_timeout``. Its state
  changes are committed like an action's: the response leaves once they are durable.
* ``…/gateway/{actor}/websocket/{path}`` calls ``on_websocket(c, ws)`` once the socket
  is open, with ``ws.request`` describing the upgrade request. The hook owns the socket
  for its whole life: the socket closes (1000) when the hook returns, or with 1011 and
  reason ``group.code`` when it raises. When the client closes, ``receive()`` raises
  `WebSocketClosed` (``async for`` ends) and the hook should return; a hook blocked on
  something else keeps its connection, and so the actor, until it returns. The
  connection is in ``c.conns`` while open and keeps the actor awake; when the actor
  goes to sleep or is destroyed the socket is closed and ``receive()`` raises
  `WebSocketClosed`. With ``ActorOptions(can_hibernate_websocket=True)`` the socket
  instead survives the sleep: a hook waiting in ``receive()`` does not keep the actor
  awake; when the actor sleeps ``receive()`` raises `WebSocketClosed` (``async for``
  ends) and the hook should return; the socket stays open, and the client's next
  message wakes the actor and calls the hook again with ``ws.resumed`` true (keep
  per-socket data in ``c.conn.state``, which is saved with the actor). Every ``send``
  first commits the actor's pending changes (strict
  durability: a frame leaves only once the change it may report is durable). Frames
  are opaque; events (``c.broadcast``) do not reach raw sockets.

A hook that raises `pyrivet.UserError` sends that error to the client (as the JSON
error body of RivetKit's protocol for HTTP, as the close reason for a WebSocket); any
other exception is logged and the client sees ``core/internal_error``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs

import msgspec

from ..errors import ActorError

__all__ = ["Headers", "Request", "Response", "WebSocket", "WebSocketClosed"]


class Headers(Mapping[str, str]):
    """Case-insensitive, possibly repeated HTTP headers; indexing gives the first value."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = tuple((k.lower(), v) for k, v in items)

    def __getitem__(self, name: str) -> str:
        wanted = name.lower()
        for key, value in self._items:
            if key == wanted:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for key, _ in self._items:
            seen.setdefault(key, None)
        return iter(seen)

    def __len__(self) -> int:
        return len({key for key, _ in self._items})

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name``, in order."""
        wanted = name.lower()
        return [value for key, value in self._items if key == wanted]

    def items_list(self) -> list[tuple[str, str]]:
        """All (name, value) pairs, repeats included."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({list(self._items)!r})"


class Request:
    """An HTTP request to a raw handler (or the upgrade request of a raw WebSocket)."""

    __slots__ = ("body", "headers", "method", "path", "query_string", "raw_path")

    def __init__(
        self,
        method: str,
        path: str,
        *,
        raw_path: str | None = None,
        query_string: str = "",
        headers: Headers | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> None:
        self.method = method
        #: The path after ``/request`` (or ``/websocket``), decoded, starting with ``/``.
        self.path = path
        #: The same path, still percent-encoded.
        self.raw_path = raw_path if raw_path is not None else path
        #: The caller's query string, still encoded, without ``rvt-*`` parameters.
        self.query_string = query_string
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = body

    @property
    def url(self) -> str:
        """``raw_path`` plus ``?query`` when there is one."""
        return f"{self.raw_path}?{self.query_string}" if self.query_string else self.raw_path

    @property
    def query(self) -> dict[str, list[str]]:
        """The query parameters, decoded (every value of each name)."""
        return parse_qs(self.query_string, keep_blank_values=True)

    def text(self, encoding: str = "utf-8") -> str:
        """The body as text (undecodable bytes are replaced)."""
        return self.body.decode(encoding, "replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            ActorError: ``actor/invalid_request`` (HTTP 400) if it is not valid JSON.
        """
        try:
            return msgspec.json.decode(self.body)
        except msgspec.DecodeError as exc:
            raise ActorError(
                f"the request body is not valid JSON: {exc}", code="invalid_request"
            ) from None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"


class Response:
    """What ``on_request`` returns: sent to the client verbatim.

    ```python
    Response("created", status=201, headers={"x-id": "7"})
    Response.json({"ok": True})
    ```

    ``content-length`` and ``transfer-encoding`` are set by the server; a handler's own
    values for them are dropped.

    Raises:
        ValueError: the status is not between 100 and 599, or a header is not ASCII.
        TypeError: the body is not bytes or str.
    """

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        body: bytes | str = b"",
        *,
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content_type: str | None = None,
    ) -> None:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError(f"Response status must be an int from 100 to 599, got {status!r}")
        if isinstance(body, str):
            body_bytes = body.encode()
            content_type = content_type or "text/plain; charset=utf-8"
        elif isinstance(body, bytes | bytearray | memoryview):
            body_bytes = bytes(body)
        else:
            raise TypeError(f"Response body must be bytes or str, got {type(body).__name__}")
        self.status = status
        self.body = body_bytes
        pairs = list(headers.items() if isinstance(headers, Mapping) else (headers or ()))
        self.headers: list[tuple[str, str]] = [(str(k).lower(), str(v)) for k, v in pairs]
        for name, value in self.headers:
            if not (name + value).isascii() or "\n" in name + value or "\r" in name + value:
                raise ValueError(
                    f"Response header {name!r} must be ASCII without line breaks; "
                    "percent-encode other characters"
                )
        if content_type and not any(k == "content-type" for k, _ in self.headers):
            self.headers.append(("content-type", content_type))

    @classmethod
    def json(
        cls,
        value: Any,
        *,
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> Response:
        """A JSON response (``application/json``)."""
        return cls(
            msgspec.json.encode(value),
            status=status,
            headers=headers,
            content_type="application/json",
        )

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


class WebSocketClosed(ActorError):
    """Raised by `WebSocket.receive` / `WebSocket.send` once the socket is closed.

    An ``on_websocket`` hook may let it propagate: it ends the hook quietly.
    """

    default_group = "connection"
    default_code = "closed"


#: What the server's pump puts in the inbox when the client is gone.
CLOSED: Any = object()
#: Put in the inbox to wake a `receive` when the actor goes to sleep.
WAKE: Any = object()


class WebSocket:
    """A raw WebSocket as ``on_websocket`` sees it. Frames are ``str`` (text) or ``bytes``.

    The server builds it; hooks only use the methods below. Methods may be called from
    any task of the actor; sends are serialised.
    """

    __slots__ = (
        "_close",
        "_closed",
        "_hibernated",
        "_inbox",
        "_lock",
        "_send",
        "_waiting",
        "close_code",
        "request",
        "resumed",
    )

    def __init__(
        self,
        request: Request,
        inbox: asyncio.Queue[Any],
        send: Callable[[str | bytes], Awaitable[None]],
        close: Callable[[int, str], Awaitable[None]],
        *,
        resumed: bool = False,
        waiting: Callable[[bool], None] | None = None,
    ) -> None:
        #: The upgrade request: path after ``/websocket``, query, headers.
        self.request = request
        self._inbox = inbox
        self._send = send
        self._close = close
        self._lock = asyncio.Lock()
        self._closed = False
        #: The close code once closed (by either side), else None.
        self.close_code: int | None = None
        #: True when the hook runs again after its actor woke (hibernatable sockets,
        #: ``ActorOptions(can_hibernate_websocket=True)``): the socket was already open.
        self.resumed = resumed
        self._hibernated = False
        self._waiting = waiting

    def _hibernate(self) -> None:
        """The actor sleeps: `receive` raises from now on; the socket stays open."""
        if not self._hibernated:
            self._hibernated = True
            self._inbox.put_nowait(WAKE)

    @property
    def closed(self) -> bool:
        """Whether the socket is closed (by the client, the hook, or the actor stopping)."""
        return self._closed

    def _mark_closed(self, code: int) -> None:
        if not self._closed:
            self._closed = True
            self.close_code = code
            self._inbox.put_nowait(CLOSED)

    async def receive(self) -> str | bytes:
        """The next frame from the client.

        Raises:
            WebSocketClosed: the socket is closed.
        """
        while True:
            if self._hibernated:
                raise WebSocketClosed("the actor is going to sleep; the WebSocket stays open")
            if self._closed and self._inbox.empty():
                raise WebSocketClosed("the WebSocket is closed")
            waiting = self._waiting if self._inbox.empty() else None
            if waiting is not None:
                waiting(True)
            try:
                item = await self._inbox.get()
            finally:
                if waiting is not None:
                    waiting(False)
            if item is CLOSED:
                self._inbox.put_nowait(CLOSED)
                raise WebSocketClosed("the WebSocket is closed")
            if item is not WAKE:
                return item  # type: ignore[no-any-return]

    async def __aiter__(self) -> AsyncIterator[str | bytes]:
        """Frames until the socket closes."""
        while True:
            try:
                yield await self.receive()
            except WebSocketClosed:
                return

    async def send(self, data: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) frame.

        Raises:
            WebSocketClosed: the socket is closed.
            TypeError: ``data`` is neither str nor bytes.
        """
        if not isinstance(data, str | bytes | bytearray | memoryview):
            raise TypeError(f"WebSocket.send takes str or bytes, got {type(data).__name__}")
        async with self._lock:
            if self._closed:
                raise WebSocketClosed("the WebSocket is closed")
            await self._send(data if isinstance(data, str) else bytes(data))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket (no-op if already closed)."""
        async with self._lock:
            if self._closed:
                return
            self._mark_closed(code)
            await self._close(code, reason)

    def __repr__(self) -> str:
        state = f"closed {self.close_code}" if self._closed else "open"
        return f"<WebSocket {self.request.url} {state}>"
