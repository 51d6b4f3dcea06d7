"""`ActorConnection`: a live connection to an actor: events, and actions over it.

```python
async with handle.connect(params={"token": "..."}) as conn:
    unsubscribe = conn.on("count", lambda n: print(n))
    await conn.increment(5)
    async for name, args in conn.events("count"):
        ...
```

Listeners registered before the connection opens are subscribed as it opens, so they
receive events the actor sends from ``on_connect``. Only events the connection
subscribed to (by registering a listener or iterating `events`) are received.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

from .._protocol.query import ActorQuery
from .._util.callbacks import Callbacks
from .._util.tasks import TaskSupervisor
from ._calls import ActionCalls
from ._extensions import QueryConnectTransport

if TYPE_CHECKING:
    from ._transport import Transport, TransportConnection

__all__ = ["ActorConnection", "ConnectTarget", "EventStream"]

P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger("pyrivet.client")

EventCallback = Callable[..., Any]


class ConnectTarget(Protocol):
    """What a connection needs of the handle that opens it (`ActorHandle`)."""

    @property
    def query(self) -> ActorQuery:
        """How the handle finds its actor (reconnects re-resolve it)."""
        ...

    async def resolve(self) -> str:
        """The actor's id (creating the actor if the query says so)."""
        ...


_CLOSED: Any = object()


class ActorConnection(ActionCalls):
    """A connection to one actor; an async context manager."""

    def __init__(self, transport: Transport, target: ConnectTarget, params: Any) -> None:
        self._transport = transport
        self._target = target
        self._params = params
        self._conn: TransportConnection | None = None
        #: Callbacks by event name; a new tuple on every change (see `on`).
        self._listeners: dict[str, tuple[EventCallback, ...]] = {}
        self._queues: dict[str, list[asyncio.Queue[Any]]] = {}
        self._closed_reason: str | None = None
        self._is_closed = False
        self._status_callbacks: Callbacks[str] = Callbacks("connection status callback", log)
        self._last_status = "idle"
        self._gap_callbacks: Callbacks[Any] = Callbacks("event gap callback", log)
        #: Runs async event callbacks; cancelled when the connection closes.
        self._callbacks = TaskSupervisor("pyrivet connection callbacks")

    # -- opening and closing -------------------------------------------------------

    async def open(self) -> ActorConnection:
        """Connect (running the actor's connection hooks).

        Raises:
            ActorError: the actor rejected the connection (e.g. on_before_connect raised).
        """
        if self._conn is not None:
            return self
        transport = self._transport
        subscriptions = set(self._listeners) | set(self._queues)
        if isinstance(transport, QueryConnectTransport):
            # Reconnects re-resolve the handle's key (a destroyed actor is replaced).
            conn = await transport.connect_query(
                self._target.query, self._params, subscriptions, self
            )
        else:
            actor_id = await self._target.resolve()
            conn = await transport.connect(actor_id, self._params, subscriptions, self)
        self._conn = conn
        watch = getattr(conn, "on_status_change", None)
        if watch is not None:  # a network connection reports its reconnects
            watch(self._report_status)
        watch_gaps = getattr(conn, "on_gap", None)
        if watch_gaps is not None:
            watch_gaps(self._report_gap)
        self._report_status(self.status)
        return self

    async def close(self) -> None:
        """Disconnect; the actor's on_disconnect runs before this returns."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
        self.on_close(None)
        await self._callbacks.aclose()

    async def __aenter__(self) -> ActorConnection:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def is_open(self) -> bool:
        return self._conn is not None and not self._is_closed

    @property
    def status(self) -> str:
        """``"connected"``; over the network also ``"disconnected"`` while the socket is
        being replaced (actions wait for it) and ``"connecting"``; ``"idle"`` when not
        open or closed for good."""
        if self._conn is None or self._is_closed:
            return "idle"
        return str(getattr(self._conn, "status", "connected"))

    def on_status_change(self, callback: Callable[[str], object]) -> Callable[[], None]:
        """Call ``callback(status)`` whenever `status` changes (e.g. ``"disconnected"``
        while a network connection is being replaced, ``"connected"`` once it is back,
        ``"idle"`` when it closes for good); returns a function that unregisters it.

        Callbacks run on the event loop; an exception is logged and ignored.
        """
        return self._status_callbacks.add(callback)

    def on_gap(self, callback: Callable[[Any], object]) -> Callable[[], None]:
        """Call ``callback(gap)`` (a `pyrivet.client.EventGap`) when, after a reconnect,
        the actor could not send back every event this connection missed (they are
        older than its ``event_retention``, or it restarted without them); returns a
        function that unregisters it. Without
        any, a gap is logged as a warning. Network connections only: in-process ones
        never miss events.
        """
        return self._gap_callbacks.add(callback)

    def _report_gap(self, gap: Any) -> None:
        if not len(self._gap_callbacks):
            log.warning("events were missed while reconnecting (%s): %s", gap.code, gap.reason)
        self._gap_callbacks.call(gap)

    @property
    def event_cursor(self) -> tuple[str, int] | None:
        """``(epoch, seq)`` of the last numbered event received (network connections to
        a pyrivet server), else None."""
        resume = getattr(self._conn, "resume", None)
        return getattr(resume, "cursor", None)

    def _report_status(self, status: str) -> None:
        if self._is_closed and status != "idle":
            return
        if status == self._last_status:
            return
        self._last_status = status
        self._status_callbacks.call(status)

    @property
    def actor_id(self) -> str | None:
        return self._conn.actor_id if self._conn else None

    @property
    def connection_id(self) -> str | None:
        return self._conn.connection_id if self._conn else None

    # -- events --------------------------------------------------------------------

    def on(self, event: str, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(*args)`` for each ``event``; returns a function that unsubscribes."""
        # Copy on write: `on_event` iterates the tuple it finds without copying it.
        self._listeners[event] = (*self._listeners.get(event, ()), callback)
        self._subscribe(event)

        registered = True

        def unsubscribe() -> None:  # removes this registration once
            nonlocal registered
            callbacks = self._listeners.get(event, ())
            if not registered or callback not in callbacks:
                return
            registered = False
            at = callbacks.index(callback)
            callbacks = callbacks[:at] + callbacks[at + 1 :]
            if callbacks:
                self._listeners[event] = callbacks
            else:
                del self._listeners[event]
                self._maybe_unsubscribe(event)

        return unsubscribe

    def once(self, event: str, callback: EventCallback) -> Callable[[], None]:
        """Like `on`, for the next ``event`` only."""

        def wrapper(*args: Any) -> Any:
            unsubscribe()
            return callback(*args)

        unsubscribe = self.on(event, wrapper)
        return unsubscribe

    def events(self, *names: str) -> EventStream:
        """An async iterator of ``(event, args)`` for the given event names, ending when
        the connection closes.

        The names are subscribed before this returns, so no event sent after it is
        missed, even before the first ``__anext__``. Leave the loop with
        ``await stream.aclose()`` (or ``async with conn.events(...) as stream``) to
        unsubscribe at once; an abandoned stream unsubscribes when garbage-collected.
        """
        return EventStream(self, names)

    def _add_queue(self, names: tuple[str, ...], queue: asyncio.Queue[Any]) -> None:
        for name in names:
            self._queues.setdefault(name, []).append(queue)
            self._subscribe(name)
        if self._is_closed:
            queue.put_nowait(_CLOSED)

    def _remove_queue(self, names: tuple[str, ...], queue: asyncio.Queue[Any]) -> None:
        for name in names:
            queues = self._queues.get(name, [])
            if queue in queues:
                queues.remove(queue)
            if not queues:
                self._queues.pop(name, None)
                self._maybe_unsubscribe(name)

    def _subscribe(self, event: str) -> None:
        if self._conn is not None:
            self._conn.subscribe(event)

    def _maybe_unsubscribe(self, event: str) -> None:
        if self._conn is not None and event not in self._listeners and event not in self._queues:
            self._conn.unsubscribe(event)

    # ConnectionListener: called by the transport.

    def on_event(self, event: str, args: list[Any]) -> None:
        for callback in self._listeners.get(event, ()):  # a tuple: changes make new ones
            try:
                result = callback(*args)
                # Most listeners return None, which asyncio.iscoroutine would check
                # against the Coroutine ABC (slowly) on every event.
                if result is not None and asyncio.iscoroutine(result):
                    self._callbacks.spawn(result, name=f"event:{event}")
            except Exception:
                log.exception("listener for event %r failed", event)
        for queue in self._queues.get(event, ()):
            queue.put_nowait((event, args))

    def on_close(self, reason: str | None) -> None:
        if self._is_closed:
            return
        self._is_closed = True
        self._closed_reason = reason
        self._report_status("idle")
        for queues in self._queues.values():
            for queue in queues:
                queue.put_nowait(_CLOSED)

    # -- actions -------------------------------------------------------------------

    def action(self, name: str, *args: Any) -> Coroutine[Any, Any, Any]:
        """Call action ``name`` over this connection (``await conn.action(...)``).

        Returns the transport's call coroutine itself rather than awaiting it in one of
        its own: one coroutine less on every call. Calling this only builds the
        coroutine (the sync client does so on its caller's thread); nothing runs until
        it is awaited on the connection's loop, and a connection not open fails then.
        """
        if self._conn is None:
            return _not_open()
        return self._conn.call(name, list(args))


async def _not_open() -> Any:
    raise RuntimeError("the connection is not open; use `async with handle.connect()`")


class EventStream:
    """``(event, args)`` pairs of some event names of one connection (see
    `ActorConnection.events`); an async iterator and an async context manager.

    Subscribed from creation until `aclose`, the end of the connection, or garbage
    collection, whichever comes first.
    """

    def __init__(self, conn: ActorConnection, names: tuple[str, ...]) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._done = False
        conn._add_queue(names, self._queue)
        # Unsubscribes when the stream is closed or dropped; holds no reference to it.
        self._finalizer = weakref.finalize(self, conn._remove_queue, names, self._queue)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> tuple[str, list[Any]]:
        if self._done:
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _CLOSED:
            await self.aclose()
            raise StopAsyncIteration
        return item  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Unsubscribe (if no other listener wants the names) and end the iteration."""
        self._done = True
        self._finalizer()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
