"""`FrameReader`: server frames read below ``recv()``, and what still goes to websockets.

The connection runs over one end of a socket pair, as ``connect()`` would set it up;
the server's bytes are fed to ``data_received`` in chosen pieces (as the transport
would, one read at a time), and what the client writes back (its handshake, pongs,
Close frames) is read from the other end.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.streams import StreamReader
from websockets.uri import parse_uri
from websockets.utils import accept_key

from pyrivet.client._reader import FrameReader

from .server_support import calls_and_events_in_each_encoding


def frame(opcode: Opcode, data: bytes, *, fin: bool = True, mask: bool = False) -> bytes:
    """A frame as a server writes it (unmasked unless ``mask``)."""
    return Frame(opcode, data, fin=fin).serialize(mask=mask)


def binary(data: bytes) -> bytes:
    return frame(Opcode.BINARY, data)


def response(key: str, status: str = "101 Switching Protocols", extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(key)}\r\n{extra}\r\n"
    ).encode()


class Peer:
    """The server's end: the client's connection, what it handled, what it wrote."""

    def __init__(self, conn: FrameReader, sock: socket.socket) -> None:
        self.conn = conn
        self.sock = sock
        self.handled: list[str | bytes] = []
        self._written = StreamReader()

    def feed(self, data: bytes, *pieces: int) -> None:
        """Give ``data`` to the connection in reads of the sizes ``pieces`` (cycled)."""
        sizes = pieces or (len(data),)
        at, i = 0, 0
        while at < len(data):
            size = sizes[i % len(sizes)]
            self.conn.data_received(data[at : at + size])
            at += size
            i += 1

    async def client_frames(self) -> list[Frame]:
        """The frames the client wrote since the last call (after its handshake)."""
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0.01)
        try:
            while chunk := await asyncio.wait_for(loop.sock_recv(self.sock, 65536), 0.05):
                self._written.feed_data(chunk)
        except TimeoutError:
            pass
        frames = []
        while self._written.buffer:
            parser = Frame.parse(self._written.read_exact, mask=True, max_size=None, extensions=[])
            try:
                next(parser)
            except StopIteration as done:
                frames.append(done.value)
                continue
            break
        return frames


async def open_peer(
    first: bytes = b"", *, pieces: tuple[int, ...] = (), max_size: int = 2**20, deliver: bool = True
) -> Peer:
    """A connection past its handshake; ``first``: bytes in the response's read(s)."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    protocol = ClientProtocol(parse_uri("ws://actor.test/connect"), max_size=max_size)
    conn = FrameReader(protocol, ping_interval=None, close_timeout=0.5)
    await loop.create_connection(lambda: conn, sock=ours)
    peer = Peer(conn, theirs)
    shake = asyncio.ensure_future(conn.handshake())
    request = b""
    while not request.endswith(b"\r\n\r\n"):
        request += await loop.sock_recv(theirs, 65536)
    key = conn.request.headers["Sec-WebSocket-Key"] if conn.request else ""
    peer.feed(response(key) + first, *pieces)
    await shake
    assert conn.state is State.OPEN
    if deliver:
        assert conn.deliver_to(peer.handled.append)
    return peer


@pytest.fixture
async def peers() -> AsyncIterator[list[Peer]]:
    made: list[Peer] = []
    yield made
    for peer in made:
        peer.conn.transport.abort()
        peer.sock.close()


async def test_whole_data_frames_go_to_the_handler_in_order(peers: list[Peer]) -> None:
    peer = await open_peer()
    peers.append(peer)
    peer.feed(binary(b"event") + binary(b"reply") + frame(Opcode.TEXT, "é".encode()))
    assert peer.handled == [b"event", b"reply", "é"]
    assert peer.conn._handed == 0


@pytest.mark.parametrize("piece", [1, 2, 3, 5, 11, 127, 1000])
async def test_a_frame_split_across_reads_is_handled_once_whole(
    peers: list[Peer], piece: int
) -> None:
    """Every header length form (7-bit, 16-bit, 64-bit), cut at every kind of place."""
    messages = [b"", b"a" * 5, b"b" * 125, b"c" * 126, b"d" * 65535, b"e" * 65536 + b"f"]
    peer = await open_peer()
    peers.append(peer)
    peer.feed(b"".join(binary(m) for m in messages), piece)
    assert peer.handled == messages
    assert peer.conn._tail == b""


async def test_frames_in_the_handshake_read_and_before_the_handler_come_from_recv_first(
    peers: list[Peer],
) -> None:
    """A message handed to websockets before `deliver_to` (the Init) is read by recv();
    until it is, later messages queue behind it, then the handler takes over."""
    peer = await open_peer(binary(b"init") + binary(b"half")[:3], pieces=(7,), deliver=False)
    peers.append(peer)
    assert peer.conn.deliver_to(peer.handled.append)
    peer.feed(binary(b"half")[3:] + binary(b"next"))
    assert peer.handled == []
    assert await peer.conn.recv() == b"init"
    assert await peer.conn.recv() == b"half"
    assert await peer.conn.recv() == b"next"
    peer.feed(binary(b"fast"))
    assert peer.handled == [b"fast"]


async def test_fragmented_messages_and_control_frames_between_them_go_to_websockets(
    peers: list[Peer],
) -> None:
    peer = await open_peer()
    peers.append(peer)
    stream = (
        frame(Opcode.BINARY, b"ab", fin=False)
        + frame(Opcode.PING, b"p1")
        + frame(Opcode.CONT, b"cd", fin=False)
        + frame(Opcode.PONG, b"unsolicited")
        + frame(Opcode.CONT, b"ef")
        + binary(b"after")  # waits behind the fragmented message for recv()
        + frame(Opcode.PING, b"p2")
    )
    peer.feed(stream, 4)
    assert peer.handled == []
    assert await peer.conn.recv() == b"abcdef"
    assert await peer.conn.recv() == b"after"
    pongs = await peer.client_frames()
    assert [(f.opcode, f.data) for f in pongs] == [(Opcode.PONG, b"p1"), (Opcode.PONG, b"p2")]
    peer.feed(frame(Opcode.TEXT, b"x", fin=False) + frame(Opcode.CONT, b"y"))
    peer.feed(binary(b"queued"))
    assert peer.handled == []
    assert await peer.conn.recv() == "xy"
    assert await peer.conn.recv() == b"queued"
    peer.feed(binary(b"fast again"))
    assert peer.handled == [b"fast again"]


async def test_a_pong_reaches_websockets_keepalive(peers: list[Peer]) -> None:
    peer = await open_peer()
    peers.append(peer)
    waiter = await peer.conn.ping(b"k1")
    [ping] = await peer.client_frames()
    assert (ping.opcode, ping.data) == (Opcode.PING, b"k1")
    peer.feed(binary(b"r") + frame(Opcode.PONG, b"k1") + binary(b"s"), 3)
    assert await asyncio.wait_for(waiter, 1) >= 0
    assert peer.handled == [b"r", b"s"]


async def test_a_close_frame_closes_and_nothing_after_it_is_handled(peers: list[Peer]) -> None:
    peer = await open_peer()
    peers.append(peer)
    close = frame(Opcode.CLOSE, Close(4000, "going").serialize())
    peer.feed(binary(b"last") + close + binary(b"too late"), 5)
    assert peer.handled == [b"last"]
    assert peer.conn.state is State.CLOSING
    [echo] = await peer.client_frames()
    assert echo.opcode is Opcode.CLOSE
    peer.sock.close()
    with pytest.raises(ConnectionClosed) as caught:
        await peer.conn.recv()
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 4000


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (frame(Opcode.TEXT, b"\xff\xfe"), 1007),  # not UTF-8
        (frame(Opcode.BINARY, b"masked", mask=True), 1002),  # servers do not mask
        (frame(Opcode.CONT, b"no start"), 1002),
        (frame(Opcode.BINARY, b"a", fin=False) + binary(b"not a continuation"), 1002),
        (bytes((0xC2, 1)) + b"x", 1002),  # RSV1 without an extension
        (binary(b"z" * 2000)[:300], 1009),  # longer than max_size: at its header
    ],
)
async def test_frames_websockets_refuses_fail_the_connection_as_before(
    peers: list[Peer], data: bytes, code: int
) -> None:
    peer = await open_peer(max_size=1000)
    peers.append(peer)
    peer.feed(binary(b"ok") + data, 3)
    assert peer.handled == [b"ok"]
    # websockets decodes text in recv(), and fails the connection there (1007)
    reading = asyncio.ensure_future(peer.conn.recv())
    closes = [f for f in await peer.client_frames() if f.opcode is Opcode.CLOSE]
    assert [Close.parse(f.data).code for f in closes] == [code]
    peer.feed(binary(b"ignored"))
    assert peer.handled == [b"ok"]
    peer.sock.close()
    with pytest.raises(ConnectionClosed):
        await reading


async def test_a_frame_too_long_before_the_handler_is_refused_at_its_header(
    peers: list[Peer],
) -> None:
    peer = await open_peer(max_size=1000, deliver=False)
    peers.append(peer)
    peer.feed(binary(b"z" * 5000)[:10])
    [close] = await peer.client_frames()
    assert Close.parse(close.data).code == 1009


async def test_the_stream_ending_inside_a_frame_is_an_abnormal_closure(
    peers: list[Peer],
) -> None:
    peer = await open_peer()
    peers.append(peer)
    peer.feed(binary(b"whole") + binary(b"cut short")[:5])
    peer.sock.close()
    with pytest.raises(ConnectionClosed) as caught:
        await peer.conn.recv()
    assert caught.value.rcvd is None
    assert peer.conn.protocol.close_code == 1006
    assert peer.handled == [b"whole"]


async def test_a_handler_that_raises_is_logged_and_the_next_frame_is_read(
    peers: list[Peer], caplog: pytest.LogCaptureFixture
) -> None:
    peer = await open_peer(deliver=False)
    peers.append(peer)

    def handler(message: Any) -> None:
        if message == b"bad":
            raise ValueError("boom")
        peer.handled.append(message)

    assert peer.conn.deliver_to(handler)
    with caplog.at_level(logging.ERROR, logger="pyrivet.client"):
        peer.feed(binary(b"bad") + binary(b"good"))
    assert peer.handled == [b"good"]
    assert "handling a message from the server failed" in caplog.text
    assert peer.conn.state is State.OPEN


async def test_no_handler_with_an_extension_and_a_refused_handshake_passes_through(
    peers: list[Peer],
) -> None:
    peer = await open_peer(deliver=False)
    peers.append(peer)
    peer.conn.protocol.extensions = [PerMessageDeflate(False, False, 15, 15)]
    assert peer.conn.deliver_to(peer.handled.append) is False
    peer.feed(binary(b"m"))
    assert await peer.conn.recv() == b"m"
    assert peer.handled == []

    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    protocol = ClientProtocol(parse_uri("ws://actor.test/connect"))
    conn = FrameReader(protocol, ping_interval=None, close_timeout=0.5)
    await loop.create_connection(lambda: conn, sock=ours)
    shake = asyncio.ensure_future(conn.handshake())
    await asyncio.sleep(0.01)
    refused = b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope"
    for i in range(len(refused)):  # the blank line spans reads
        conn.data_received(refused[i : i + 1])
    with pytest.raises(Exception, match="404"):
        await shake
    assert conn._passthrough and not conn._framing
    conn.transport.abort()
    theirs.close()


@pytest.mark.parametrize("compression", [False, True])
async def test_a_real_servers_replies_and_events_skip_recv_unless_deflated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compression: bool
) -> None:
    """Over ``pyrivet serve``'s app, every reply and event of a connection reaches the
    handler straight from the reader, unless permessage-deflate was accepted; the calls
    and events are the same either way."""
    handled: list[object] = []
    deliver_to = FrameReader.deliver_to

    def counting(self: FrameReader, handler: Any) -> bool:
        def wrapped(message: Any) -> object:
            handled.append(message)
            return handler(message)

        return deliver_to(self, wrapped)

    monkeypatch.setattr(FrameReader, "deliver_to", counting)
    await calls_and_events_in_each_encoding(tmp_path / "data", compression=compression)
    assert len(handled) == (0 if compression else 3 * 42)
    assert {type(m) for m in handled[:42]} <= {str}  # json: text frames
    assert {type(m) for m in handled[42:]} <= {bytes}
