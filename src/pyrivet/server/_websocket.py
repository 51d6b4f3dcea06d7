"""`Outbox`: the single writer of one ASGI WebSocket.

ASGI allows one ``send`` at a time per socket, while replies, events and closes come
from many tasks (action tasks, the actor's event delivery, the runtime closing the
connection). They all go through an `Outbox`: callers enqueue without blocking and
one writer task sends in order. Frames found queued together are handed to the server
with a hint that more follow (`MORE_KEY`), so `pyrivet serve` writes them to the socket
at once (see `BatchingWebSocketProtocol`). A close is the last thing sent; frames enqueued after
it are dropped. A client that does not read cannot make the server buffer without
bound: past ``limit`` queued frames the socket is closed with 1011
``connection.overloaded``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Final

from ._asgi import Send
from ._uvicorn_ws import MORE_KEY

__all__ = ["Outbox"]

log = logging.getLogger("pyrivet.server")

_OVERLOADED: Final = "connection.overloaded"


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason.encode()[:123].decode("utf-8", "ignore")


class Outbox:
    """Queue of frames for one accepted WebSocket; `run` is its writer task."""

    def __init__(self, send: Send, limit: int) -> None:
        self._send = send
        self._limit = limit
        self._queue: deque[tuple[str | bytes | _Close, asyncio.Future[None] | None]] = deque()
        self._wakeup = asyncio.Event()
        self._closing = False
        #: Set once the writer has stopped (close sent, or the client is gone).
        self.done = asyncio.Event()

    @property
    def closing(self) -> bool:
        """Whether a close was enqueued (or the writer stopped): frames are dropped."""
        return self._closing or self.done.is_set()

    def frame(self, data: str | bytes, *, wake_soon: bool = False) -> None:
        """Enqueue a frame (``str``: text, ``bytes``: binary); dropped if closing.

        ``wake_soon`` wakes the writer only after the callbacks already scheduled
        have run. An event released by a commit is queued just before the action
        that waited for the same commit resumes: that action's reply then joins the
        event in one write instead of following it in a second one.
        """
        if self.closing:
            return
        if len(self._queue) >= self._limit:
            log.warning(
                "closing a WebSocket whose client reads too slowly (%d frames queued)",
                len(self._queue),
            )
            self._drop_all()
            self.close(1011, _OVERLOADED)
            return
        self._queue.append((data, None))
        if wake_soon:
            asyncio.get_running_loop().call_soon(self._wakeup.set)
        else:
            self._wakeup.set()

    async def send(self, data: str | bytes) -> bool:
        """Enqueue a frame and wait until it was handed to the server; False if closing."""
        if self.closing:
            return False
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((data, future))
        self._wakeup.set()
        try:
            await future
        except ConnectionError:
            return False
        return True

    def close(self, code: int, reason: str = "") -> None:
        """Enqueue the close frame (once); later frames are dropped."""
        if self.closing:
            return
        self._closing = True
        self._queue.append((_Close(code, reason), None))
        self._wakeup.set()

    def _drop_all(self) -> None:
        while self._queue:
            _item, future = self._queue.popleft()
            if future is not None and not future.done():
                future.set_exception(ConnectionError("the WebSocket is closed"))

    async def run(self) -> None:
        """Send queued frames until the close is sent or the client is gone."""
        queue = self._queue
        try:
            while True:
                while not queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                item, future = queue.popleft()
                try:
                    if isinstance(item, _Close):
                        await self._send(
                            {"type": "websocket.close", "code": item.code, "reason": item.reason}
                        )
                        return
                    # More queued: let the server write this frame with the next one.
                    key = "text" if isinstance(item, str) else "bytes"
                    await self._send({"type": "websocket.send", key: item, MORE_KEY: bool(queue)})
                except Exception:
                    # The client is gone (ASGI servers raise on send after disconnect).
                    if future is not None and not future.done():
                        future.set_exception(ConnectionError("the WebSocket is closed"))
                    return
                if future is not None and not future.done():
                    future.set_result(None)
        finally:
            self._closing = True
            self._drop_all()
            self.done.set()
