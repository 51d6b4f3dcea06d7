"""The few ASGI pieces the server needs: typed aliases, request facts, body reading, replies.

Everything here is plain ASGI 3 (no framework). Handlers build an `HttpReply` and the
app sends it with `send_reply`; request bodies are read with `read_body`, which stops
reading as soon as a limit is passed so an oversized body is never buffered whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from urllib.parse import unquote

from ..types import ConnRequest

__all__ = [
    "Receive",
    "RequestInfo",
    "Scope",
    "Send",
    "BodyTooLarge",
    "ClientGone",
    "HttpReply",
    "read_body",
    "send_reply",
]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]


class BodyTooLarge(Exception):
    """The request body passed the limit given to `read_body`."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class ClientGone(Exception):
    """The client disconnected before its request body was read."""


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What routing needs to know about an HTTP or WebSocket request.

    ``segments`` are the percent-decoded path segments after the mount point (the
    ASGI ``root_path``), taken from the raw path so an encoded ``/`` stays inside its
    segment. ``raw_segments`` are the same segments still encoded.
    """

    method: str
    segments: tuple[str, ...]
    raw_segments: tuple[str, ...]
    query_string: str
    headers: tuple[tuple[str, str], ...]
    #: "http", "https", "ws" or "wss".
    scheme: str = "http"
    #: The path as the client sent it (mount point included, still encoded).
    full_path: str = "/"

    @classmethod
    def from_scope(cls, scope: Scope) -> RequestInfo:
        raw_path: bytes | None = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else str(scope.get("path", "/"))
        path = full_path = path.partition("?")[0]
        root = str(scope.get("root_path") or "")
        if root and path.startswith(root):
            path = path[len(root) :]
        # A trailing slash gives an empty last segment: raw handlers see it, routes don't.
        raw = tuple(path.split("/")[1:]) if path.startswith("/") else ()
        headers = tuple(
            (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", [])
        )
        return cls(
            method=str(scope.get("method", "GET")).upper(),
            segments=tuple(unquote(s) for s in raw),
            raw_segments=raw,
            query_string=bytes(scope.get("query_string", b"")).decode("latin-1"),
            headers=headers,
            scheme=str(
                scope.get("scheme") or ("ws" if scope.get("type") == "websocket" else "http")
            ),
            full_path=full_path,
        )

    def url(self) -> str:
        """The absolute URL of the request (host from the Host header)."""
        host = self.header("host") or "localhost"
        query = f"?{self.query_string}" if self.query_string else ""
        return f"{self.scheme}://{host}{self.full_path}{query}"

    def for_actor(self) -> ConnRequest:
        """The request as actor code sees it (``c.request``)."""
        return ConnRequest.of(self.url(), self.method, self.headers)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def subprotocols(self) -> list[str]:
        """The offered WebSocket subprotocols, in order."""
        found: list[str] = []
        for key, value in self.headers:
            if key == "sec-websocket-protocol":
                found.extend(p.strip() for p in value.split(",") if p.strip())
        return found


@dataclass(slots=True)
class HttpReply:
    """A complete HTTP response: status, body and headers (lower-case names)."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, status: int, body: bytes, content_type: str) -> HttpReply:
        return cls(status, body, [("content-type", content_type)])

    def add_headers(self, headers: Iterable[tuple[str, str]]) -> None:
        present = {name for name, _ in self.headers}
        self.headers.extend((k, v) for k, v in headers if k not in present)


async def read_body(receive: Receive, limit: int) -> bytes:
    """Read the whole request body (chunked or not).

    Raises:
        BodyTooLarge: more than ``limit`` bytes arrived; reading stops there.
        ClientGone: the client disconnected first.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_reply(send: Send, reply: HttpReply, *, head: bool = False) -> None:
    """Send ``reply`` (with ``content-length``; no body for a HEAD request)."""
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
    headers.append((b"content-length", str(len(reply.body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else reply.body})
