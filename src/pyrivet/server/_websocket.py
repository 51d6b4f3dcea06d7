"""`Outbox`: the single writer of one ASGI WebSocket.

ASGI allows one ``send`` at a time per socket, while replies, events and closes come
from many tasks (action tasks, the actor's event delivery, the runtime closing the
connection). They all go through an `Outbox`: callers enqueue without blocking and
one writer task sends in order. One shortcut: an action's reply (`Outbox.reply`) sends
the queue from the action's own task when the writer is idle, one task hop and one
event-loop iteration sooner; the writer waits meanwhile, so order and the
one-``send``-at-a-time rule hold. Frames found queued together are handed to the server
with a hint that more follow (`MORE_KEY`), so `pyrivet serve` writes them to the socket
at once (see `BatchingWebSocketProtocol`); given the socket's `DirectSend` (`pyrivet
serve`), a batch of frames is written with one call and no ``send`` coroutine per frame,
and a reply with `reply_now`, without a coroutine at all. A close is the last thing
sent; frames enqueued after it are dropped. A client that does not read cannot make
the server buffer without bound: past ``limit`` queued frames the socket is closed with
1011 ``connection.overloaded``.

With ``reply_first``, a reply is queued ahead of the events a commit released that are
still queued (replies keep their order among themselves, events theirs). Behind the Rivet
Engine's gateway this matters: the gateway's socket to the client holds a message sent
right after another until the client acknowledges the first (Nagle's algorithm), and a
client that only reads an event acknowledges it ~40 ms later (delayed ACK). An event
followed by the reply it came with cost every such call those 40 ms; a reply followed
by its event costs nothing, because the client's next request carries the
acknowledgement.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from .._util.tasks import TaskSupervisor
from ._asgi import Send
from ._uvicorn_ws import MORE_KEY, DirectSend

__all__ = ["Flag", "Outbox"]

log = logging.getLogger("pyrivet.server")

_OVERLOADED: Final = "connection.overloaded"


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason.encode()[:123].decode("utf-8", "ignore")


class Flag:
    """A set-once flag to wait on (what `asyncio.Event` does, in ~70 bytes instead of
    ~900: a parked socket keeps one)."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        if self._set:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        await waiter


_Item = tuple["str | bytes | _Close", "asyncio.Future[None] | None"]


class Outbox:
    """Queue of frames for one accepted WebSocket; `run` is its writer task. Created on
    the event loop that serves the socket (it keeps that loop).

    With ``tasks``, `start` runs the writer as a task they own, and `park` lets it end
    while nothing is queued (a hibernated connection keeps no task); the next frame or
    close then starts a new one.
    """

    __slots__ = (
        "_broken",
        "_closing",
        "_deferred",
        "_deferring",
        "_direct",
        "_limit",
        "_loop",
        "_parked",
        "_queue",
        "_released_at",
        "_reply_first",
        "_running",
        "_send",
        "_sending",
        "_tasks",
        "_waiter",
        "done",
    )

    def __init__(
        self,
        send: Send,
        limit: int,
        tasks: TaskSupervisor | None = None,
        *,
        reply_first: bool = False,
        direct: DirectSend | None = None,
    ) -> None:
        """``direct``: the socket's `DirectSend`, if its server offers one: data frames
        are then written through it whenever it takes them (else through ``send``)."""
        self._send = send
        self._direct = direct
        self._limit = limit
        #: The loop it runs on (created on it): `asyncio.get_running_loop` makes a
        #: ``getpid`` system call on every call in Python 3.11.
        self._loop = asyncio.get_running_loop()
        self._tasks = tasks
        self._reply_first = reply_first
        #: Frames not taken by the writer yet (it takes them all at once).
        self._queue: list[_Item] = []
        #: With ``reply_first``: where in ``_queue`` the first released event waits
        #: (None: no event queued since the writer last took the queue).
        self._released_at: int | None = None
        #: Resolved to wake the writer waiting for frames.
        self._waiter: asyncio.Future[None] | None = None
        self._closing = False
        self._parked = False
        self._running = False
        #: A `reply` is sending a batch from its action's task: the writer waits.
        self._sending = False
        #: A `reply`'s send failed or sent the close: the writer stops.
        self._broken = False
        #: Between `defer_wakes` and `resume_wakes`; ``_deferred``: a wake was put off.
        self._deferring = False
        self._deferred = False
        #: Set once the writer has stopped (close sent, or the client is gone).
        self.done = Flag()

    @property
    def closing(self) -> bool:
        """Whether a close was enqueued (or the writer stopped): frames are dropped."""
        return self._closing or self.done.is_set()

    def frame(self, data: str | bytes, *, wake_soon: bool = False, reply: bool = False) -> None:
        """Enqueue a frame (``str``: text, ``bytes``: binary); dropped if closing.

        ``wake_soon`` (an event released by a commit) wakes the writer only after the
        callbacks already scheduled have run. Such an event is queued just before the
        action that waited for the same commit resumes: that action's reply then joins
        the event in one write instead of following it in a second one. ``reply``
        marks an action's reply: with ``reply_first`` it goes ahead of those events
        (see the module doc).
        """
        if not self._enqueue(data, wake_soon, reply):
            return
        if not wake_soon:
            self._wake()
        elif self._deferring:
            self._deferred = True
        else:
            self._loop.call_soon(self._wake_if_queued)

    def defer_wakes(self) -> None:
        """Until `resume_wakes`, frames queued with ``wake_soon`` do not schedule the
        writer's wake-up: the caller is about to queue a reply, which sends them with
        it (`reply`). For an action run in the task that read its request: its events
        and its reply then leave in one write without a loop iteration in between."""
        self._deferring = True

    def resume_wakes(self) -> None:
        """End `defer_wakes`; if what was queued meanwhile is still queued (no reply
        took it), wake the writer as `frame` would have."""
        self._deferring = False
        if self._deferred:
            self._deferred = False
            if self._queue:
                self._loop.call_soon(self._wake_if_queued)

    def reply_now(self, data: str | bytes) -> bool:
        """`reply` without a coroutine, through the socket's `DirectSend`: False (nothing
        done) when the outbox has none; the caller then awaits `reply`.

        Otherwise the reply is handled here: when the writer task is idle, it and the
        frames queued before it are written at once from the caller; when the writer
        is busy, parked or closing, or the socket does not take direct writes now
        (writing paused, closing), it is queued for the writer (`frame`); when the
        write fails (the client is gone), the writer stops as after a failed `reply`.
        """
        if self._direct is None:
            return False
        if not self._enqueue(data, False, True):
            return True
        if not self._writer_idle():
            self._wake()
            return True
        batch = self._queue
        written = self._write_direct(batch)
        if written is None:
            self._wake()  # the writer sends it the ordinary way
            return True
        self._queue = []
        self._released_at = None
        if not written:
            self._closing = True
            self._broken = True
            self._wake()
        return True

    async def reply(self, data: str | bytes) -> None:
        """Enqueue an action's reply (`frame` with ``reply=True``) and, when the writer
        task is idle, send the queue from the caller's task.

        For the only action in flight on a connection: its reply (and the event frames
        queued before it) then leave in this loop iteration, not in the writer's next
        one (one task hop and one loop iteration less per call). While the caller sends,
        the writer leaves the queue alone; frames queued meanwhile go out after. When
        the writer is busy, parked or closing, this is `frame`. If the send fails (the
        client is gone) the writer stops as it would have.
        """
        if not self._enqueue(data, False, True):
            return
        if not self._writer_idle():
            self._wake()
            return
        batch, self._queue = self._queue, []
        self._released_at = None
        self._sending = True
        try:
            if not await self._send_batch(batch):
                self._closing = True
                self._broken = True
        finally:
            self._sending = False
            if self._queue or self._broken or self._parked:
                self._wake()

    def _writer_idle(self) -> bool:
        """Whether the writer task waits for work and nothing else sends, parks or
        closes: a reply may then be sent from the caller (`reply`, `reply_now`)."""
        waiter = self._waiter
        return not (
            waiter is None or waiter.done() or self._sending or self._closing or self._parked
        )

    def _enqueue(self, data: str | bytes, wake_soon: bool, reply: bool) -> bool:
        """Queue a frame (see `frame`) without waking the writer; False if it was dropped
        (closing, or the queue was full: the socket is then closing)."""
        if self._closing or self.done.is_set():  # `closing`, one call less per frame
            return False
        if len(self._queue) >= self._limit:
            log.warning(
                "closing a WebSocket whose client reads too slowly (%d frames queued)",
                len(self._queue),
            )
            self._drop(self._queue)
            self._queue = []
            self.close(1011, _OVERLOADED)
            return False
        queue = self._queue
        if self._reply_first:
            released_at = self._released_at
            if reply and released_at is not None:
                queue.insert(released_at, (data, None))
                self._released_at = released_at + 1
                return True
            if wake_soon and released_at is None:
                self._released_at = len(queue)
        queue.append((data, None))
        return True

    async def send(self, data: str | bytes) -> bool:
        """Enqueue a frame and wait until it was handed to the server; False if closing."""
        if self.closing:
            return False
        future: asyncio.Future[None] = self._loop.create_future()
        self._queue.append((data, future))
        self._wake()
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
        self._wake()

    def start(self) -> None:
        """Run the writer as a task of ``tasks``."""
        assert self._tasks is not None
        self._running = True
        self._tasks.spawn(self.run(), name="ws-writer")

    def park(self) -> None:
        """Let the writer task end while the queue is empty (see the class doc)."""
        self._parked = True
        self._wake()

    def _wake_if_queued(self) -> None:
        """`_wake`, scheduled by an event frame: not needed when a reply sent the queue
        from its action's task in the meantime (`reply`)."""
        if self._queue:
            self._wake()

    def _wake(self) -> None:
        if self._parked and self._queue:
            self._parked = False
            if not self._running and self._tasks is not None:
                self.start()
                return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @staticmethod
    def _drop(items: list[_Item]) -> None:
        for _item, future in items:
            if future is not None and not future.done():
                future.set_exception(ConnectionError("the WebSocket is closed"))

    def _write_direct(self, batch: list[_Item]) -> bool | None:
        """Write ``batch`` through the `DirectSend`: True when written, False when the
        client is gone (the batch is dropped), None when the batch holds the close or
        the socket does not take direct writes now (nothing was done)."""
        direct = self._direct
        assert direct is not None
        frames: list[str | bytes] = []
        for item, _future in batch:
            if type(item) is _Close:
                return None
            frames.append(item)  # type: ignore[arg-type]  # (not a _Close: checked)
        try:
            if not direct.write(frames):
                return None
        except Exception:
            # The client is gone (the transport's write failed), as `_send_batch` sees it.
            self._drop(batch)
            return False
        for _item, future in batch:
            if future is not None and not future.done():
                future.set_result(None)
        return True

    async def _send_batch(self, batch: list[_Item]) -> bool:
        """Send ``batch`` in order; False once the close was sent or the client is gone
        (the frames not sent are dropped)."""
        if self._direct is not None:
            written = self._write_direct(batch)
            if written is not None:
                return written
        last = len(batch) - 1
        for i, (item, future) in enumerate(batch):
            try:
                if isinstance(item, _Close):
                    await self._send(
                        {"type": "websocket.close", "code": item.code, "reason": item.reason}
                    )
                    self._drop(batch[i + 1 :])
                    return False
                # More queued: let the server write this frame with the next one.
                key = "text" if isinstance(item, str) else "bytes"
                more = i < last or bool(self._queue)
                await self._send({"type": "websocket.send", key: item, MORE_KEY: more})
            except Exception:
                # The client is gone (ASGI servers raise on send after disconnect).
                self._drop(batch[i:])
                return False
            if future is not None and not future.done():
                future.set_result(None)
        return True

    async def run(self) -> None:
        """Send queued frames until the close is sent or the client is gone (or, once
        parked, until the queue is empty)."""
        self._running = True
        parked = False
        try:
            while True:
                if self._broken:
                    return
                if not self._queue or self._sending:
                    if self._parked and not self._sending:
                        parked = True
                        return
                    waiter = self._waiter = self._loop.create_future()
                    try:
                        await waiter
                    finally:
                        self._waiter = None
                    continue
                batch, self._queue = self._queue, []
                self._released_at = None
                if not await self._send_batch(batch):
                    return
        finally:
            self._running = False
            if not parked:
                self._closing = True
                self._drop(self._queue)
                self._queue = []
                self.done.set()
