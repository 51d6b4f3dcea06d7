"""`BatchingWebSocketProtocol` frames and parses data itself: the bytes must be websockets'
own, and the app must get the same messages."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState
from websockets.frames import Frame, Opcode

from pyrivet.server._uvicorn_ws import (
    DIRECT_EXTENSION,
    DIRECT_STOPPED,
    BatchingWebSocketProtocol,
    FrameBoundary,
    frame_head,
    parse_client_frame,
)


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_frames_are_what_websockets_serializes(opcode: Opcode, length: int) -> None:
    data = bytes(range(256)) * (length // 256) + bytes(length % 256)
    assert frame_head(opcode, length) + data == Frame(opcode, data).serialize(mask=False)


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535])
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_client_frames_read_as_websockets_reads_them(opcode: Opcode, length: int) -> None:
    data = bytes(range(97, 123)) * (length // 26) + b"a" * (length % 26)
    frame = Frame(opcode, data).serialize(mask=True)
    assert parse_client_frame(frame, 2**20) == (opcode is Opcode.TEXT, data)


def masked(frame: Frame) -> bytes:
    return frame.serialize(mask=True)


OTHERS = {
    "not final": masked(Frame(Opcode.BINARY, b"ab", fin=False)),
    "continuation": masked(Frame(Opcode.CONT, b"ab")),
    "ping": masked(Frame(Opcode.PING, b"ab")),
    "close": masked(Frame(Opcode.CLOSE, b"\x03\xe8")),
    "rsv1 (compressed)": bytes([0xC2]) + masked(Frame(Opcode.BINARY, b"ab"))[1:],
    "unmasked": Frame(Opcode.BINARY, b"ab").serialize(mask=False),
    "64-bit length": masked(Frame(Opcode.BINARY, bytes(70000))),
    "over max_size": masked(Frame(Opcode.BINARY, bytes(101))),
    "two frames": masked(Frame(Opcode.BINARY, b"ab")) * 2,
    "partial frame": masked(Frame(Opcode.BINARY, b"abc"))[:-1],
    "too short": b"\x82\x80\x00",
}


@pytest.mark.parametrize("data", OTHERS.values(), ids=OTHERS.keys())
def test_other_data_is_left_to_websockets(data: bytes) -> None:
    assert parse_client_frame(data, 100) is None


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.paused = False

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_paused(self) -> bool:
        return self.paused

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)


HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def _connect(app: Any) -> tuple[BatchingWebSocketProtocol, _Transport]:
    """The protocol serving ``app`` on a fake transport, the upgrade request received
    (the app runs once the loop turns)."""
    config = uvicorn.Config(app, ws=BatchingWebSocketProtocol, lifespan="off")
    config.load()
    protocol = BatchingWebSocketProtocol(
        config, ServerState(), {}, _loop=asyncio.get_running_loop()
    )
    transport = _Transport()
    protocol.connection_made(transport)
    protocol.data_received(HANDSHAKE)
    return protocol, transport


async def test_reading_pauses_when_a_second_message_waits_for_the_app() -> None:
    """One queued message does not pause reading (a client waiting for each reply
    never makes the server pause and resume); a second one does, until the app took
    both; messages reach the app in order, whichever parser read them."""
    accepted = asyncio.Event()
    proceed = asyncio.Event()
    received: list[Any] = []
    done = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        accepted.set()
        await proceed.wait()
        for _ in range(3):
            received.append(await receive())
        done.set()

    protocol, transport = _connect(app)
    await accepted.wait()
    protocol.data_received(Frame(Opcode.BINARY, b"1").serialize(mask=True))
    assert not transport.is_paused()
    protocol.data_received(Frame(Opcode.TEXT, b"2").serialize(mask=True))
    assert transport.is_paused()
    # Two frames in one chunk: websockets' parser (which uvicorn pauses after each).
    protocol.data_received(Frame(Opcode.BINARY, b"3").serialize(mask=True) * 2)
    proceed.set()
    await done.wait()
    assert received == [
        {"type": "websocket.receive", "bytes": b"1"},
        {"type": "websocket.receive", "text": "2"},
        {"type": "websocket.receive", "bytes": b"3"},
    ]
    assert transport.is_paused()  # the fourth message still waits
    protocol.connection_lost(None)


async def test_direct_receive_takes_lone_frames_only_while_nothing_is_queued() -> None:
    """A handler attached through the scope's `DirectReceive` gets lone frames in
    ``data_received``; a message websockets' parser read, and what comes behind it,
    go through ``receive``, in order; ``detach(stop=True)`` ends the app's reading."""
    taken: list[bytes | str] = []
    received: list[Any] = []
    attached = asyncio.Event()
    proceed = asyncio.Event()
    done = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        direct = scope["extensions"][DIRECT_EXTENSION]
        direct.attach(taken.append)
        attached.set()
        await proceed.wait()
        received.append(await receive())
        received.append(await receive())
        direct.detach(stop=True)
        received.append(await receive())
        done.set()

    protocol, _transport = _connect(app)
    await attached.wait()
    protocol.data_received(Frame(Opcode.BINARY, b"1").serialize(mask=True))
    protocol.data_received(Frame(Opcode.TEXT, b"2").serialize(mask=True))
    # A fragmented message: websockets' parser reads it, and it is queued.
    protocol.data_received(
        Frame(Opcode.BINARY, b"3a", fin=False).serialize(mask=True)
        + Frame(Opcode.CONT, b"3b").serialize(mask=True)
    )
    # A lone frame again, but behind a queued message: queued too.
    protocol.data_received(Frame(Opcode.BINARY, b"4").serialize(mask=True))
    assert taken == [b"1", "2"]
    proceed.set()
    await done.wait()
    assert received == [
        {"type": "websocket.receive", "bytes": b"3a3b"},
        {"type": "websocket.receive", "bytes": b"4"},
        {"type": DIRECT_STOPPED},
    ]
    protocol.data_received(Frame(Opcode.BINARY, b"5").serialize(mask=True))
    assert taken == [b"1", "2"] and not protocol.queue.empty()  # detached: queued
    protocol.connection_lost(None)


def _random_frames(rng: Any) -> list[bytes]:
    frames = []
    for _ in range(rng.randint(1, 5)):
        size = rng.choice([0, 1, 5, 125, 126, 127, 200, 65535, 65536, 70000])
        opcode = (
            rng.choice([Opcode.TEXT, Opcode.BINARY, Opcode.PING]) if size < 126 else Opcode.BINARY
        )
        frames.append(Frame(opcode, b"a" * size).serialize(mask=True))
    return frames


def test_frame_boundaries_are_followed_across_any_chunking() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        frames = _random_frames(rng)
        stream = b"".join(frames)
        ends = set(itertools.accumulate(len(frame) for frame in frames))
        cuts = sorted({rng.randrange(1, len(stream)) for _ in range(rng.randint(0, 6))})
        boundary = FrameBoundary()
        previous = 0
        for cut in [*cuts, len(stream)]:
            boundary.feed(stream[previous:cut])
            previous = cut
            assert boundary.at_boundary == (cut in ends), (cut, sorted(ends))


async def test_a_chunk_that_starts_inside_a_frame_is_never_read_as_one() -> None:
    """A frame cut right after its two-byte header: the rest (mask key, payload) is
    shaped like a frame of its own, but it is the end of the first one."""
    received: list[Any] = []
    accepted = asyncio.Event()
    done = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        accepted.set()
        received.append(await receive())
        received.append(await receive())
        done.set()

    protocol, _ = _connect(app)
    await accepted.wait()
    payload = b"0123456789"
    # The mask key reads as "final binary frame, masked, 8 bytes" (2 + 4 + 8 = 4 + 10).
    mask = bytes((0x82, 0x80 | (len(payload) - 2), 1, 2))
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    assert parse_client_frame(mask + masked, None) is not None  # it would be taken
    protocol.data_received(bytes((0x82, 0x80 | len(payload))))
    protocol.data_received(mask + masked)
    protocol.data_received(Frame(Opcode.BINARY, b"next").serialize(mask=True))
    await done.wait()
    assert received == [
        {"type": "websocket.receive", "bytes": payload},
        {"type": "websocket.receive", "bytes": b"next"},
    ]
    protocol.connection_lost(None)
