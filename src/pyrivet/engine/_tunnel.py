"""Gateway traffic tunnelled by the engine, served by an ASGI app: `AsgiTunnel`.

The engine's gateway forwards each client HTTP request and WebSocket to the envoy as
tunnel messages keyed by ``gatewayId + requestId``. `AsgiTunnel` turns each into one
ASGI scope on the app that serves standalone mode (`pyrivet.server.create_app`), so
the same route handlers answer. The actor is named as the engine's gateway names it
to an actor process: HTTP headers ``x-rivet-target: actor`` and ``x-rivet-actor: ID``,
WebSocket subprotocols ``rivet_target.actor`` and ``rivet_actor.ID``; the path is the
actor's (``/action/x``, ``/connect``, ``/request/...``).

Replies go back as ``ToRivetTunnelMessage`` with the stream's own message index,
starting at 0 and wrapping at 2**16. HTTP: a complete body goes in ``ResponseStart``;
a streamed ASGI body (``more_body``) as ``ResponseChunk`` messages when the gateway
accepts a stream. WebSocket: ``websocket.accept`` sends ``WebSocketOpen``, each
``websocket.send`` a ``WebSocketMessage``, ``websocket.close`` a ``WebSocketClose``.

Hibernation: every WebSocket is opened with ``can_hibernate: true``, so the gateway
keeps the client's socket open when the actor sleeps (the runtime closes, before the
actor stops, each connection it cannot keep across the sleep: those closes are real
ones, ``hibernate: false``). The stream stays here while the actor sleeps, its
connection parked by the runtime (``_runtime/hibernation.py``). Messages from the
gateway carry its own index per socket, counted from the open (the open is index 0):
one at or below the last one taken is a duplicate the gateway resent after a wake and
is dropped; one past the next is a gap, and the socket closes with 1008
``ws.message_index_skip``. Messages the app read are acknowledged
(``WebSocketMessageAck`` with the latest index, once the app has read all it was given
or every 64 messages): the gateway wakes the actor at once for messages it holds
unacknowledged, and drops the socket if they stay so. From the envoy's stop of a
sleeping actor (`sleeping`) until its next start, messages for its sockets are held
(the gateway forwards them as soon as it asked the engine for the wake; at most 1024
per socket, more close it with 1011), so the parked connection sees them only once
the actor runs here again. When the engine starts the actor
again, `restore` re-announces (``WebSocketOpen``) each socket of its
``hibernating_requests`` still held here; one that is not is closed with 1000
``ws.meta_not_found_during_restore`` and its client reconnects.

Across processes: each WebSocket's scope carries a `handoff.SocketIdentity`
(``scope["extensions"]``) whose record (`SocketRecord`: ids, the last index read,
the next index sent, path, headers) the runtime saves with the socket's connection
when the actor sleeps. Closing the tunnel leaves the sockets of actors that slept
through the engine open (the gateway hibernates them) instead of closing them. A
later process the engine starts the actor on calls `revive` for each listed socket it
finds a record for, before the actor wakes: a stream with the stored indexes whose
``connect`` handler parks the socket for the stored connection (no new handshake);
`restore` then announces it and acknowledges what the previous process read.

Each stream runs in a task of the tunnel's `TaskSupervisor`. If the app raises before
it answered, the client gets a 500 (HTTP) or a 1011 close (WebSocket). A message for an
unknown stream is logged and dropped. `AsgiTunnel.aclose` cancels every stream.

The engine announces the largest payload it accepts from the envoy
(``max_response_payload_size`` in ``Init``; ``max_payload`` returns it). A larger
response body is not sent: the client gets a 500 ``message/outgoing_too_long``, or for
a WebSocket message a 1009 close; a larger streamed chunk is split.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final
from urllib.parse import quote, unquote

from .._runtime.handoff import REVIVE_EXTENSION, SOCKET_EXTENSION, RevivedSocket, SocketIdentity
from .._util.tasks import TaskSupervisor
from ._schema import Tagged
from ._socket_record import SocketRecord, encode_socket

__all__ = ["AsgiApp", "AsgiTunnel"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
AsgiApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]
SendTunnel = Callable[[dict[str, Any]], Awaitable[bool]]
MaxPayload = Callable[[], int | None]

#: Acknowledge at least every this many socket messages, even while more are queued.
_ACK_EVERY: Final = 64
#: Most messages held for one socket while its actor sleeps; more close it (1011).
_MAX_HELD: Final = 1024
#: Key of a queued ``websocket.receive`` carrying the gateway's index of the message.
_INDEX: Final = "pyrivet.index"
_ASGI: Final = {"version": "3.0", "spec_version": "2.3"}
_INTERNAL: Final = b'{"group":"rivetkit","code":"internal_error","message":"Internal error"}'
_GOING_AWAY: Final = (
    b'{"group":"actor","code":"stopping","message":"the envoy hosting this actor is shutting '
    b'down; retry the request"}'
)


def _too_long(size: int, limit: int) -> bytes:
    return (
        b'{"group":"message","code":"outgoing_too_long","message":"the response is '
        + str(size).encode()
        + b" bytes, above the engine's limit of "
        + str(limit).encode()
        + b' bytes","metadata":null}'
    )


@dataclass
class _Stream:
    """One tunnelled request or socket."""

    gateway_id: bytes
    request_id: bytes
    incoming: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    websocket: bool = False
    #: The actor the stream is for (as the gateway named it).
    actor_id: str = ""
    next_index: int = 0
    #: WebSocket: the gateway's index of the last message taken, the last one the app
    #: read, and the last acknowledged (never past the last read).
    received_index: int = 0
    read_index: int = 0
    acked_index: int = 0
    #: WebSocket: the actor's path and the gateway's headers (for its `SocketRecord`).
    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    #: WebSocket: served again after its actor moved here (`AsgiTunnel.revive`); the
    #: app's accept is not announced until `AsgiTunnel.restore`.
    revived: bool = False
    #: WebSocket: the close to send the gateway when the app reads the disconnect (a gap).
    pending_close: dict[str, Any] | None = None
    #: WebSocket: messages that came while the actor slept, for the app once it woke.
    held: list[Message] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    #: The gateway has its answer: the whole response, or the socket's close.
    answered: bool = False
    #: A streamed HTTP response began (its end can only be a chunk or an abort).
    response_started: bool = False
    closed: bool = False


class AsgiTunnel:
    """Serves tunnel messages with an ASGI app; `handle` is the envoy's entry point."""

    def __init__(
        self, app: AsgiApp, send: SendTunnel, max_payload: MaxPayload | None = None
    ) -> None:
        self._app = app
        self._send_tunnel = send
        self._max_payload: MaxPayload = max_payload or (lambda: None)
        self._streams: dict[bytes, _Stream] = {}
        self._tasks = TaskSupervisor("tunnel")
        #: Actors asleep since `sleeping`, until `restore`: their sockets' messages
        #: wait (actor id -> the streams holding some).
        self._asleep: dict[str, list[_Stream]] = {}

    async def aclose(self) -> None:
        """Cancel every stream and tell the gateway: a request not answered yet gets a
        503 ``actor/stopping`` (``ResponseAbort`` if its streamed response began), an
        open WebSocket a 1001 close. Best effort; a stream left unanswered was seen to
        stall the engine."""
        open_streams = list(self._streams.values())
        await self._tasks.aclose()
        self._streams.clear()
        for stream in open_streams:
            if stream.answered:
                continue
            if stream.websocket and stream.actor_id in self._asleep:
                # Its actor slept through the engine (its connection saved with the
                # socket's record): the gateway keeps the socket hibernating, and the
                # envoy the engine starts the actor on next serves it again.
                continue
            try:
                if stream.websocket:
                    close = {"code": 1001, "reason": "envoy.going_away", "hibernate": False}
                    await self._send(stream, "ToRivetWebSocketClose", close)
                elif stream.response_started:
                    reason = {"kind": "InternalError", "detail": "the envoy is shutting down"}
                    await self._send(stream, "ToRivetResponseAbort", {"reason": reason})
                else:
                    start = _start(503, {"content-type": "application/json"}, _GOING_AWAY)
                    await self._send(stream, "ToRivetResponseStart", start)
            except Exception:
                log.exception("tunnel: could not tell the gateway a stream ends")

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def handle(self, message: dict[str, Any]) -> None:
        """Take one ``ToEnvoyTunnelMessage`` (never blocks, never raises)."""
        mid = message["message_id"]
        key = mid["gateway_id"] + mid["request_id"]
        kind: Tagged = message["message_kind"]
        val = kind.val
        stream = self._streams.get(key)
        if kind.tag in ("ToEnvoyRequestStart", "ToEnvoyWebSocketOpen"):
            if stream is not None:
                log.warning("tunnel: duplicate open for a stream already open; ignored")
                return
            websocket = kind.tag == "ToEnvoyWebSocketOpen"
            stream = _Stream(
                mid["gateway_id"], mid["request_id"], websocket=websocket, actor_id=val["actor_id"]
            )
            stream.received_index = stream.read_index = mid["message_index"]
            stream.acked_index = mid["message_index"]
            self._streams[key] = stream
            if kind.tag == "ToEnvoyRequestStart":
                run = self._http(stream, val)
            else:
                run = self._websocket(stream, val)
            stream.task = self._tasks.spawn(self._own(key, stream, run), name="tunnel-stream")
            return
        if stream is None:
            log.debug("tunnel: %s for an unknown stream; dropped", kind.tag)
            return
        if kind.tag == "ToEnvoyRequestChunk":
            stream.incoming.put_nowait(
                {"type": "http.request", "body": val["body"], "more_body": not val["finish"]}
            )
        elif kind.tag == "ToEnvoyRequestAbort":
            stream.incoming.put_nowait({"type": "http.disconnect"})
            stream.closed = stream.answered = True
            if stream.task is not None:
                stream.task.cancel()
        elif kind.tag == "ToEnvoyWebSocketMessage":
            if not self._in_sequence(stream, mid["message_index"]):
                return
            data = val["data"]
            item: Message = {"type": "websocket.receive", _INDEX: mid["message_index"]}
            if val["binary"]:
                item["bytes"] = data
            else:
                item["text"] = bytes(data).decode("utf-8", errors="replace")
            self._deliver(stream, item)
        elif kind.tag == "ToEnvoyWebSocketClose":
            stream.closed = stream.answered = True
            code = val["code"] if val["code"] is not None else 1005
            self._deliver(
                stream,
                {"type": "websocket.disconnect", "code": code, "reason": val["reason"] or ""},
            )
        # RequestBodyCancel and ResponseBodyWindowUpdate need nothing: bodies arrive
        # whole or as chunks the app reads at its pace, and responses are not throttled.

    def _deliver(self, stream: _Stream, item: Message) -> None:
        """Give a socket's message to the app, or hold it while the actor sleeps."""
        holding = self._asleep.get(stream.actor_id)
        if holding is None:
            stream.incoming.put_nowait(item)
        elif len(stream.held) < _MAX_HELD or item["type"] == "websocket.disconnect":
            if not stream.held:
                holding.append(stream)
            stream.held.append(item)
        elif not stream.closed:
            log.warning("tunnel: too many messages for a sleeping actor's socket; closing it")
            stream.held.clear()
            self._fail(stream, 1011, "ws.wake_buffer_full")

    def _fail(self, stream: _Stream, code: int, reason: str) -> None:
        """Close the socket: the app reads a disconnect, the gateway gets the close."""
        stream.closed = stream.answered = True
        stream.pending_close = {"code": code, "reason": reason, "hibernate": False}
        stream.incoming.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})

    def sleeping(self, actor_id: str) -> None:
        """The actor goes to sleep: hold its sockets' messages until `restore`."""
        self._asleep.setdefault(actor_id, [])

    def _in_sequence(self, stream: _Stream, index: int) -> bool:
        """Whether the socket message with the gateway's ``index`` is the next one; a
        duplicate is dropped, a gap closes the socket (1008)."""
        if stream.closed:
            return False
        previous = stream.received_index
        if (index - previous) % 65536 == 0 or (index - previous) % 65536 >= 32768:
            log.debug("tunnel: duplicate WebSocket message %d (had %d); dropped", index, previous)
            return False
        if index != (previous + 1) % 65536:
            log.warning(
                "tunnel: WebSocket message %d after %d (messages lost); closing the socket",
                index,
                previous,
            )
            self._fail(stream, 1008, "ws.message_index_skip")
            return False
        stream.received_index = index
        return True

    def holds(self, gateway_id: bytes, request_id: bytes) -> bool:
        """Whether this tunnel serves the socket ``gateway_id + request_id``."""
        return gateway_id + request_id in self._streams

    def revive(
        self, actor_id: str, record: SocketRecord, conn_id: str, *, sequenced: bool
    ) -> asyncio.Future[None]:
        """Serve again a socket the gateway kept open while ``actor_id`` moved here,
        from its stored ``record``, for the stored connection ``conn_id``: the app
        gets a WebSocket scope marked `handoff.REVIVE_EXTENSION` and parks the socket
        for that connection before the actor wakes. The future resolves once it is
        parked, or fails with why not (the socket is then closed)."""
        revival = _Revival(actor_id, conn_id, sequenced)
        key = record.gateway_id + record.request_id
        if key in self._streams:
            revival.parked(None)  # served here already
            return revival.done
        stream = _Stream(
            record.gateway_id, record.request_id, websocket=True, actor_id=actor_id, revived=True
        )
        stream.received_index = stream.read_index = stream.acked_index = record.read_index
        stream.next_index = record.next_index
        self._streams[key] = stream
        open_ = {"actor_id": actor_id, "path": record.path, "headers": dict(record.headers)}
        run = self._websocket(stream, open_, revival)
        stream.task = self._tasks.spawn(self._own(key, stream, run), name="tunnel-stream")
        return revival.done

    async def restore(self, actor_id: str, requests: Iterable[tuple[bytes, bytes]]) -> None:
        """The engine started ``actor_id`` again with these hibernating sockets: each
        one held here is announced open again; any other is closed (module doc). Then
        the messages held for the actor's sockets while it slept go to the app."""
        for gateway_id, request_id in requests:
            stream = self._streams.get(gateway_id + request_id)
            if stream is not None and stream.websocket and not stream.answered:
                await self._send(stream, "ToRivetWebSocketOpen", {"can_hibernate": True})
                if stream.revived and stream.read_index:
                    # What the previous process read: the gateway drops those messages
                    # (an ack it already had changes nothing).
                    ack = {"index": stream.read_index}
                    await self._send(stream, "ToRivetWebSocketMessageAck", ack)
                continue
            log.info(
                "tunnel: actor %s has a hibernating WebSocket unknown here; closing it", actor_id
            )
            gone = _Stream(gateway_id, request_id, websocket=True, actor_id=actor_id)
            close = {"code": 1000, "reason": "ws.meta_not_found_during_restore", "hibernate": False}
            await self._send(gone, "ToRivetWebSocketClose", close)
        for stream in self._asleep.pop(actor_id, ()):
            held, stream.held = stream.held, []
            for item in held:
                stream.incoming.put_nowait(item)

    async def _receive_ws(self, stream: _Stream) -> Message:
        """The ASGI ``receive`` of a tunnelled WebSocket: acknowledges what was read."""
        message = await stream.incoming.get()
        index = message.pop(_INDEX, None)
        if index is not None:
            stream.read_index = index
        if stream.pending_close is not None and message["type"] == "websocket.disconnect":
            close, stream.pending_close = stream.pending_close, None
            await self._send(stream, "ToRivetWebSocketClose", close)
        elif stream.acked_index != stream.read_index and (
            stream.incoming.empty()
            or (stream.read_index - stream.acked_index) % 65536 >= _ACK_EVERY
        ):
            stream.acked_index = stream.read_index
            await self._send(stream, "ToRivetWebSocketMessageAck", {"index": stream.acked_index})
        return message

    async def _own(self, key: bytes, stream: _Stream, run: Awaitable[None]) -> None:
        try:
            await run
        finally:
            if self._streams.get(key) is stream:
                del self._streams[key]

    async def _send(self, stream: _Stream, tag: str, val: Any = None) -> None:
        index = stream.next_index
        stream.next_index = (index + 1) % 65536
        message_id = {
            "gateway_id": stream.gateway_id,
            "request_id": stream.request_id,
            "message_index": index,
        }
        await self._send_tunnel({"message_id": message_id, "message_kind": Tagged(tag, val)})

    # -- HTTP -----------------------------------------------------------------------

    async def _http(self, stream: _Stream, start: dict[str, Any]) -> None:
        headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in start["headers"].items()
        ]
        headers += [(b"x-rivet-target", b"actor"), (b"x-rivet-actor", start["actor_id"].encode())]
        scope = _scope("http", start["path"], headers)
        scope["method"] = start["method"].upper()
        if not start["stream"]:
            stream.incoming.put_nowait(
                {"type": "http.request", "body": start["body"] or b"", "more_body": False}
            )
        response = _HttpResponse(self, stream, streaming_ok=start["response_stream"])
        try:
            await self._app(scope, stream.incoming.get, response.send)
        except Exception:
            log.exception("tunnel: the app failed on %s %s", scope["method"], scope["path"])
            if not response.started:
                stream.answered = True
                await self._send(stream, "ToRivetResponseStart", _start(500, {}, _INTERNAL))
                return
        await response.finish()

    # -- WebSocket --------------------------------------------------------------------

    async def _websocket(
        self, stream: _Stream, open_: dict[str, Any], revival: _Revival | None = None
    ) -> None:
        stream.path = open_["path"]
        stream.headers = _handoff_headers(open_["headers"])
        headers = {k.lower(): v for k, v in open_["headers"].items()}
        offered = [p.strip() for p in headers.pop("sec-websocket-protocol", "").split(",")]
        offered = [p for p in offered if p]
        offered += ["rivet_target.actor", f"rivet_actor.{quote(open_['actor_id'], safe='')}"]
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        raw.append((b"sec-websocket-protocol", ", ".join(offered).encode("latin-1")))
        scope = _scope("ws", open_["path"], raw)
        scope["type"] = "websocket"
        scope["subprotocols"] = offered
        extensions: dict[str, Any] = {SOCKET_EXTENSION: _Identity(stream)}
        if revival is not None:
            extensions[REVIVE_EXTENSION] = revival
        scope["extensions"] = extensions
        stream.incoming.put_nowait({"type": "websocket.connect"})
        socket = _SocketSend(self, stream)
        try:
            await self._app(scope, partial(self._receive_ws, stream), socket.send)
        except Exception as exc:
            log.exception("tunnel: the app failed on WebSocket %s", scope["path"])
            if revival is not None:
                revival.parked(exc)
            if not socket.closed:
                await socket.send(
                    {"type": "websocket.close", "code": 1011, "reason": "internal error"}
                )
        if revival is not None:
            revival.parked(RuntimeError("the connect handler ended before it took the socket"))
        if stream.pending_close is not None:
            close, stream.pending_close = stream.pending_close, None
            await self._send(stream, "ToRivetWebSocketClose", close)
        elif not socket.closed and not stream.closed:
            await socket.send({"type": "websocket.close", "code": 1000, "reason": ""})


def _handoff_headers(headers: dict[str, str]) -> dict[str, str]:
    """What a revived socket needs of the headers it was opened with, to be stored
    with its connection: its subprotocols (the encoding), without an engine token a
    client offers there. (Its params and state are in the connection's record; no
    connection hook runs again.)"""
    for name, value in headers.items():
        if name.lower() == "sec-websocket-protocol":
            offered = [p.strip() for p in value.split(",")]
            kept = [p for p in offered if p and not p.startswith("rivet_token.")]
            return {"sec-websocket-protocol": ", ".join(kept)}
    return {}


class _Identity(SocketIdentity):
    """A tunnelled WebSocket's `handoff.SocketIdentity`: its `SocketRecord` now."""

    __slots__ = ("_stream",)

    def __init__(self, stream: _Stream) -> None:
        self._stream = stream

    def record(self) -> bytes:
        s = self._stream
        return encode_socket(
            SocketRecord(
                1, s.gateway_id, s.request_id, s.read_index, s.next_index, s.path, s.headers
            )
        )


class _Revival(RevivedSocket):
    """The `handoff.RevivedSocket` of `AsgiTunnel.revive`; ``done`` says how it went."""

    def __init__(self, actor_id: str, conn_id: str, sequenced: bool) -> None:
        self.actor_id = actor_id
        self.conn_id = conn_id
        self.sequenced = sequenced
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def parked(self, error: BaseException | None) -> None:
        if self.done.done():
            return
        if error is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(error)


def _scope(scheme: str, target: str, headers: list[tuple[bytes, bytes]]) -> Scope:
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": dict(_ASGI),
        "http_version": "1.1",
        "scheme": scheme,
        "path": unquote(path) or "/",
        "raw_path": (path or "/").encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": headers,
        "client": None,
        "server": None,
        "extensions": {},
    }


def _start(
    status: int, headers: dict[str, str], body: bytes | None, stream: bool = False
) -> dict[str, Any]:
    return {"status": status, "headers": headers, "body": body, "stream": stream}


class _HttpResponse:
    """The ASGI ``send`` of one tunnelled HTTP request."""

    def __init__(self, tunnel: AsgiTunnel, stream: _Stream, *, streaming_ok: bool) -> None:
        self._tunnel = tunnel
        self._stream = stream
        self._streaming_ok = streaming_ok
        self._status = 500
        self._headers: dict[str, str] = {}
        self._body = bytearray()
        self._streaming = False
        self.started = False
        self._done = False

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._status = int(message["status"])
            for name, value in message.get("headers", []):
                key, text = bytes(name).decode("latin-1").lower(), bytes(value).decode("latin-1")
                self._headers[key] = (
                    f"{self._headers[key]}, {text}" if key in self._headers else text
                )
        elif kind == "http.response.body" and not self._done:
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if self._streaming:
                await self._chunk(body, not more)
            elif more and self._streaming_ok:
                self._streaming = self.started = self._stream.response_started = True
                await self._tunnel._send(
                    self._stream,
                    "ToRivetResponseStart",
                    _start(self._status, self._headers, None, True),
                )
                await self._chunk(bytes(self._body) + body, False)
            else:
                self._body += body
                if not more:
                    await self.finish()

    async def _chunk(self, body: bytes, finish: bool) -> None:
        limit = self._tunnel._max_payload() or len(body)
        while len(body) > limit:
            piece, body = body[:limit], body[limit:]
            await self._tunnel._send(
                self._stream, "ToRivetResponseChunk", {"body": piece, "finish": False}
            )
        await self._tunnel._send(
            self._stream, "ToRivetResponseChunk", {"body": body, "finish": finish}
        )
        self._done = self._stream.answered = finish

    async def finish(self) -> None:
        """Send what was buffered (or end the stream) unless already sent."""
        if self._done:
            return
        if self._streaming:
            await self._chunk(b"", True)
            return
        self._done = self.started = self._stream.answered = True
        start = _start(self._status, self._headers, bytes(self._body))
        limit = self._tunnel._max_payload()
        if limit is not None and len(self._body) > limit:
            log.warning(
                "tunnel: a %d-byte response is above the engine's %d-byte limit; answering 500",
                len(self._body),
                limit,
            )
            headers = {"content-type": "application/json"}
            start = _start(500, headers, _too_long(len(self._body), limit))
        await self._tunnel._send(self._stream, "ToRivetResponseStart", start)


class _SocketSend:
    """The ASGI ``send`` of one tunnelled WebSocket."""

    def __init__(self, tunnel: AsgiTunnel, stream: _Stream) -> None:
        self._tunnel = tunnel
        self._stream = stream
        self.closed = False

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.closed:
            return
        if kind == "websocket.accept":
            if not self._stream.revived:  # announced by `AsgiTunnel.restore` instead
                open_ = {"can_hibernate": True}
                await self._tunnel._send(self._stream, "ToRivetWebSocketOpen", open_)
        elif kind == "websocket.send":
            data = message.get("bytes")
            binary = data is not None
            raw = bytes(data) if data is not None else str(message.get("text", "")).encode()
            payload = {"data": raw, "binary": binary}
            limit = self._tunnel._max_payload()
            if limit is not None and len(raw) > limit:
                log.warning(
                    "tunnel: a %d-byte WebSocket message is above the engine's %d-byte limit; "
                    "closing the socket with 1009",
                    len(raw),
                    limit,
                )
                await self.send(
                    {"type": "websocket.close", "code": 1009, "reason": "message too big"}
                )
                return
            await self._tunnel._send(self._stream, "ToRivetWebSocketMessage", payload)
        elif kind == "websocket.close":
            self.closed = self._stream.answered = True
            if not self._stream.closed:
                close = {
                    "code": int(message.get("code", 1000)),
                    "reason": message.get("reason") or None,
                    "hibernate": False,
                }
                await self._tunnel._send(self._stream, "ToRivetWebSocketClose", close)
