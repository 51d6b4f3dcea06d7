"""`SyncClient`: the network client for scripts and REPLs, without ``async``.

```python
from pyrivet.client import SyncClient

with SyncClient("http://127.0.0.1:6420") as client:
    room = client.get_or_create("counter", ["room-1"])
    print(room.increment(5))
    with room.connect() as conn:
        conn.on("count", print)          # runs on the client's background thread
        conn.increment(1)
```

A thin layer: one background thread runs an event loop with an ordinary async
`Client`; every call is submitted to it and waited for. Event callbacks run on that
thread, so they must not block, and must not call the client (that would wait on the
thread that is running the callback: it raises `RuntimeError` instead).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Coroutine, Generator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, Unpack

from .._protocol.listing import DEFAULT_PAGE, ActorPage
from .._util.tasks import TaskSupervisor
from ..types import KeyLike
from ._calls import SyncActionCalls
from ._client import Client
from ._errors import ConnectionClosedError
from ._options import NetworkOptions

if TYPE_CHECKING:
    from types import TracebackType

    from ._connection import ActorConnection, EventStream
    from ._extensions import RawResponse, RawWebSocket
    from ._handle import ActorHandle, SendResult

__all__ = ["SyncActorConnection", "SyncActorHandle", "SyncClient", "SyncRawWebSocket"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class _LoopThread:
    """An event loop running forever on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="pyrivet-sync-client", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result (re-raising its exception)."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(
                "a SyncClient cannot be called from its own event callbacks; "
                "use the async Client there"
            )
        if not self._thread.is_alive():
            coro.close()
            raise RuntimeError("the SyncClient is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def call(self, fn: Callable[[], T]) -> T:
        """Run the plain function ``fn`` on the loop's thread and return its result."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
        if not self.loop.is_closed():
            self.loop.close()


class SyncClient:
    """A blocking client over the network (see the module doc).

    Args:
        url: the server, e.g. ``"http://127.0.0.1:6420"``.
        **network: the options of ``Client(url, ...)`` (`NetworkOptions`).
    """

    def __init__(self, url: str, **network: Unpack[NetworkOptions]) -> None:
        self._thread = _LoopThread()

        async def make() -> Client:
            return Client(url, **network)

        try:
            self._client = self._thread.run(make())
        except BaseException:
            self._thread.stop()
            raise
        self._closed = False

    @property
    def client(self) -> Client:
        """The async client behind this one (usable only on its loop's thread)."""
        return self._client

    def get(self, name: str, key: KeyLike = None, *, params: Any = None) -> SyncActorHandle:
        """A handle to an existing actor (see `Client.get`)."""
        return SyncActorHandle(self._thread, self._client.get(name, key, params=params))

    def get_or_create(
        self, name: str, key: KeyLike = None, *, input: Any = None, params: Any = None
    ) -> SyncActorHandle:
        """A handle that creates the actor on first use (see `Client.get_or_create`)."""
        handle = self._client.get_or_create(name, key, input=input, params=params)
        return SyncActorHandle(self._thread, handle)

    def create(
        self, name: str, key: KeyLike = None, *, input: Any = None, params: Any = None
    ) -> SyncActorHandle:
        """Create an actor now (see `Client.create`)."""
        handle = self._thread.run(self._client.create(name, key, input=input, params=params))
        return SyncActorHandle(self._thread, handle)

    def get_for_id(self, name: str, actor_id: str, *, params: Any = None) -> SyncActorHandle:
        """A handle to the actor with this id (see `Client.get_for_id`)."""
        return SyncActorHandle(self._thread, self._client.get_for_id(name, actor_id, params=params))

    def list_actors(
        self, name: str | None = None, *, cursor: str | None = None, limit: int = DEFAULT_PAGE
    ) -> ActorPage:
        """A page of live actors (see `Client.list_actors`)."""
        return self._thread.run(self._client.list_actors(name, cursor=cursor, limit=limit))

    def close(self) -> None:
        """Close the connections and the HTTP session, then stop the background thread."""
        if self._closed:
            return
        self._closed = True
        try:
            self._thread.run(self._client.aclose())
        finally:
            self._thread.stop()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class SyncActorHandle(SyncActionCalls):
    """The blocking face of an `ActorHandle`."""

    def __init__(self, thread: _LoopThread, handle: ActorHandle) -> None:
        self._thread = thread
        self._handle = handle

    @property
    def handle(self) -> ActorHandle:
        """The async handle behind this one."""
        return self._handle

    def resolve(self) -> str:
        """The actor's id (creating the actor for get_or_create handles)."""
        return self._thread.run(self._handle.resolve())

    def action(self, name: str, *args: Any) -> Any:
        """Call action ``name`` with positional ``args``."""
        return self._thread.run(self._handle.action(name, *args))

    def send(
        self, name: str, body: Any = None, *, wait: bool = False, timeout: float | None = None
    ) -> SendResult | None:
        """Send to the actor's queue ``name`` (see `ActorHandle.send`); with ``wait``,
        block until the message is completed or ``timeout`` seconds pass."""
        return self._thread.run(self._handle.send(name, body, wait=wait, timeout=timeout))

    def fetch(
        self,
        path: str = "/",
        *,
        method: str = "GET",
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse:
        """A raw HTTP request to the actor's ``on_request`` (see `ActorHandle.fetch`)."""
        return self._thread.run(self._handle.fetch(path, method=method, body=body, headers=headers))

    def websocket(self, path: str = "/", *, protocols: Sequence[str] = ()) -> SyncRawWebSocket:
        """Open a raw WebSocket to the actor's ``on_websocket`` (see `ActorHandle.websocket`);
        use it in a ``with`` block, or call `SyncRawWebSocket.close`.

        Raises:
            ActorError: the socket could not be opened (e.g. the actor refused it).
        """

        async def open_socket() -> RawWebSocket:
            return await self._handle.websocket(path, protocols=protocols)

        return SyncRawWebSocket(self._thread, self._thread.run(open_socket()))

    def connect(self, *, params: Any = None) -> SyncActorConnection:
        """Open a connection (use it in a ``with`` block, or call `close`)."""
        conn = self._handle.connect(params=params)
        self._thread.run(conn.open())
        return SyncActorConnection(self._thread, conn)

    def __repr__(self) -> str:
        return f"<Sync{self._handle!r}>"


class SyncActorConnection(SyncActionCalls):
    """The blocking face of an `ActorConnection`; callbacks run on the client thread."""

    def __init__(self, thread: _LoopThread, conn: ActorConnection) -> None:
        self._thread = thread
        self._conn = conn
        self._tasks = TaskSupervisor("pyrivet sync connection")

    @property
    def connection(self) -> ActorConnection:
        """The async connection behind this one."""
        return self._conn

    @property
    def actor_id(self) -> str | None:
        return self._thread.call(lambda: self._conn.actor_id)

    @property
    def connection_id(self) -> str | None:
        return self._thread.call(lambda: self._conn.connection_id)

    @property
    def is_open(self) -> bool:
        return self._thread.call(lambda: self._conn.is_open)

    @property
    def status(self) -> str:
        """See `ActorConnection.status`."""
        return self._thread.call(lambda: self._conn.status)

    def on(self, event: str, callback: Callable[..., Any]) -> Callable[[], None]:
        """Call ``callback(*args)`` (on the client thread) for each ``event``.

        Returns:
            A function that unsubscribes (callable from any thread).
        """
        return self._unsubscriber(self._thread.call(lambda: self._conn.on(event, callback)))

    def once(self, event: str, callback: Callable[..., Any]) -> Callable[[], None]:
        """Like `on`, for the next ``event`` only."""
        return self._unsubscriber(self._thread.call(lambda: self._conn.once(event, callback)))

    def on_gap(self, callback: Callable[[Any], object]) -> Callable[[], None]:
        """See `ActorConnection.on_gap`; ``callback`` runs on the client thread."""
        return self._unsubscriber(self._thread.call(lambda: self._conn.on_gap(callback)))

    @property
    def event_cursor(self) -> tuple[str, int] | None:
        """See `ActorConnection.event_cursor`."""
        return self._thread.call(lambda: self._conn.event_cursor)

    def _unsubscriber(self, unsubscribe: Callable[[], None]) -> Callable[[], None]:
        def remove() -> None:
            if not self._thread.loop.is_closed():
                self._thread.loop.call_soon_threadsafe(unsubscribe)

        return remove

    def events(self, *names: str) -> Generator[tuple[str, list[Any]], None, None]:
        """Iterate ``(event, args)`` for the given names until the connection closes,
        blocking between events.

        The names are subscribed before this returns, so events caused by calls made
        after it are not missed. Close the iterator (or leave the ``for`` loop) to
        unsubscribe.
        """
        items: queue.Queue[Any] = queue.Queue()
        done = object()

        async def pump(stream: EventStream) -> None:
            try:
                async for item in stream:
                    items.put(item)
            finally:
                await stream.aclose()
                items.put(done)

        async def start() -> asyncio.Task[None]:
            stream = self._conn.events(*names)  # subscribed from here on
            return self._tasks.spawn(pump(stream), name="pyrivet sync events")

        task = self._thread.run(start())

        def iterate() -> Generator[tuple[str, list[Any]], None, None]:
            try:
                while (item := items.get()) is not done:
                    yield item
            finally:
                if not self._thread.loop.is_closed():
                    self._thread.loop.call_soon_threadsafe(task.cancel)

        return iterate()

    def action(self, name: str, *args: Any) -> Any:
        """Call action ``name`` over this connection."""
        return self._thread.run(self._conn.action(name, *args))

    def close(self) -> None:
        """Disconnect (event iterators end)."""

        async def close() -> None:
            await self._conn.close()
            await self._tasks.aclose()

        self._thread.run(close())

    def __enter__(self) -> SyncActorConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class SyncRawWebSocket:
    """The blocking face of a `RawWebSocket`: each call waits on the client thread.

    ```python
    with room.websocket("/chat") as ws:
        ws.send("hello")
        print(ws.recv())
    ```
    """

    def __init__(self, thread: _LoopThread, socket: RawWebSocket) -> None:
        self._thread = thread
        self._socket = socket

    @property
    def subprotocol(self) -> str | None:
        return self._socket.subprotocol

    @property
    def close_code(self) -> int | None:
        return self._socket.close_code

    @property
    def close_reason(self) -> str | None:
        return self._socket.close_reason

    def send(self, data: str | bytes) -> None:
        """Send a text (str) or binary (bytes) frame.

        Raises:
            ConnectionClosedError: the socket is closed.
        """
        self._thread.run(self._socket.send(data))

    def recv(self, timeout: float | None = None) -> str | bytes:
        """The next frame, waiting at most ``timeout`` seconds if given.

        Raises:
            ConnectionClosedError: the socket closed normally.
            ActorError: it closed with a ``group.code`` reason.
            TimeoutError: no frame within ``timeout``.
        """

        async def receive() -> str | bytes:
            return await asyncio.wait_for(self._socket.recv(), timeout)

        return self._thread.run(receive())

    def __iter__(self) -> Iterator[str | bytes]:
        """The frames until the socket closes normally."""
        while True:
            try:
                yield self.recv()
            except ConnectionClosedError:
                return

    def close(self, code: int = 1000, reason: str = "") -> None:
        self._thread.run(self._socket.close(code, reason))

    def __enter__(self) -> SyncRawWebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
