"""`FrameReader`: an actor connection's server messages, read below ``recv()``.

``websockets`` hands every received message through its Sans-I/O parser (a generator
per frame), its `Assembler` (a queue) and ``recv()`` to the task that awaits it: for an
actor call that is two messages (the ``newCount`` event, then the reply), three
``recv()`` chains and a reader task's wake-up, most of what a call costs the client
besides its codec. `FrameReader` is the ``websockets`` client connection with its
``data_received`` (the asyncio protocol's entry, on the event loop) splitting the byte
stream into frames itself once the opening handshake is done:

* a whole unfragmented data frame (FIN, no RSV bits, not masked, text or binary) is
  given, once `deliver_to` named a handler, straight to that handler (synchronously,
  on the loop, in stream order), while the connection is OPEN, no extension was
  negotiated, ``websockets``' debug logging is off, and no message handed to
  ``websockets`` is still waiting for ``recv()``;
* every other frame (ping, pong, close, fragments and the frames between them, masked
  or malformed frames, text that is not UTF-8, and any frame while the conditions above
  do not hold) is handed to ``websockets``, whole, in order, exactly as it would have
  read it: ``websockets`` answers pings, resolves its keep-alive pings, runs the closing
  handshake, fails the connection on a protocol error, and queues data messages for
  ``recv()``, which the connection's reader still awaits (so a message handed over
  before the handler was set, or while others wait, comes out of ``recv()`` in order,
  and a closed connection ends ``recv()`` with ``ConnectionClosed`` as before);
* a frame split across reads waits here until it is whole (if the stream ends inside
  it, ``websockets`` sees the end at a frame boundary and reports the same abnormal
  closure, 1006); a frame whose header announces more than ``max_size`` bytes goes to
  ``websockets`` at once, with the rest of the stream (it fails the connection with
  1009, as it would have). A fragment that takes its message past ``max_size`` is
  refused (1009) once that fragment is whole, not at its header.

Before the handshake's response is complete, and after a refused handshake, all bytes
go to ``websockets`` unchanged. The response's end is its blank line (a 101 response
has no body), so the first frames, which may arrive in the same read, are split here.

A handler that raises is logged and the next frame is read as usual: an exception
must not reach the transport, which would close the connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final, Literal, overload

from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.typing import Data

__all__ = ["FrameReader", "MessageHandler"]

log = logging.getLogger("pyrivet.client")

#: Receives one whole message: bytes for a binary frame, str for a text frame.
MessageHandler = Callable[[str | bytes], object]

_OPEN: Final = State.OPEN
_BINARY: Final = 0x82  # FIN + binary, no RSV bits
_TEXT: Final = 0x81  # FIN + text, no RSV bits
_HEAD_END: Final = b"\r\n\r\n"


class FrameReader(ClientConnection):
    """A ``websockets`` client connection that reads frames itself (see the module doc).

    Made by ``websockets.asyncio.client.connect(..., create_connection=FrameReader)``;
    everything else about the connection (sending, ``recv()``, ping, close) is
    ``websockets``'.
    """

    def __init__(self, protocol: ClientProtocol, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        self._handler: MessageHandler | None = None
        #: Past the handshake's response: frames are split here.
        self._framing = False
        #: The handshake was refused or a frame is too long: everything goes to
        #: ``websockets`` from now on.
        self._passthrough = False
        #: The last bytes of the response so far (its blank line may span two reads).
        self._seen = b""
        #: The start of a frame whose end has not arrived yet.
        self._tail = b""
        #: Whole messages handed to ``websockets`` and not yet returned by ``recv()``.
        self._handed = 0
        #: A fragmented message was started (handed over) and has not ended.
        self._fragmented = False
        # ``max_size``: websockets 17 keeps it as these two limits, earlier releases as one.
        sizes = [
            size
            for name in ("max_message_size", "max_fragment_size", "max_size")
            if (size := getattr(self.protocol, name, None))
        ]
        #: The longest frame ``websockets`` accepts (``max_size``); None: no limit.
        self._limit: int | None = min(sizes) if sizes else None

    def deliver_to(self, handler: MessageHandler) -> bool:
        """Give the whole data frames read from now on to ``handler`` instead of
        ``recv()``; False (and nothing changes) if this connection cannot (an extension
        was negotiated, or ``websockets`` logs frames at debug level)."""
        protocol = self.protocol
        if protocol.extensions or self.debug:
            return False
        self._handler = handler
        return True

    @overload
    async def recv(self, decode: Literal[True]) -> str: ...

    @overload
    async def recv(self, decode: Literal[False]) -> bytes: ...

    @overload
    async def recv(self, decode: bool | None = None) -> Data: ...

    async def recv(self, decode: bool | None = None) -> Data:
        """``websockets``' ``recv()``; the message it returns was handed over here, and
        the data frames after it may go to the handler again once none is left."""
        message = await super().recv(decode)
        self._handed -= 1
        return message

    # -- asyncio.Protocol --------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._framing:
            self._split(data)
        elif self._passthrough:
            super().data_received(data)
        else:
            self._handshake(data)

    # -- the byte stream ---------------------------------------------------------------

    def _handshake(self, data: bytes) -> None:
        seen = self._seen + data
        at = seen.find(_HEAD_END)
        if at < 0:
            self._seen = seen[-3:]
            super().data_received(data)
            return
        end = at + 4 - len(self._seen)  # the response's end in ``data``
        self._seen = b""
        super().data_received(data[:end])
        rest = data[end:]
        if self.protocol.state is _OPEN:
            self._framing = True
            if rest:
                self._split(rest)
        else:
            self._passthrough = True
            if rest:
                super().data_received(rest)

    def _split(self, data: bytes) -> None:
        buf = self._tail + data if self._tail else data
        size = len(buf)
        at = 0
        handler = self._handler
        protocol = self.protocol
        fast = handler is not None and not self._handed and not self._fragmented
        fast = fast and protocol.state is _OPEN
        while size - at >= 2:
            b0 = buf[at]
            length = buf[at + 1]
            masked = length > 127  # never from a server: ``websockets`` fails the connection
            if masked:
                length -= 128
            if length < 126:
                head = 2
            elif length == 126:
                if size - at < 4:
                    break
                length = int.from_bytes(buf[at + 2 : at + 4], "big")
                head = 4
            else:
                if size - at < 10:
                    break
                length = int.from_bytes(buf[at + 2 : at + 10], "big")
                head = 10
            if masked:
                head += 4
            limit = self._limit
            if limit is not None and length > limit:
                self._tail = b""
                self._framing = False
                self._passthrough = True
                super().data_received(buf[at:])
                return
            end = at + head + length
            if end > size:
                break
            if fast and b0 in (_BINARY, _TEXT) and not masked:
                payload = buf[at + head : end]
                if b0 == _TEXT:
                    try:
                        message: str | bytes = payload.decode()
                    except UnicodeDecodeError:
                        fast = self._hand_over(b0, buf[at:end])
                        at = end
                        continue
                else:
                    message = payload
                try:
                    handler(message)  # type: ignore[misc]  # fast implies a handler
                except Exception:
                    log.exception("handling a message from the server failed")
            else:
                fast = self._hand_over(b0, buf[at:end])
            at = end
        self._tail = buf[at:] if at < size else b""

    def _hand_over(self, b0: int, frame: bytes) -> bool:
        """Give one whole frame to ``websockets``; whether the next may go to the
        handler."""
        opcode = b0 & 0x0F
        if opcode <= 2:  # continuation, text, binary
            if b0 & 0x80:  # FIN: a message is complete, for ``recv()``
                self._fragmented = False
                self._handed += 1
            else:
                self._fragmented = True
        super().data_received(frame)
        return (
            self._handler is not None
            and not self._handed
            and not self._fragmented
            and self.protocol.state is _OPEN
        )
