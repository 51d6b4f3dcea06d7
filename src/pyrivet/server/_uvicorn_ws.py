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

Runs on the event loop, in the writer task of the socket (ASGI ``send``).
"""

from __future__ import annotations

from typing import Final

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.frames import Opcode
from websockets.protocol import State

__all__ = ["MORE_KEY", "BatchingWebSocketProtocol", "frame_head"]

#: Key of a ``websocket.send`` message: another message follows at once, hold this one.
MORE_KEY: Final = "pyrivet.more"


def frame_head(opcode: int, length: int) -> bytes:
    """The header of a final, unmasked frame (a server's), as websockets writes it."""
    if length < 126:
        return bytes((0x80 | opcode, length))
    if length < 0x10000:
        return bytes((0x80 | opcode, 126)) + length.to_bytes(2, "big")
    return bytes((0x80 | opcode, 127)) + length.to_bytes(8, "big")


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
    """

    async def send(self, message: ASGISendEvent) -> None:
        conn = self.conn
        if (
            message["type"] == "websocket.send"
            and self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
            and not self.disconnected
            and self.writable.is_set()
            and conn.state is State.OPEN
            and not conn.expect_continuation_frame
            and not conn.extensions
        ):
            data = message.get("bytes")
            if data is not None:
                frame = frame_head(Opcode.BINARY, len(data)) + data
            else:
                text = str(message.get("text", "")).encode()
                frame = frame_head(Opcode.TEXT, len(text)) + text
            conn.writes.append(frame)
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
