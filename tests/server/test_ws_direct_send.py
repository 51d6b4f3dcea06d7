"""The `Outbox` writing through the socket's `DirectSend` (`pyrivet serve`).

Frames leave in the same order and batches as through ASGI ``send``; a batch holding
the close, or a socket that does not take direct writes now, goes through ``send``;
a failed direct write stops the writer as a failed ``send`` does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyrivet.server._uvicorn_ws import DirectSend
from pyrivet.server._websocket import Outbox


class FakeDirect(DirectSend):
    """Records each direct write; refuses them while ``open`` is False; raises while
    ``broken``."""

    def __init__(self) -> None:  # no protocol: `write` is replaced
        self.writes: list[list[bytes | str]] = []
        self.open = True
        self.broken = False

    def write(self, frames: list[bytes | str]) -> bool:
        if self.broken:
            raise ConnectionResetError("gone")
        if not self.open:
            return False
        self.writes.append(list(frames))
        return True


async def _outbox() -> tuple[Outbox, asyncio.Task[None], FakeDirect, list[dict[str, Any]]]:
    """An outbox with a direct writer, whose writer task waits for frames."""
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    direct = FakeDirect()
    outbox = Outbox(send, 100, direct=direct)
    writer = asyncio.get_running_loop().create_task(outbox.run())
    await asyncio.sleep(0)  # the writer waits for frames
    return outbox, writer, direct, sent


async def test_reply_now_writes_the_queued_events_and_the_reply_in_one_write() -> None:
    outbox, writer, direct, sent = await _outbox()
    outbox.defer_wakes()  # as an action run in the reading task does
    outbox.frame(b"event", wake_soon=True)
    assert outbox.reply_now(b"reply")
    outbox.resume_wakes()
    assert direct.writes == [[b"event", b"reply"]]  # at once, from the caller
    outbox.close(1000)
    await writer
    assert sent == [{"type": "websocket.close", "code": 1000, "reason": ""}]


async def test_reply_now_without_a_direct_writer_does_nothing() -> None:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    outbox = Outbox(send, 100)
    assert not outbox.reply_now(b"reply")
    assert sent == []
    outbox.close(1000)
    await outbox.run()
    assert [m["type"] for m in sent] == ["websocket.close"]  # the reply was not queued


async def test_a_busy_writer_gets_the_reply_queued() -> None:
    outbox, writer, direct, _sent = await _outbox()
    outbox.frame(b"first")  # wakes the writer: it is no longer idle
    assert outbox.reply_now(b"reply")
    assert direct.writes == []
    await asyncio.sleep(0)
    assert direct.writes == [[b"first", b"reply"]]  # the writer's batch, direct too
    outbox.close(1000)
    await writer


async def test_a_socket_not_taking_direct_writes_gets_them_through_send() -> None:
    outbox, writer, direct, sent = await _outbox()
    direct.open = False  # writing paused, say
    outbox.frame(b"event", wake_soon=True)
    assert outbox.reply_now("reply")
    await asyncio.sleep(0)
    outbox.close(1000)
    await writer
    assert direct.writes == []
    assert sent == [
        {"type": "websocket.send", "bytes": b"event", "pyrivet.more": True},
        {"type": "websocket.send", "text": "reply", "pyrivet.more": False},
        {"type": "websocket.close", "code": 1000, "reason": ""},
    ]


async def test_a_batch_with_the_close_goes_through_send() -> None:
    outbox, writer, direct, sent = await _outbox()
    outbox.frame(b"last")
    outbox.close(1001, "bye")
    await writer
    assert direct.writes == []
    assert sent == [
        {"type": "websocket.send", "bytes": b"last", "pyrivet.more": True},
        {"type": "websocket.close", "code": 1001, "reason": "bye"},
    ]


async def test_a_failed_direct_write_stops_the_writer() -> None:
    outbox, writer, direct, sent = await _outbox()
    direct.broken = True
    waiting = asyncio.get_running_loop().create_task(outbox.send(b"awaited"))
    await writer
    assert outbox.closing and outbox.done.is_set()
    assert not await waiting  # its frame was dropped: the client is gone
    assert sent == [] and direct.writes == []


async def test_a_failed_direct_write_of_a_reply_stops_the_writer() -> None:
    outbox, writer, direct, sent = await _outbox()
    direct.broken = True
    assert outbox.reply_now(b"reply")  # written from here, and failed
    assert outbox.closing
    await writer
    assert outbox.done.is_set()
    assert not await outbox.send(b"later")
    assert sent == [] and direct.writes == []
