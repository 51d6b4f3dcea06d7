"""`AsgiTunnel` alone: tunnel messages in, an ASGI app, tunnel messages out.

No engine: the messages are what the engine's gateway sends (as decoded by
`pyrivet.engine._protocol`), and the replies are collected as the envoy would send them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pyrivet._runtime.handoff import REVIVE_EXTENSION, SOCKET_EXTENSION
from pyrivet.engine._schema import Tagged
from pyrivet.engine._socket_record import decode_socket
from pyrivet.engine._tunnel import AsgiTunnel

Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


class Gateway:
    """Plays the gateway: feeds a tunnel, records what comes back."""

    def __init__(
        self, app: Callable[[Any, Receive, Send], Awaitable[None]], max_payload: int | None = None
    ) -> None:
        self.sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.tunnel = AsgiTunnel(app, self._send, lambda: max_payload)
        #: The next message index per request, counted from its open as the gateway does.
        self.indexes: dict[bytes, int] = {}

    async def _send(self, message: dict[str, Any]) -> bool:
        await self.sent.put(message)
        return True

    def feed(self, request: bytes, tag: str, val: Any = None, index: int | None = None) -> None:
        if index is None:
            index = self.indexes.get(request, 0)
        self.indexes[request] = index + 1
        message_id = {"gateway_id": b"gate", "request_id": request, "message_index": index}
        self.tunnel.handle({"message_id": message_id, "message_kind": Tagged(tag, val)})

    async def next(self) -> tuple[int, str, Any]:
        message = await asyncio.wait_for(self.sent.get(), 5)
        kind = message["message_kind"]
        return message["message_id"]["message_index"], kind.tag, kind.val


def request_start(path: str, body: bytes | None = b"hi", stream: bool = False) -> dict[str, Any]:
    return {
        "actor_id": "actor-1",
        "actor_generation": 1,
        "method": "post",
        "path": path,
        "headers": {"X-Custom": "abc"},
        "body": body,
        "stream": stream,
        "response_stream": True,
    }


def socket_open() -> dict[str, Any]:
    """A ``ToEnvoyWebSocketOpen`` of a ``/connect`` socket to actor ``a``."""
    return {"actor_id": "a", "actor_generation": None, "path": "/connect", "headers": {}}


async def echo_app(scope: Any, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = dict(scope["headers"])
    text = f"{scope['method']} {scope['path']} {scope['query_string'].decode()} "
    text += f"{headers[b'x-rivet-actor'].decode()} {headers[b'x-custom'].decode()} {body.decode()}"
    await send({"type": "http.response.start", "status": 201, "headers": [(b"x-a", b"1")]})
    await send({"type": "http.response.body", "body": text.encode()})


async def test_a_request_reaches_the_app_addressed_to_its_actor() -> None:
    gateway = Gateway(echo_app)
    gateway.feed(b"req1", "ToEnvoyRequestStart", request_start("/action/x?a=1"))
    index, tag, val = await gateway.next()
    assert (index, tag, val["status"], val["stream"]) == (0, "ToRivetResponseStart", 201, False)
    assert val["headers"] == {"x-a": "1"}
    assert val["body"] == b"POST /action/x a=1 actor-1 abc hi"
    await gateway.tunnel.aclose()


async def test_a_streamed_request_body_arrives_in_chunks() -> None:
    gateway = Gateway(echo_app)
    gateway.feed(b"req2", "ToEnvoyRequestStart", request_start("/request/up", None, stream=True))
    gateway.feed(b"req2", "ToEnvoyRequestChunk", {"body": b"one ", "finish": False})
    gateway.feed(b"req2", "ToEnvoyRequestChunk", {"body": b"two", "finish": True})
    _, _, val = await gateway.next()
    assert val["body"].endswith(b"one two")
    await gateway.tunnel.aclose()


async def test_a_streamed_response_goes_out_as_chunks() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b", "more_body": False})

    gateway = Gateway(app)
    gateway.feed(b"req3", "ToEnvoyRequestStart", request_start("/request/s"))
    assert (await gateway.next())[:2] == (0, "ToRivetResponseStart")
    assert await gateway.next() == (1, "ToRivetResponseChunk", {"body": b"a", "finish": False})
    assert await gateway.next() == (2, "ToRivetResponseChunk", {"body": b"b", "finish": True})
    await gateway.tunnel.aclose()


async def test_an_app_that_raises_answers_500(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        raise RuntimeError("hidden detail")

    gateway = Gateway(app)
    gateway.feed(b"req4", "ToEnvoyRequestStart", request_start("/action/x"))
    _, tag, val = await gateway.next()
    assert (tag, val["status"]) == ("ToRivetResponseStart", 500)
    assert b"hidden" not in val["body"] and "hidden detail" in caplog.text
    await gateway.tunnel.aclose()


async def test_abort_cancels_the_app_and_close_answers_what_is_in_flight() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    gateway = Gateway(app)
    gateway.feed(b"abrt", "ToEnvoyRequestStart", request_start("/action/x"))
    await asyncio.wait_for(started.wait(), 5)
    reason = {"kind": "Cancelled", "detail": None}
    gateway.feed(
        b"abrt",
        "ToEnvoyRequestAbort",
        {"actor_id": None, "actor_generation": None, "reason": reason},
    )
    await asyncio.wait_for(cancelled.wait(), 5)
    started.clear()
    gateway.feed(b"left", "ToEnvoyRequestStart", request_start("/action/x"))
    await asyncio.wait_for(started.wait(), 5)
    assert gateway.tunnel.open_streams == 1
    await gateway.tunnel.aclose()
    # Only the request still open gets an answer: a 503 saying the envoy stops.
    _, tag, val = await gateway.next()
    assert (tag, val["status"]) == ("ToRivetResponseStart", 503)
    assert b'"stopping"' in val["body"]
    assert gateway.sent.empty()


async def test_a_websocket_round_trip() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        assert scope["type"] == "websocket"
        assert scope["subprotocols"][-2:] == ["rivet_target.actor", "rivet_actor.actor-1"]
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": "echo " + message["text"]})
        message = await receive()
        await send({"type": "websocket.send", "bytes": message["bytes"][::-1]})
        await send({"type": "websocket.close", "code": 4000, "reason": "bye"})

    gateway = Gateway(app)
    open_ = {
        "actor_id": "actor-1",
        "actor_generation": None,
        "path": "/connect",
        "headers": {"sec-websocket-protocol": "rivet, rivet_encoding.json"},
    }
    gateway.feed(b"sock", "ToEnvoyWebSocketOpen", open_)
    assert await gateway.next() == (0, "ToRivetWebSocketOpen", {"can_hibernate": True})
    gateway.feed(b"sock", "ToEnvoyWebSocketMessage", {"data": b"hi", "binary": False})
    # Each message read is acknowledged with the gateway's index (the open was 0).
    assert await gateway.next() == (1, "ToRivetWebSocketMessageAck", {"index": 1})
    assert await gateway.next() == (
        2,
        "ToRivetWebSocketMessage",
        {"data": b"echo hi", "binary": False},
    )
    gateway.feed(b"sock", "ToEnvoyWebSocketMessage", {"data": b"\x01\x02", "binary": True})
    assert await gateway.next() == (3, "ToRivetWebSocketMessageAck", {"index": 2})
    assert await gateway.next() == (
        4,
        "ToRivetWebSocketMessage",
        {"data": b"\x02\x01", "binary": True},
    )
    close = {"code": 4000, "reason": "bye", "hibernate": False}
    assert await gateway.next() == (5, "ToRivetWebSocketClose", close)
    await gateway.tunnel.aclose()
    assert gateway.sent.empty()


async def test_a_client_close_reaches_the_app_and_strays_are_dropped() -> None:
    closed: asyncio.Queue[Any] = asyncio.Queue()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await closed.put(await receive())

    gateway = Gateway(app)
    open_ = socket_open()
    gateway.feed(b"ws-2", "ToEnvoyWebSocketOpen", open_)
    assert (await gateway.next())[1] == "ToRivetWebSocketOpen"
    gateway.feed(b"ws-2", "ToEnvoyWebSocketOpen", open_)  # a duplicate open: ignored
    gateway.feed(b"none", "ToEnvoyWebSocketMessage", {"data": b"x", "binary": True})  # unknown
    gateway.feed(b"ws-2", "ToEnvoyWebSocketClose", {"code": None, "reason": None})
    assert await asyncio.wait_for(closed.get(), 5) == {
        "type": "websocket.disconnect",
        "code": 1005,
        "reason": "",
    }
    await gateway.tunnel.aclose()
    assert gateway.sent.empty()  # the client closed: nothing to answer


async def socket_reader(received: asyncio.Queue[Any]) -> Any:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            await received.put(message)
            if message["type"] == "websocket.disconnect":
                return

    return app


async def test_duplicates_are_dropped_and_a_gap_closes_the_socket() -> None:
    received: asyncio.Queue[Any] = asyncio.Queue()
    gateway = Gateway(await socket_reader(received))
    gateway.feed(b"ws-3", "ToEnvoyWebSocketOpen", socket_open())
    assert (await gateway.next())[1] == "ToRivetWebSocketOpen"
    gateway.feed(b"ws-3", "ToEnvoyWebSocketMessage", {"data": b"one", "binary": False})
    assert (await asyncio.wait_for(received.get(), 5))["text"] == "one"
    assert await gateway.next() == (1, "ToRivetWebSocketMessageAck", {"index": 1})
    # A resend after a wake of what was taken already: dropped, nothing answered.
    gateway.feed(b"ws-3", "ToEnvoyWebSocketMessage", {"data": b"one", "binary": False}, index=1)
    gateway.feed(b"ws-3", "ToEnvoyWebSocketMessage", {"data": b"two", "binary": False}, index=2)
    assert (await asyncio.wait_for(received.get(), 5))["text"] == "two"
    assert await gateway.next() == (2, "ToRivetWebSocketMessageAck", {"index": 2})
    # Index 4 after 2: a message was lost, the socket closes (as RivetKit's envoy does).
    gateway.feed(b"ws-3", "ToEnvoyWebSocketMessage", {"data": b"four", "binary": False}, index=4)
    skip = {"type": "websocket.disconnect", "code": 1008, "reason": "ws.message_index_skip"}
    assert await asyncio.wait_for(received.get(), 5) == skip
    close = {"code": 1008, "reason": "ws.message_index_skip", "hibernate": False}
    assert await gateway.next() == (3, "ToRivetWebSocketClose", close)
    gateway.feed(b"ws-3", "ToEnvoyWebSocketMessage", {"data": b"five", "binary": False})
    await gateway.tunnel.aclose()
    assert received.empty() and gateway.sent.empty()


async def test_a_sleeping_actors_socket_waits_for_its_restore() -> None:
    received: asyncio.Queue[Any] = asyncio.Queue()
    gateway = Gateway(await socket_reader(received))
    gateway.feed(b"ws-4", "ToEnvoyWebSocketOpen", socket_open())
    assert (await gateway.next())[1] == "ToRivetWebSocketOpen"
    gateway.tunnel.sleeping("a")
    gateway.feed(b"ws-4", "ToEnvoyWebSocketMessage", {"data": b"wake", "binary": False})
    await asyncio.sleep(0)  # the app's task runs: it has nothing to read yet
    assert received.empty() and gateway.sent.empty()
    # The engine starts the actor again, naming this socket and one unknown here.
    await gateway.tunnel.restore("a", [(b"gate", b"ws-4"), (b"gate", b"gone")])
    assert await gateway.next() == (1, "ToRivetWebSocketOpen", {"can_hibernate": True})
    _, tag, val = await gateway.next()
    assert (tag, val["reason"], val["hibernate"]) == (
        "ToRivetWebSocketClose",
        "ws.meta_not_found_during_restore",
        False,
    )
    assert (await asyncio.wait_for(received.get(), 5))["text"] == "wake"
    assert await gateway.next() == (2, "ToRivetWebSocketMessageAck", {"index": 1})
    await gateway.tunnel.aclose()


async def test_a_sleeping_actors_socket_is_left_open_and_served_again_by_a_new_tunnel() -> None:
    """The handoff across an envoy restart, tunnel side: the socket's record (what a
    new process needs, no engine token) is read by the app from its scope; closing the
    tunnel leaves a sleeping actor's socket to the gateway; a new tunnel revives it
    from the record (the app is told, and parks it), announces and acknowledges it at
    `restore`, drops the gateway's resend of what was read and takes what follows."""
    identities: list[Any] = []
    received: asyncio.Queue[Any] = asyncio.Queue()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        identities.append(scope["extensions"][SOCKET_EXTENSION])
        revival = scope["extensions"].get(REVIVE_EXTENSION)
        if revival is not None:
            assert (revival.actor_id, revival.conn_id, revival.sequenced) == ("a", "c1", True)
            revival.parked(None)
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            await received.put(message)
            if message["type"] == "websocket.disconnect":
                return

    first = Gateway(app)
    open_ = socket_open()
    open_["headers"] = {
        "Sec-WebSocket-Protocol": "rivet, rivet_encoding.cbor, rivet_token.secret",
        "authorization": "Bearer secret",
    }
    first.feed(b"ws-5", "ToEnvoyWebSocketOpen", open_)
    assert (await first.next())[1] == "ToRivetWebSocketOpen"
    for text in (b"one", b"two"):
        first.feed(b"ws-5", "ToEnvoyWebSocketMessage", {"data": text, "binary": False})
        assert (await asyncio.wait_for(received.get(), 5))["text"] == text.decode()
        assert (await first.next())[1] == "ToRivetWebSocketMessageAck"
    first.tunnel.sleeping("a")
    record = decode_socket(identities[0].record())
    assert (record.gateway_id, record.request_id, record.path) == (b"gate", b"ws-5", "/connect")
    assert (record.read_index, record.next_index) == (2, 3)
    assert record.headers == {"sec-websocket-protocol": "rivet, rivet_encoding.cbor"}
    await first.tunnel.aclose()
    assert first.sent.empty()  # no close: the gateway keeps the socket hibernating

    second = Gateway(app)
    second.indexes[b"ws-5"] = 3  # the gateway's own count goes on
    await asyncio.wait_for(second.tunnel.revive("a", record, "c1", sequenced=True), 5)
    assert second.tunnel.holds(b"gate", b"ws-5") and second.sent.empty()
    await second.tunnel.restore("a", [(b"gate", b"ws-5")])
    assert await second.next() == (3, "ToRivetWebSocketOpen", {"can_hibernate": True})
    assert await second.next() == (4, "ToRivetWebSocketMessageAck", {"index": 2})
    second.feed(b"ws-5", "ToEnvoyWebSocketMessage", {"data": b"two", "binary": False}, index=2)
    second.feed(b"ws-5", "ToEnvoyWebSocketMessage", {"data": b"three", "binary": False})
    assert (await asyncio.wait_for(received.get(), 5))["text"] == "three"
    assert await second.next() == (5, "ToRivetWebSocketMessageAck", {"index": 3})
    assert decode_socket(identities[1].record()).read_index == 3
    await second.tunnel.aclose()


async def test_responses_above_the_engines_limit_are_refused_or_split() -> None:
    """The engine's ``max_response_payload_size``: a bigger whole body becomes a 500
    ``message/outgoing_too_long``, a bigger streamed chunk is split, a bigger WebSocket
    message closes the socket with 1009; the tunnel keeps serving."""

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "bytes": b"small"})
            await send({"type": "websocket.send", "bytes": b"x" * 11})
            await send({"type": "websocket.send", "bytes": b"after"})  # closed: dropped
            return
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if scope["path"] == "/streamed":
            await send({"type": "http.response.body", "body": b"a" * 25, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            await send({"type": "http.response.body", "body": b"y" * 11})

    gateway = Gateway(app, max_payload=10)
    gateway.feed(b"big", "ToEnvoyRequestStart", request_start("/whole"))
    index, tag, start = await gateway.next()
    assert (index, tag, start["status"]) == (0, "ToRivetResponseStart", 500)
    assert b'"code":"outgoing_too_long"' in start["body"]
    assert b"11 bytes, above the engine's limit of 10 bytes" in start["body"]

    gateway.feed(b"str", "ToEnvoyRequestStart", request_start("/streamed"))
    _, tag, start = await gateway.next()
    assert tag == "ToRivetResponseStart" and start["stream"] and start["status"] == 200
    chunks = [await gateway.next() for _ in range(4)]
    assert [c[2]["body"] for c in chunks] == [b"a" * 10, b"a" * 10, b"a" * 5, b""]
    assert [c[2]["finish"] for c in chunks] == [False, False, False, True]

    open_ = socket_open()
    gateway.feed(b"ws", "ToEnvoyWebSocketOpen", open_)
    assert (await gateway.next())[1] == "ToRivetWebSocketOpen"
    assert (await gateway.next())[2] == {"data": b"small", "binary": True}
    close = {"code": 1009, "reason": "message too big", "hibernate": False}
    assert await gateway.next() == (2, "ToRivetWebSocketClose", close)
    await gateway.tunnel.aclose()
