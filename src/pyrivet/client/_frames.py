"""`FrameWriter`: an actor connection's client frames, written straight to its socket.

``websockets``' ``send()`` builds each frame through its Sans-I/O protocol inside an
async context manager and draws each frame's masking key with a ``getrandom`` system
call. For the small request frames of actor calls that is most of what a call costs
the client besides its codec, and one system call more per call than the official
JavaScript client makes (``ws`` draws masking keys from a pooled buffer of random
bytes, as this module does).

`FrameWriter.write` frames a whole message (FIN set, masked with 4 bytes of a pool
refilled from ``os.urandom``, RFC 6455 §5.3) and writes it to the connection's
transport when that is safe, and returns False otherwise so that the caller sends
it with ``await ws.send(...)``:

* only while the connection is OPEN (``websockets`` writes its Close frame itself,
  and nothing may follow it);
* only while the transport's write buffer is empty, so that a peer that stops reading
  gets ``websockets``' flow control (``send`` waits for the buffer to drain);
* never when the server accepted a WebSocket extension (``permessage-deflate``
  transforms frames; ``pyrivet serve`` and RivetKit decline it, other servers may not).

Frames reach the transport in the order ``write`` and ``send`` are called, since both
write synchronously on the connection's event loop (``send`` awaits only after its
write). Runs on that loop.
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING, Final

from websockets.protocol import State

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets without its C extension
    from websockets.utils import apply_mask

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

__all__ = ["FrameWriter", "MaskPool", "frame_header"]

#: Bytes of masking keys drawn per ``os.urandom`` call: 1,024 frames.
POOL_SIZE: Final = 4096
_OPCODE_TEXT: Final = 0x81  # FIN + text
_OPCODE_BINARY: Final = 0x82  # FIN + binary
_OPEN: Final = State.OPEN


class MaskPool:
    """Masking keys, 4 bytes at a time, from a buffer of ``os.urandom`` bytes."""

    __slots__ = ("_at", "_pool")

    def __init__(self) -> None:
        self._pool = b""
        self._at = POOL_SIZE

    def take(self) -> bytes:
        at = self._at
        if at >= POOL_SIZE:
            self._pool = os.urandom(POOL_SIZE)
            at = 0
        self._at = at + 4
        return self._pool[at : at + 4]


#: Shared by every connection of the process (loops of several threads included: a key
#: handed out twice would still be as unpredictable to the server, which is all that
#: masking asks).
_MASKS: Final = MaskPool()


def frame_header(length: int, *, text: bool) -> bytes:
    """The first bytes of a masked client frame of ``length`` payload bytes."""
    head1 = _OPCODE_TEXT if text else _OPCODE_BINARY
    if length < 126:
        return bytes((head1, 0x80 | length))
    if length < 65536:
        return struct.pack("!BBH", head1, 0x80 | 126, length)
    return struct.pack("!BBQ", head1, 0x80 | 127, length)


class FrameWriter:
    """Writes whole messages of one open client connection (see the module doc)."""

    __slots__ = ("_direct", "_head1", "_text", "_transport", "_ws")

    def __init__(self, ws: ClientConnection, *, text: bool) -> None:
        self._ws = ws
        self._text = text
        self._head1 = _OPCODE_TEXT if text else _OPCODE_BINARY
        self._transport = ws.transport
        response = ws.response
        self._direct = response is not None and not response.headers.get("Sec-WebSocket-Extensions")

    def write(self, data: bytes) -> bool:
        """Write ``data`` as one frame (text frames: UTF-8 bytes); False if the caller
        must send it through ``websockets`` instead."""
        transport = self._transport
        if not self._direct or self._ws.state is not _OPEN or transport.get_write_buffer_size():
            return False
        mask = _MASKS.take()
        length = len(data)
        if length < 126:  # a call's frame, nearly always: the header without a call
            head = bytes((self._head1, 0x80 | length))
        else:
            head = frame_header(length, text=self._text)
        transport.write(head + mask + apply_mask(data, mask))
        return True
