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

__all__ = ["MORE_KEY", "BatchingWebSocketProtocol"]

#: Key of a ``websocket.send`` message: another message follows at once, hold this one.
MORE_KEY: Final = "pyrivet.more"


class BatchingWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol that honours `MORE_KEY` (see the module doc)."""

    async def send(self, message: ASGISendEvent) -> None:
        if (
            message.get(MORE_KEY)
            and message["type"] == "websocket.send"
            and self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
            and not self.disconnected
            and self.writable.is_set()
        ):
            data = message.get("bytes")
            try:
                if data is not None:
                    self.conn.send_binary(data)
                else:
                    self.conn.send_text(str(message.get("text", "")).encode())
            except InvalidState:
                raise ClientDisconnected() from None
            return
        await super().send(message)
