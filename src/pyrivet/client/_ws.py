"""WebSockets of the network client: the reconnecting actor connection and raw sockets.

`ActorSocket` speaks the RivetKit ``connect`` protocol over one WebSocket at a time and
replaces that socket when it drops, as RivetKit's JavaScript ``ActorConn`` does
(see the feature reference, §5.6):

```
idle ──start()──▶ connecting ──Init──▶ connected ──socket lost──▶ disconnected
                      ▲                                               │
                      └──────── backoff (250 ms → 30 s), forever ─────┘
close() from any state ──▶ idle (final)
```

* Before `Init` arrives, actions are queued; after it, the subscriptions are sent
  again, then the queue is flushed, so a reconnected connection hears the events it
  listened to before the actions it sends run.
* When the socket drops, every action already sent is rejected with
  `ConnectionLostError` (its message and metadata carry the close code and reason): it
  is never re-sent, because the actor may have run it. Actions issued while
  disconnected wait for the next connection.
* A connection-level ``Error`` (the server is about to close the socket) fails the
  action it is about with that error, and every other action in flight with
  `ConnectionLostError` naming it: those were fine, but their replies will not come.
  The one action it is about is the one whose frame size matches the
  ``message/incoming_too_long`` error's ``size``; for other errors none is.
* Each attempt re-runs the opener, which re-evaluates callable connection params and,
  for a handle made by key, reaches whatever actor the key names now.
* An attempt refused by the actor for good (e.g. ``on_before_connect`` rejects the
  params) ends the connection: queued actions fail with that error and the listener's
  ``on_close`` is called with ``"group.code"``. Network failures and lifecycle answers
  (the actor is starting or stopping) are retried.

The first `start()` does not retry network failures: it raises, so that opening a
connection to a server that is down fails loudly.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

from websockets.exceptions import ConnectionClosed

from .._protocol.bare_schema import write_action_request
from .._protocol.errors import ProtocolError
from .._protocol.messages import (
    ActionRequest,
    ActionResponse,
    Encoding,
    Error,
    Event,
    Init,
    SubscriptionRequest,
    ToServer,
    decode_to_client,
    encode_to_server,
    is_binary,
)
from .._util.backoff import Backoff
from .._util.callbacks import Callbacks
from .._util.clock import Clock
from .._util.tasks import TaskSupervisor
from .._util.timeouts import run_with_timeout
from ..errors import ActorError, error_from_wire
from ._errors import ConnectionClosedError, ConnectionLostError, HttpRequestError, NetworkError
from ._frames import FrameWriter
from ._gateway import parse_close_reason
from ._reader import FrameReader
from ._resume import EVENT_FRAME, HELLO_EVENT, EventGap, ResumeState

if TYPE_CHECKING:
    from types import TracebackType

    from websockets.asyncio.client import ClientConnection

    from ._transport import ConnectionListener

__all__ = ["ActorSocket", "ConnStatus", "NetRawWebSocket", "Opener", "is_transient"]

log = logging.getLogger("pyrivet.client")

ConnStatus: TypeAlias = Literal["idle", "connecting", "connected", "disconnected"]
#: Opens one socket (handshake done, ``rivet`` subprotocol selected), offering the
#: extra subprotocols given; raises an `ActorError` (`NetworkError` for network
#: failures) when it cannot.
Opener: TypeAlias = Callable[[list[str]], Awaitable["ClientConnection"]]

#: How long a socket may stay open without sending `Init` before the attempt fails.
INIT_TIMEOUT: Final = 30.0

_LIFECYCLE_CODES: Final = frozenset(
    {"starting", "stopping", "restarting", "not_configured", "dropped_reply", "destroying"}
)
_GUARD_CODES: Final = frozenset(
    {
        "service_unavailable",
        "actor_wake_retries_exceeded",
        "actor_stopped_while_waiting",
        "tunnel_request_aborted",
        "tunnel_message_timeout",
        "tunnel_response_closed",
        "gateway_response_start_timeout",
    }
)


def is_transient(exc: BaseException, *, by_key: bool) -> bool:
    """Whether an actor-level answer means "try again shortly".

    The actor is starting, stopping or restarting, or the server is not running yet;
    or, for a handle made by key, the actor was not found (it may have been destroyed
    and be about to be recreated).
    """
    if not isinstance(exc, ActorError):
        return False
    if exc.group == "actor":
        return (
            exc.code in _LIFECYCLE_CODES
            or exc.code.startswith("destroyed_")
            or (by_key and exc.code == "not_found")
        )
    if exc.group == "server":
        return exc.code == "not_running"  # pyrivet's server, before its runtime started
    return exc.group == "guard" and exc.code in _GUARD_CODES


def _is_network_failure(exc: BaseException) -> bool:
    if isinstance(exc, NetworkError | ConnectionClosedError):
        return True
    if isinstance(exc, HttpRequestError):
        status = exc.metadata.get("status") if isinstance(exc.metadata, dict) else None
        return isinstance(status, int) and (status >= 500 or status == 429)
    return isinstance(exc, ActorError) and exc.group == "client" and exc.code == "get_params_failed"


def _close_info(exc: ConnectionClosed) -> tuple[int, str]:
    if exc.rcvd is not None:
        return exc.rcvd.code, exc.rcvd.reason
    return 1006, ""


def _closed_error(code: int, reason: str, *, lost: bool) -> ActorError:
    """The error for a socket that closed with ``code``/``reason``.

    ``lost``: an action was sent on it and got no reply. Whatever the close reason
    names (an oversize frame, the server stopping, ...) is about the connection, not
    that action, which may or may not have run: it gets `ConnectionLostError`.
    """
    metadata = {"close_code": code, "close_reason": reason}
    if lost:
        return ConnectionLostError(
            f"the connection to the actor was lost (close code {code}"
            f"{', reason ' + repr(reason) if reason else ''}); the action was sent but got "
            "no reply, so it may or may not have run: retry it only if running it twice "
            "is safe",
            metadata=metadata,
        )
    parsed = parse_close_reason(reason) if code != 1000 else None
    if parsed is not None:
        group, err_code = parsed
        return error_from_wire(group, err_code, f"the connection closed: {reason}")
    return ConnectionClosedError(
        f"the WebSocket closed (code {code}{', reason ' + repr(reason) if reason else ''})",
        metadata=metadata,
    )


def _copy_error(exc: ActorError) -> ActorError:
    """A fresh exception equal to ``exc``, so that each waiter gets its own traceback."""
    try:
        return type(exc)(exc.message, group=exc.group, code=exc.code, metadata=exc.metadata)
    except TypeError:
        return error_from_wire(exc.group, exc.code, exc.message, exc.metadata)


class ActorSocket:
    """A reconnecting connection to one actor (see the module doc).

    Implements ``pyrivet.client.TransportConnection``. All methods run on the event
    loop that called `start`.
    """

    def __init__(
        self,
        *,
        opener: Opener,
        encoding: Encoding,
        listener: ConnectionListener,
        clock: Clock,
        backoff: Backoff,
        by_key: bool,
        rng: Callable[[], float] = random.random,
        label: str = "actor",
    ) -> None:
        self._opener = opener
        self._encoding: Encoding = encoding
        self._binary = is_binary(encoding)
        self._bare = encoding == "bare"
        self._listener = listener
        self._clock = clock
        self._backoff = backoff
        self._by_key = by_key
        self._rng = rng
        self._label = label
        self._status: ConnStatus = "idle"
        self._disposed = False
        self._ws: ClientConnection | None = None
        #: Writes the current socket's frames (``_frames.py``); set with ``_ws``.
        self._frames: FrameWriter | None = None
        #: The loop of `start` (asyncio.get_running_loop costs a getpid() per call).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: asyncio.Queue[bytes] | None = None
        self._subscriptions: set[str] = set()
        self._next_id = 0
        #: Sent on the current socket, awaiting their reply.
        self._in_flight: dict[int, asyncio.Future[Any]] = {}
        #: Issued while not connected: (encoded frame, reply future), in order.
        self._queued: dict[int, tuple[bytes, asyncio.Future[Any]]] = {}
        #: Bytes of each pending action's frame, to tell which one a server refused as
        #: too long (its error names the size).
        self._frame_sizes: dict[int, int] = {}
        self._actor_id: str | None = None
        self._connection_id: str | None = None
        self._status_listeners: Callbacks[ConnStatus] = Callbacks("connection status listener", log)
        self._tasks = TaskSupervisor(f"pyrivet connection to {label}")
        self._writer: asyncio.Task[None] | None = None
        #: Successful opens so far (1 after `start`, +1 per reconnect).
        self.opens = 0
        #: The resume extension: connection token, event cursor (``_resume.py``).
        self.resume = ResumeState()
        self._gap_listeners: Callbacks[EventGap] = Callbacks("event gap listener", log)

    # -- TransportConnection ---------------------------------------------------------

    @property
    def actor_id(self) -> str:
        if self._actor_id is None:
            raise ConnectionClosedError("the connection has not opened yet")
        return self._actor_id

    @property
    def connection_id(self) -> str:
        if self._connection_id is None:
            raise ConnectionClosedError("the connection has not opened yet")
        return self._connection_id

    @property
    def status(self) -> ConnStatus:
        """``idle``, ``connecting``, ``connected`` or ``disconnected`` (reconnecting)."""
        return self._status

    def on_status_change(self, callback: Callable[[ConnStatus], object]) -> Callable[[], None]:
        """Call ``callback(status)`` on every status change; returns an unsubscriber."""
        return self._status_listeners.add(callback)

    def on_gap(self, callback: Callable[[EventGap], object]) -> Callable[[], None]:
        """Call ``callback(gap)`` when a reconnect could not get back every event the
        connection missed; returns an unsubscriber. Without any callback a gap is
        logged as a warning."""
        return self._gap_listeners.add(callback)

    async def call(self, name: str, args: list[Any]) -> Any:
        """Run action ``name``; waits for a connection if the socket is being replaced.

        Raises:
            ActorError: the actor's error, `ConnectionLostError` if the socket dropped
                after the request was sent, `ConnectionClosedError` if the connection
                was closed.
        """
        if self._disposed:
            raise ConnectionClosedError("the connection is closed")
        action_id = self._next_id
        self._next_id += 1
        # ``args`` is the caller's own list (see `ActorConnection.action`), encoded here.
        if self._bare:  # the frame without the record (`encode_to_server` writes the same)
            frame = write_action_request(action_id, name, args)
        else:
            frame = encode_to_server(ActionRequest(action_id, name, args), self._encoding)
        future: asyncio.Future[Any] = (self._loop or asyncio.get_running_loop()).create_future()
        self._frame_sizes[action_id] = len(frame)
        outbox, ws, frames = self._outbox, self._ws, self._frames
        try:
            if self._status == "connected" and outbox is not None and ws is not None:
                self._in_flight[action_id] = future
                if outbox.empty():
                    # Nothing waits to be written before it: send from this task, which
                    # saves the writer task's wake-up on every sequential call. (What
                    # `_send_frame` does, inline: one coroutine less per call.) A closed
                    # socket is the reader's to report: it fails the future.
                    if frames is None or not frames.write(frame):
                        try:  # noqa: SIM105 - suppress() would cost a context manager per call
                            await ws.send(frame if self._binary else frame.decode("utf-8"))
                        except ConnectionClosed:
                            pass
                else:
                    outbox.put_nowait(frame)
            else:
                self._queued[action_id] = (frame, future)
            return await future
        finally:
            self._in_flight.pop(action_id, None)
            self._queued.pop(action_id, None)
            del self._frame_sizes[action_id]

    def subscribe(self, event: str) -> None:
        if event in self._subscriptions:
            return
        self._subscriptions.add(event)
        self._send_now(SubscriptionRequest(event, True))

    def unsubscribe(self, event: str) -> None:
        if event not in self._subscriptions:
            return
        self._subscriptions.discard(event)
        self._send_now(SubscriptionRequest(event, False))

    async def close(self) -> None:
        """Close for good: pending actions fail with `ConnectionClosedError`, and the
        listener's ``on_close(None)`` is called (event iterators end)."""
        if self._disposed and self._ws is None and not len(self._tasks):
            return
        self._disposed = True
        self._reject_all(lambda: ConnectionClosedError("the connection was closed"))
        ws, self._ws, self._frames = self._ws, None, None
        if ws is not None:
            try:
                await ws.close(1000, "Disposed")
            except Exception:  # the socket is going away either way
                log.debug("closing the socket failed", exc_info=True)
        await self._tasks.aclose()
        self._set_status("idle")
        try:
            self._listener.on_close(None)
        except Exception:
            log.exception("connection close listener failed")

    # -- opening -----------------------------------------------------------------------

    async def start(self, subscriptions: set[str]) -> None:
        """Open the first socket and start the read/reconnect loop.

        Retries only lifecycle answers (the actor starting or stopping); anything else
        is raised.

        Raises:
            ActorError: the actor refused the connection (its error), or the server
                could not be reached (`NetworkError`).
        """
        self._subscriptions.update(subscriptions)
        self._loop = asyncio.get_running_loop()
        try:
            ws = await self._connect_with_retry(first=True)
        except BaseException:
            self._disposed = True
            self._set_status("idle")
            raise
        self._tasks.spawn(self._run(ws), name=f"pyrivet connection to {self._label}")

    def _should_retry(self, exc: Exception, *, first: bool) -> bool:
        if is_transient(exc, by_key=self._by_key):
            return True
        return not first and _is_network_failure(exc)

    async def _connect_with_retry(self, *, first: bool) -> ClientConnection:
        self._set_status("connecting")
        failures = 0
        while True:
            if self._disposed:
                raise ConnectionClosedError("the connection was closed")
            try:
                return await self._attempt()
            except Exception as exc:
                if not self._should_retry(exc, first=first):
                    raise
                failures += 1
                delay = self._backoff.delay(failures, self._rng)
                log.warning(
                    "connecting to %s failed (attempt %d, next in %.2fs): %s",
                    self._label,
                    failures,
                    delay,
                    exc,
                )
                await self._clock.sleep(delay)

    async def _attempt(self) -> ClientConnection:
        ws = await self._opener([self.resume.subprotocol(self._subscriptions)])
        try:
            init = await run_with_timeout(self._clock, INIT_TIMEOUT, self._await_init(ws))
        except TimeoutError:
            await _abort(ws)
            raise NetworkError(
                f"the server accepted the connection but sent no Init within {INIT_TIMEOUT}s"
            ) from None
        except BaseException:
            await _abort(ws)
            raise
        if self._disposed:
            await _abort(ws)
            raise ConnectionClosedError("the connection was closed")
        self._opened(ws, init)
        return ws

    async def _await_init(self, ws: ClientConnection) -> Init:
        while True:
            try:
                data = await ws.recv()
            except ConnectionClosed as exc:
                code, reason = _close_info(exc)
                raise _closed_error(code, reason, lost=False) from None
            try:
                msg = decode_to_client(data, self._encoding)
            except ProtocolError as exc:
                raise NetworkError(f"the server sent an invalid frame: {exc.message}") from None
            if isinstance(msg, Init):
                return msg
            if isinstance(msg, Error):
                raise msg.to_exception()
            if isinstance(msg, Event):
                self._deliver(msg)

    def _opened(self, ws: ClientConnection, init: Init) -> None:
        self._ws = ws
        self._frames = frames = FrameWriter(ws, text=not self._binary)
        if isinstance(ws, FrameReader):  # replies and events without `recv()` (_reader.py)
            ws.deliver_to(self._handle)
        self._actor_id = init.actor_id
        self._connection_id = init.connection_id
        self.opens += 1
        outbox: asyncio.Queue[bytes] = asyncio.Queue()
        for event in sorted(self._subscriptions):
            outbox.put_nowait(encode_to_server(SubscriptionRequest(event, True), self._encoding))
        queued, self._queued = self._queued, {}
        for action_id, (frame, future) in queued.items():
            if not future.done():
                self._in_flight[action_id] = future
                outbox.put_nowait(frame)
        self._outbox = outbox
        self._writer = self._tasks.spawn(
            self._write(ws, frames, outbox), name="pyrivet socket writer"
        )
        self._set_status("connected")

    # -- the socket's life ---------------------------------------------------------------

    async def _run(self, ws: ClientConnection) -> None:
        while True:
            code, reason = await self._read(ws)
            self._lost(code, reason)
            if self._disposed:
                return
            log.info("connection to %s lost (code %s %r); reconnecting", self._label, code, reason)
            try:
                ws = await self._connect_with_retry(first=False)
            except Exception as exc:
                if not self._disposed:
                    self._fail(exc)
                return

    async def _read(self, ws: ClientConnection) -> tuple[int, str]:
        """Handle the messages ``recv()`` returns until the socket closes; its close
        code and reason. With a `FrameReader` (``_reader.py``) most messages reach
        `_handle` without ``recv()``; this task still gets the others (those before
        `_opened`, fragmented ones, and those queued behind them) and the close."""
        recv, handle = ws.recv, self._handle  # looked up once, not per message
        try:
            while True:
                handle(await recv())
        except ConnectionClosed as exc:
            return _close_info(exc)

    async def _write(
        self, ws: ClientConnection, frames: FrameWriter, outbox: asyncio.Queue[bytes]
    ) -> None:
        while await self._send_frame(ws, frames, await outbox.get()):
            pass

    async def _send_frame(self, ws: ClientConnection, frames: FrameWriter, frame: bytes) -> bool:
        """Send one frame; False once the socket is closed (the reader sees the close
        and fails the actions in flight)."""
        if frames.write(frame):
            return True
        try:
            await ws.send(frame if self._binary else frame.decode("utf-8"))
        except ConnectionClosed:
            return False
        return True

    def _handle(self, data: str | bytes) -> None:
        try:
            msg = decode_to_client(data, self._encoding)
        except ProtocolError as exc:
            log.warning("ignoring an invalid frame from %s: %s", self._label, exc.message)
            return
        if type(msg) is ActionResponse:  # exact types: msgspec records, never subclassed
            future = self._in_flight.pop(msg.id, None)
            if future is not None and not future.done():
                future.set_result(msg.output)
        elif type(msg) is Event:
            self._deliver(msg)
        elif isinstance(msg, Error):
            if msg.action_id is not None:
                future = self._in_flight.pop(msg.action_id, None)
                if future is not None and not future.done():
                    future.set_exception(msg.to_exception())
            else:
                log.warning(
                    "connection error from %s: %s/%s %s",
                    self._label,
                    msg.group,
                    msg.code,
                    msg.message,
                )
                self._connection_error(msg)
        elif isinstance(msg, Init):
            self._actor_id = msg.actor_id
            self._connection_id = msg.connection_id

    def _connection_error(self, msg: Error) -> None:
        """Fail the in-flight actions on a connection-level error (see the module doc)."""
        # The server closes the socket next: calls made until then wait for the next one.
        self._outbox = None
        culprit_size = None
        if (msg.group, msg.code) == ("message", "incoming_too_long") and isinstance(
            msg.metadata, dict
        ):
            culprit_size = msg.metadata.get("size")
        in_flight, self._in_flight = self._in_flight, {}
        for action_id, future in in_flight.items():
            if future.done():
                continue
            if culprit_size is not None and self._frame_sizes.get(action_id) == culprit_size:
                future.set_exception(msg.to_exception())
                continue
            future.set_exception(
                ConnectionLostError(
                    f"the server is closing the connection because of another message "
                    f"({msg.group}/{msg.code}: {msg.message}); this action was sent but "
                    "its reply will not come, so it may or may not have run: retry it only "
                    "if running it twice is safe",
                    metadata={"connection_error": f"{msg.group}.{msg.code}"},
                )
            )

    def _deliver(self, event: Event) -> None:
        name, args = event.name, event.args  # a list of its own, fresh from the frame
        if name == EVENT_FRAME:
            inner = self.resume.unwrap(args)
            if inner is None:
                return
            name, args = inner
        elif name == HELLO_EVENT:
            gap = self.resume.hello(args[0] if args else None)
            if gap is not None:
                self._report_gap(gap)
            return
        try:
            self._listener.on_event(name, args)
        except Exception:
            log.exception("event listener for %r failed", name)

    def _report_gap(self, gap: EventGap) -> None:
        if not len(self._gap_listeners):
            log.warning(
                "connection to %s: events were missed while reconnecting (%s): %s",
                self._label,
                gap.code,
                gap.reason,
            )
        self._gap_listeners.call(gap)

    def _send_now(self, msg: ToServer) -> None:
        if self._status == "connected" and self._outbox is not None:
            self._outbox.put_nowait(encode_to_server(msg, self._encoding))

    def _lost(self, code: int, reason: str) -> None:
        self._ws = None
        self._frames = None
        self._outbox = None
        if self._writer is not None:
            self._writer.cancel()
            self._writer = None
        in_flight, self._in_flight = self._in_flight, {}
        for future in in_flight.values():
            if not future.done():
                future.set_exception(_closed_error(code, reason, lost=True))
        if not self._disposed:
            self._set_status("disconnected")

    def _fail(self, exc: Exception) -> None:
        """A reconnect was refused for good: close with that error."""
        log.warning("connection to %s closed: reconnecting failed: %s", self._label, exc)
        self._disposed = True
        error = exc if isinstance(exc, ActorError) else NetworkError(str(exc))
        self._reject_all(lambda: _copy_error(error))
        self._set_status("idle")
        try:
            self._listener.on_close(f"{error.group}.{error.code}")
        except Exception:
            log.exception("connection close listener failed")

    def _reject_all(self, make_error: Callable[[], ActorError]) -> None:
        pending = [*self._in_flight.values(), *(f for _, f in self._queued.values())]
        self._in_flight.clear()
        self._queued.clear()
        for future in pending:
            if not future.done():
                future.set_exception(make_error())

    def _set_status(self, status: ConnStatus) -> None:
        if status == self._status:
            return
        self._status = status
        self._status_listeners.call(status)


async def _abort(ws: ClientConnection) -> None:
    try:
        await ws.close(1000, "Disposed")
    except Exception:
        log.debug("closing an unopened socket failed", exc_info=True)


class NetRawWebSocket:
    """A raw WebSocket to an actor (implements `RawWebSocket`)."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    @property
    def subprotocol(self) -> str | None:
        return self._ws.subprotocol

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code

    @property
    def close_reason(self) -> str | None:
        return self._ws.close_reason

    def _error(self, exc: ConnectionClosed) -> ActorError:
        code, reason = _close_info(exc)
        return _closed_error(code, reason, lost=False)

    async def send(self, data: str | bytes) -> None:
        try:
            await self._ws.send(data)
        except ConnectionClosed as exc:
            raise self._error(exc) from None

    async def recv(self) -> str | bytes:
        try:
            return await self._ws.recv()
        except ConnectionClosed as exc:
            raise self._error(exc) from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.close(code, reason)

    def __aiter__(self) -> NetRawWebSocket:
        return self

    async def __anext__(self) -> str | bytes:
        try:
            return await self.recv()
        except ConnectionClosedError:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> NetRawWebSocket:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
