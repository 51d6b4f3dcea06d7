"""`FrameWriter`: actor-call frames written straight to the socket, and when they are not."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.streams import StreamReader

from pyrivet.client._frames import POOL_SIZE, FrameWriter, MaskPool, frame_header

from .server_support import calls_and_events_in_each_encoding


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.buffered = 0

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered


def fake_ws(transport: FakeTransport, extensions: str | None = None) -> Any:
    headers = {"Sec-WebSocket-Extensions": extensions} if extensions else {}
    return SimpleNamespace(
        transport=transport, response=SimpleNamespace(headers=headers), state=State.OPEN
    )


def parse(data: bytes) -> Frame:
    """The frame in ``data`` as a server reads it (unmasked), checking nothing is left."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=True, max_size=None, extensions=[])
    try:
        next(parser)
    except StopIteration as done:
        assert not reader.buffer
        frame: Frame = done.value
        return frame
    raise AssertionError("the frame is incomplete")


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536, 70000])
@pytest.mark.parametrize("text", [False, True])
def test_written_frames_parse_as_whole_masked_messages(size: int, text: bool) -> None:
    transport = FakeTransport()
    writer = FrameWriter(fake_ws(transport), text=text)
    payload = bytes(i % 251 for i in range(size))
    assert writer.write(payload) is True
    [data] = transport.written
    frame = parse(data)
    assert frame.fin is True
    assert frame.opcode is (Opcode.TEXT if text else Opcode.BINARY)
    assert frame.data == payload
    header = len(frame_header(size, text=text))
    assert len(data) == header + 4 + size
    if size >= 8:
        assert data[header + 4 :] != payload  # masked on the wire


def test_each_frame_gets_its_own_masking_key() -> None:
    transport = FakeTransport()
    writer = FrameWriter(fake_ws(transport), text=False)
    for _ in range(50):
        assert writer.write(b"same payload")
    keys = {data[2:6] for data in transport.written}
    assert len(keys) == 50
    assert {parse(data).data for data in transport.written} == {b"same payload"}


def test_the_mask_pool_draws_random_bytes_once_per_1024_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    draws: list[int] = []

    def urandom(n: int) -> bytes:
        draws.append(n)
        return bytes((len(draws) + i) % 256 for i in range(n))

    monkeypatch.setattr("pyrivet.client._frames.os.urandom", urandom)
    pool = MaskPool()
    keys = [pool.take() for _ in range(POOL_SIZE // 4 + 1)]
    assert draws == [POOL_SIZE, POOL_SIZE]
    assert all(len(key) == 4 for key in keys)
    assert keys[0] == bytes((1, 2, 3, 4))
    assert keys[-1] == bytes((2, 3, 4, 5))


def test_falls_back_to_websockets_send_when_direct_writing_is_not_safe() -> None:
    transport = FakeTransport()
    ws = fake_ws(transport)
    writer = FrameWriter(ws, text=False)
    transport.buffered = 10  # the peer is not reading: leave flow control to send()
    assert writer.write(b"x") is False
    transport.buffered = 0
    ws.state = State.CLOSING  # websockets sent or received a Close frame
    assert writer.write(b"x") is False
    deflating = FrameWriter(fake_ws(transport, "permessage-deflate"), text=False)
    assert deflating.write(b"x") is False
    assert transport.written == []


@pytest.mark.parametrize("compression", [False, True])
async def test_calls_over_a_real_server_write_their_frames_directly_unless_deflated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compression: bool
) -> None:
    """Without an extension every frame of the connection is written directly (calls one
    at a time, and many at once through the writer task); with permessage-deflate
    accepted, none is. The actor sees the same calls either way."""
    written: list[bool] = []
    write = FrameWriter.write

    def counting(self: FrameWriter, data: bytes) -> bool:
        written.append(write(self, data))
        return written[-1]

    monkeypatch.setattr(FrameWriter, "write", counting)
    await calls_and_events_in_each_encoding(tmp_path / "data", compression=compression)
    assert len(written) >= 3 * 22  # every call, and the subscriptions
    assert set(written) == {not compression}
