"""Frames queued together leave in one write: the `Outbox` hint and the uvicorn protocol."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from pyrivet._protocol.messages import (
    ActionRequest,
    ActionResponse,
    Encoding,
    Event,
    Init,
    SubscriptionRequest,
    decode_to_client,
    encode_to_server,
)
from pyrivet.server._uvicorn_ws import MORE_KEY
from pyrivet.server._websocket import Outbox

from ._support import ENCODINGS, query_url, subprotocols
from .conftest import Served


async def test_outbox_marks_every_frame_with_more_queued_behind_it() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    outbox = Outbox(send, 100)
    outbox.frame(b"event")
    outbox.frame("reply")
    outbox.close(1000)
    await outbox.run()
    outbox2 = Outbox(send, 100)
    writer = asyncio.get_running_loop().create_task(outbox2.run())
    outbox2.frame(b"alone")
    await asyncio.sleep(0)
    outbox2.close(1000)
    await writer

    assert sent == [
        {"type": "websocket.send", "bytes": b"event", MORE_KEY: True},
        {"type": "websocket.send", "text": "reply", MORE_KEY: True},
        {"type": "websocket.close", "code": 1000, "reason": ""},
        {"type": "websocket.send", "bytes": b"alone", MORE_KEY: False},
        {"type": "websocket.close", "code": 1000, "reason": ""},
    ]


async def _running_outbox() -> tuple[Outbox, asyncio.Task[None], list[dict[str, Any]]]:
    """An outbox whose writer task waits for frames, and the messages it sends."""
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    outbox = Outbox(send, 100)
    writer = asyncio.get_running_loop().create_task(outbox.run())
    await asyncio.sleep(0)  # the writer waits for frames
    return outbox, writer, sent


async def test_an_event_queued_with_wake_soon_waits_for_a_reply_already_scheduled() -> None:
    outbox, writer, sent = await _running_outbox()
    # As a commit does: the event is released, then the action waiting for the same
    # commit is scheduled to resume (here: a callback queueing the reply).
    outbox.frame(b"event", wake_soon=True)
    asyncio.get_running_loop().call_soon(outbox.frame, b"reply")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    outbox.close(1000)
    await writer

    assert sent[:2] == [
        {"type": "websocket.send", "bytes": b"event", MORE_KEY: True},
        {"type": "websocket.send", "bytes": b"reply", MORE_KEY: False},
    ]


class RawSocket:
    """A WebSocket client on a plain TCP stream, to see what arrives in one read."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol: ClientProtocol | None = None

    async def open(self, url: str, encoding: Encoding) -> Init:
        self.protocol = ClientProtocol(parse_uri(url), subprotocols=subprotocols(encoding))
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        events = await self.read_once()
        while len(events) < 2:  # the 101 response, then Init
            events += await self.read_once()
        assert isinstance(events[0], Response) and events[0].status_code == 101
        init = self.decode(events[1], encoding)
        assert isinstance(init, Init), init
        return init

    def send(self, msg: Any, encoding: Encoding) -> None:
        assert self.protocol is not None
        data = encode_to_server(msg, encoding)
        if encoding == "json":
            self.protocol.send_text(data)
        else:
            self.protocol.send_binary(data)
        self._flush()

    async def read_once(self) -> list[Any]:
        """What one read of the socket brings (the 101 response, frames)."""
        assert self.protocol is not None
        data = await self.reader.read(65536)
        assert data, "the server closed the connection"
        self.protocol.receive_data(data)
        return list(self.protocol.events_received())

    @staticmethod
    def decode(event: Any, encoding: Encoding) -> Any:
        assert isinstance(event, Frame), event
        assert event.opcode == (Opcode.TEXT if encoding == "json" else Opcode.BINARY)
        return decode_to_client(bytes(event.data), encoding)

    def _flush(self) -> None:
        assert self.protocol is not None
        for chunk in self.protocol.data_to_send():
            self.writer.write(chunk)


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_an_actions_event_frame_held_back_goes_out_before_its_reply(
    served: Served, encoding: Encoding
) -> None:
    port = int(served.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        raw = RawSocket(reader, writer)
        await raw.open(served.ws_url + query_url("counter", "/connect", key="batch"), encoding)
        raw.send(SubscriptionRequest("count", True), encoding)
        for action_id in range(3):
            raw.send(ActionRequest(action_id, "increment", [1]), encoding)
            events = await raw.read_once()
            while len(events) < 2:
                events += await raw.read_once()
            frames = [raw.decode(event, encoding) for event in events]
            # The event frame was held back for the reply: both go out, in order.
            assert frames == [
                Event("count", [action_id + 1]),
                ActionResponse(action_id, action_id + 1),
            ]
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("reply_first", [False, True])
async def test_reply_first_sends_replies_ahead_of_the_events_released_with_them(
    reply_first: bool,
) -> None:
    sent: list[bytes] = []

    async def send(message: Any) -> None:
        if message["type"] == "websocket.send":
            sent.append(message["bytes"])

    outbox = Outbox(send, 100, reply_first=reply_first)
    writer = asyncio.get_running_loop().create_task(outbox.run())
    await asyncio.sleep(0)  # the writer waits for frames
    outbox.frame(b"before")
    await asyncio.sleep(0)  # sent: the writer waits again
    # One commit releases two events, then the two actions waiting for it reply.
    outbox.frame(b"event-1", wake_soon=True)
    outbox.frame(b"event-2", wake_soon=True)
    loop = asyncio.get_running_loop()
    loop.call_soon(lambda: outbox.frame(b"reply-1", reply=True))
    loop.call_soon(lambda: outbox.frame(b"reply-2", reply=True))
    for _ in range(3):
        await asyncio.sleep(0)
    # The writer took that batch: a later reply has no event to pass.
    outbox.frame(b"event-3", wake_soon=True)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    outbox.frame(b"reply-3", reply=True)
    await asyncio.sleep(0)
    outbox.close(1000)
    await writer

    if reply_first:
        first = [b"before", b"reply-1", b"reply-2", b"event-1", b"event-2"]
    else:
        first = [b"before", b"event-1", b"event-2", b"reply-1", b"reply-2"]
    assert sent == [*first, b"event-3", b"reply-3"]


async def test_a_reply_is_sent_from_its_action_when_the_writer_is_idle() -> None:
    outbox, writer, sent = await _running_outbox()
    outbox.frame(b"event", wake_soon=True)
    await outbox.reply(b"reply")
    # Sent by the caller, before any other task ran: no hop through the writer.
    assert sent == [
        {"type": "websocket.send", "bytes": b"event", MORE_KEY: True},
        {"type": "websocket.send", "bytes": b"reply", MORE_KEY: False},
    ]
    await asyncio.sleep(0)  # the event's scheduled wake finds nothing queued
    outbox.frame(b"later")
    await asyncio.sleep(0)
    outbox.close(1000)
    await writer
    assert [m.get("bytes") for m in sent[2:]] == [b"later", None]


async def test_a_reply_waits_for_a_busy_writer_and_a_failed_send_stops_the_writer() -> None:
    sent: list[bytes] = []
    release = asyncio.Event()

    async def send(message: Any) -> None:
        if message.get("bytes") == b"slow":
            await release.wait()
        if message.get("bytes") == b"gone":
            raise ConnectionError("the client left")
        sent.append(message.get("bytes"))

    outbox = Outbox(send, 100)
    writer = asyncio.get_running_loop().create_task(outbox.run())
    await asyncio.sleep(0)
    outbox.frame(b"slow")
    await asyncio.sleep(0)  # the writer is inside send
    await outbox.reply(b"reply")  # queued for the writer, not sent past "slow"
    assert sent == []
    release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert sent == [b"slow", b"reply"]
    await outbox.reply(b"gone")
    await asyncio.wait_for(writer, 1)
    assert outbox.done.is_set() and outbox.closing


async def test_wakes_deferred_for_a_reply_are_not_scheduled_when_the_reply_took_the_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outbox, writer, sent = await _running_outbox()
    loop = asyncio.get_running_loop()
    scheduled: list[object] = []
    call_soon = loop.call_soon

    def counted_call_soon(*args: Any, **kwargs: Any) -> asyncio.Handle:
        scheduled.append(args)
        return call_soon(*args, **kwargs)

    monkeypatch.setattr(loop, "call_soon", counted_call_soon)
    outbox.defer_wakes()
    outbox.frame(b"event", wake_soon=True)
    await outbox.reply(b"reply")  # as an action run in the reading task does
    outbox.resume_wakes()
    # A deferred wake with nothing left queued: no callback, no loop iteration.
    assert scheduled == []
    outbox.defer_wakes()
    outbox.frame(b"late event", wake_soon=True)
    outbox.resume_wakes()  # no reply took it: the writer is woken as usual
    assert len(scheduled) == 1
    monkeypatch.undo()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    outbox.close(1000)
    await writer
    assert [m.get("bytes") for m in sent] == [b"event", b"reply", b"late event", None]
    assert [m.get(MORE_KEY) for m in sent[:3]] == [True, False, False]
