"""`BatchingWebSocketProtocol`: uvicorn's WebSocket protocol, with frames written in batches.

uvicorn writes every ``websocket.send`` to the socket at once, and uvloop's
``transport.write`` makes one ``write`` system call per frame. A WebSocket action
usually answers with two frames (the event it broadcast, then its reply), queued
together in the connection's `Outbox`; written one by one, they cost the server two
system calls and the client two wake-ups. With this protocol, a ``websocket.send``
message carrying ``MORE_KEY: True`` is framed but held back, and goes out in the same
``write`` as the next message sent without it (a frame or a close).

The key is a hint, not a contract: any other ASGI server ignores keys it does not know
and writes each frame as it comes, so an app that sets it behaves the same everywhere.
The `Outbox` sets it only when another item is already queued behind the frame and
is sent right after it, without the writer waiting in between. When the protocol cannot
hold a frame back (the handshake is not done, the socket is closing, writing is
paused), it sends it the ordinary way, which also writes whatever was held back.

The protocol also frames outgoing data and reads a lone incoming frame itself, and
keeps received messages in a lighter queue (see the class doc): the same bytes and
messages as uvicorn and websockets, with fewer Python calls per message. An app may
take the messages it reads itself straight from ``data_received`` instead of through
ASGI ``receive`` (`DirectReceive`, in the scope's extensions under `DIRECT_EXTENSION`):
one task wake-up and one loop iteration less per message. On the way out, `DirectSend`
(under `DIRECT_SEND_EXTENSION`) writes a batch of data frames in one ``write`` from the
caller, without an ASGI ``send`` coroutine and message per frame.

Runs on the event loop: ``send`` in the writer task of the socket (ASGI ``send``),
``data_received`` in the transport's callbacks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, Final, cast

from uvicorn._types import ASGIReceiveEvent, ASGISendEvent
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.protocol import State

try:  # websockets' C helper, as its own parser uses when built
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - a websockets built without it
    from websockets.utils import apply_mask

__all__ = [
    "DIRECT_EXTENSION",
    "DIRECT_SEND_EXTENSION",
    "MORE_KEY",
    "BatchingWebSocketProtocol",
    "DirectReceive",
    "DirectSend",
    "FrameBoundary",
    "frame_head",
    "parse_client_frame",
]

#: Key of a ``websocket.send`` message: another message follows at once, hold this one.
MORE_KEY: Final = "pyrivet.more"
#: Key of the scope's ``extensions`` holding the socket's `DirectReceive`.
DIRECT_EXTENSION: Final = "pyrivet.direct_receive"
#: Key of the scope's ``extensions`` holding the socket's `DirectSend`.
DIRECT_SEND_EXTENSION: Final = "pyrivet.direct_send"
#: Type of the message ``receive`` returns once `DirectReceive.detach` stopped reading.
DIRECT_STOPPED: Final = "pyrivet.direct_receive.stopped"


def frame_head(opcode: int, length: int) -> bytes:
    """The header of a final, unmasked frame (a server's), as websockets writes it."""
    if length < 126:
        return bytes((0x80 | opcode, length))
    if length < 0x10000:
        return bytes((0x80 | opcode, 126)) + length.to_bytes(2, "big")
    return bytes((0x80 | opcode, 127)) + length.to_bytes(8, "big")


def parse_client_frame(data: bytes, max_size: int | None) -> tuple[bool, bytes] | None:
    """``(is_text, unmasked payload)`` when ``data`` is exactly one final, masked text
    or binary frame without RSV bits, of at most ``max_size`` bytes and under 64 KiB;
    None for anything else (websockets' parser then takes it)."""
    size = len(data)
    if size < 6:
        return None
    first, second = data[0], data[1]
    if (first != 0x81 and first != 0x82) or second < 0x80:
        return None
    length = second & 0x7F
    start = 2
    if length == 126:
        length = int.from_bytes(data[2:4], "big")
        start = 4
    elif length == 127:
        return None
    if start + 4 + length != size or (max_size is not None and length > max_size):
        return None
    return first == 0x81, apply_mask(data[start + 4 :], data[start : start + 4])


class FrameBoundary:
    """Follows where the frames of a client's byte stream end, chunk by chunk.

    ``at_boundary`` is True when the bytes fed so far end exactly where a frame ends,
    so that the next chunk starts with a frame's first byte. Only the frame headers are
    read (the length and the mask bit), never the payloads. Runs on the event loop, in
    ``data_received``; it cannot raise.

    Why: websockets' parser consumes a frame in pieces (header, extended length, mask,
    payload) and may wait with an empty buffer between them; a chunk that starts in the
    middle of a frame must never be taken for a frame of its own.
    """

    __slots__ = ("_head", "_skip")

    def __init__(self) -> None:
        #: The bytes of a header cut by the end of a chunk.
        self._head = b""
        #: Payload bytes of the current frame still to come.
        self._skip = 0

    @property
    def at_boundary(self) -> bool:
        return not self._skip and not self._head

    def feed(self, data: bytes) -> None:
        """Account for ``data``, the next chunk of the stream."""
        size = len(data)
        pos = min(self._skip, size)
        self._skip -= pos
        while pos < size:
            head = self._head + data[pos : pos + 14]
            if len(head) < 2:
                self._head = head
                return
            length = head[1] & 0x7F
            head_size = 2 + (2 if length == 126 else 8 if length == 127 else 0)
            head_size += 4 if head[1] & 0x80 else 0
            if len(head) < head_size:
                self._head = head
                return
            if length == 126:
                length = int.from_bytes(head[2:4], "big")
            elif length == 127:
                length = int.from_bytes(head[2:10], "big")
            pos += head_size - len(self._head)
            self._head = b""
            take = min(length, size - pos)
            pos += take
            self._skip = length - take


class _Inbox:
    """The received-message queue of one socket: what uvicorn uses of `asyncio.Queue`
    (``put_nowait``, ``get``, ``empty``) for one reader, without its unbounded-queue
    bookkeeping (``join`` counters, putter wake-ups) on every message."""

    __slots__ = ("_items", "_loop", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._items: deque[ASGIReceiveEvent] = deque()
        self._loop = loop
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: ASGIReceiveEvent) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> ASGIReceiveEvent:
        while not self._items:
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = self._loop.create_future()
            await waiter
        return self._items.popleft()


class DirectReceive:
    """Hands a socket's data messages to the app as they arrive.

    After `attach`, a data message the protocol reads itself (a lone frame, see
    `BatchingWebSocketProtocol`) while no message waits in the ASGI receive queue goes
    to the handler, called in ``data_received`` with the payload (bytes: a binary
    message, str: a text message). Every other message (one that websockets' parser
    read, one behind a queued message) and the disconnect still come through
    ``receive``, so the app sees the messages in the order they came. The handler runs
    in the transport's callback: it must not block or raise. `detach` ends it; with
    ``stop`` it also queues a message of type `DIRECT_STOPPED`, so that an app
    waiting in ``receive`` stops reading (later messages wait in the queue unread).
    """

    __slots__ = ("_protocol",)

    def __init__(self, protocol: BatchingWebSocketProtocol) -> None:
        self._protocol = protocol

    def attach(self, handler: Callable[[bytes | str], None]) -> None:
        self._protocol.direct = handler

    def detach(self, *, stop: bool = False) -> None:
        protocol = self._protocol
        if protocol.direct is None:
            return
        protocol.direct = None
        if stop:
            protocol.queue.put_nowait(cast(ASGIReceiveEvent, {"type": DIRECT_STOPPED}))


class DirectSend:
    """Writes data frames to a socket from the caller, without ASGI ``send``.

    `write` frames a batch of messages (bytes: binary, str: text) and writes them in
    one ``write``, as ``send`` does for messages marked with `MORE_KEY` followed by one
    without it: the same bytes, without a coroutine, a message dict and the checks per
    frame. It writes only while the socket is open for data frames as ``send``'s own
    fast path requires (handshake done, not closing or closed, writing not paused, no
    extensions); otherwise it returns False having done nothing, and the caller
    sends the ordinary way. Called on the event loop, by the app's writer of the socket
    (it must not interleave with a ``send`` in progress). Errors of the transport's
    ``write`` propagate, as they do from ``send``.
    """

    __slots__ = ("_protocol",)

    def __init__(self, protocol: BatchingWebSocketProtocol) -> None:
        self._protocol = protocol

    def write(self, frames: list[bytes | str]) -> bool:
        """Write ``frames`` in one ``write``: True, or False when nothing was written."""
        protocol = self._protocol
        if not protocol.can_frame():
            return False
        writes = protocol.conn.writes
        for data in frames:
            writes.append(_framed(data))
        protocol.transport.write(b"".join(protocol.conn.data_to_send()))
        return True


def _framed(data: bytes | str) -> bytes:
    """A data message as one final unmasked frame (bytes: binary, str: text)."""
    if isinstance(data, str):
        text = data.encode()
        return frame_head(Opcode.TEXT, len(text)) + text
    return frame_head(Opcode.BINARY, len(data)) + data


class BatchingWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol that honours `MORE_KEY` (see the module doc)
    and frames data itself.

    A ``websocket.send`` on an open connection without extensions (no compression) is
    framed here and put on the websockets connection's outgoing list, where websockets'
    ``send_binary`` / ``send_text`` would put the same bytes after building a ``Frame``
    and serializing it through a ``BytesIO`` (that and uvicorn's checks, its
    ``asyncio.Event`` wait and its exception handling were ~10 Python calls per frame).
    Anything else (the handshake, closes, a paused or closed socket, compression) takes
    uvicorn's own path.

    Likewise on the way in: a chunk of data that is exactly one complete text or binary
    frame, starting where the client's previous frame ended (`FrameBoundary`), on an
    open connection without extensions and with nothing buffered in websockets'
    parser, is unmasked here and queued for the app (websockets' parser
    would yield the same payload through a generator, a ``Frame`` and an event list).
    Reading is paused once a message is queued while another still waits for the app
    (uvicorn pauses after every message and resumes when the app takes it: a pause and
    a resume through uvloop per message of a client that waits for each reply; libuv
    folds them, so they cost instructions, not system calls). The received messages
    wait in `_Inbox`: `asyncio.Queue` also looks up the running loop for each wait, a
    ``getpid`` system call in Python 3.11.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox(self.loop)  # type: ignore[assignment]
        #: Where the client's frames end (see `FrameBoundary`); None once that is not
        #: known (the upgrade request did not come in one chunk): every chunk then
        #: goes to websockets' parser.
        self._frames: FrameBoundary | None = FrameBoundary()
        #: Whether the upgrade request went by (what follows it is frames).
        self._request_seen = False
        #: The app's handler of data messages (`DirectReceive`), if it gave one.
        self.direct: Callable[[bytes | str], None] | None = None

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        extensions = self.scope.get("extensions")
        if extensions is not None:
            extensions[DIRECT_EXTENSION] = DirectReceive(self)  # type: ignore[assignment]
            extensions[DIRECT_SEND_EXTENSION] = DirectSend(self)  # type: ignore[assignment]

    def can_frame(self) -> bool:
        """Whether a data message can be framed here and written at once (see the
        class doc): the connection is open, not closing, writable, without extensions
        and not in the middle of a fragmented message."""
        conn = self.conn
        return (
            self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
            and not self.disconnected
            and self.writable.is_set()
            and conn.state is State.OPEN
            and not conn.expect_continuation_frame
            and not conn.extensions
        )

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        frames = self._frames
        if (
            frames is not None
            and frames.at_boundary
            and self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
            and conn.state is State.OPEN
            and not conn.extensions
            and conn.current_size is None
            and not conn.reader.buffer
            and conn.parser_exc is None
            and conn.max_fragment_size is None
        ):
            frame = parse_client_frame(data, conn.max_message_size)
            if frame is not None:
                is_text, payload = frame
                body: bytes | str = payload
                if is_text:
                    try:
                        body = payload.decode()
                    except UnicodeDecodeError:
                        super().data_received(data)  # websockets and uvicorn close it
                        return  # a whole frame: the stream is still at a boundary
                queue = self.queue
                backlog = not queue.empty()
                direct = self.direct
                if direct is not None and not backlog:
                    direct(body)
                    return
                message: ASGIReceiveEvent = (
                    {"type": "websocket.receive", "text": body}
                    if isinstance(body, str)
                    else {"type": "websocket.receive", "bytes": body}
                )
                queue.put_nowait(message)
                if backlog and not self.read_paused:
                    self.read_paused = True
                    self.transport.pause_reading()
                return
        self._follow_frames(data)
        super().data_received(data)

    def _follow_frames(self, data: bytes) -> None:
        """Account for a chunk that goes to websockets' parser (see `FrameBoundary`)."""
        frames = self._frames
        if frames is None:
            return
        if not self._request_seen:
            # uvicorn hands the upgrade request over in one chunk; frames follow it.
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self._frames = None
                return
            self._request_seen = True
            data = data[end + 4 :]
        frames.feed(data)

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "websocket.send" and self.can_frame():
            data = message.get("bytes")
            conn = self.conn
            conn.writes.append(_framed(data if data is not None else str(message.get("text", ""))))
            if not message.get(MORE_KEY):
                self.transport.write(b"".join(conn.data_to_send()))
            return
        if (
            message.get(MORE_KEY)
            and message["type"] == "websocket.send"
            and self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
            and not self.disconnected
            and self.writable.is_set()
        ):
            # Framed by websockets (compression): held back the same way.
            conn = self.conn
            data = message.get("bytes")
            try:
                if data is not None:
                    conn.send_binary(data)
                else:
                    conn.send_text(str(message.get("text", "")).encode())
            except InvalidState:
                raise ClientDisconnected() from None
            return
        await super().send(message)
