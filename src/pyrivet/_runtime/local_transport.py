"""`LocalTransport`: the in-process transport behind ``Client(runtime)``.

It has the shape of ``pyrivet.client.Transport`` (structurally; the runtime does not
import the client). Values are copied through the storage encoding on the way in and
out, exactly as a network hop would: the actor never shares an object with its caller,
unencodable arguments fail before anything runs, and errors reach the caller rebuilt
from ``(group, code, message, metadata)`` as they would arrive over the wire.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from .._codec.values import decode, encode
from .._protocol.listing import ActorInfo, decode_cursor, encode_cursor
from .._protocol.query import ActorQuery
from ..actor._queue import SendResult
from ..errors import ActorError, EncodingError, InternalError, error_from_wire
from ..storage._base import ActorStore
from .catalog import ActorTypes
from .connections import ConnImpl, EventSink

__all__ = ["LocalConnection", "LocalRuntime", "LocalTransport"]

T = TypeVar("T")


class LocalRuntime(Protocol):
    """What the in-process transport calls (`Runtime` implements it)."""

    __slots__ = ()

    registry: ActorTypes
    storage: ActorStore

    def is_awake(self, actor_id: str) -> bool: ...

    async def resolve(self, query: ActorQuery, *, durable: bool = True) -> str: ...

    async def call_action(
        self,
        actor_id: str,
        name: str,
        args: list[Any] | tuple[Any, ...],
        *,
        params: Any = None,
        encoded_args: bytes | None = None,
    ) -> Any: ...

    async def connect(
        self, actor_id: str, params: Any, sink: EventSink, subscriptions: set[str] | None = None
    ) -> ConnImpl: ...

    async def send_queue(
        self, actor_id: str, name: str, body: Any, *, wait: bool, timeout: float | None
    ) -> SendResult: ...

    async def call_on_conn(
        self, conn: ConnImpl, name: str, args: list[Any], encoded_args: bytes | None = None
    ) -> Any: ...


class _Listener(Protocol):
    def on_event(self, event: str, args: list[Any]) -> None: ...

    def on_close(self, reason: str | None) -> None: ...


def _as_client_error(exc: ActorError) -> ActorError:
    """The error a network client would raise for ``exc`` (rebuilt from its wire form).

    An internal error keeps what caused it as ``__cause__``: in-process, the caller's
    traceback shows why the action failed (a network client gets no details).
    """
    error = error_from_wire(exc.group, exc.code, exc.message, exc.metadata)
    if isinstance(exc, InternalError):
        error.__cause__ = exc.__cause__
    error.__suppress_context__ = True
    return error


async def _rewrapping_errors(call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except ActorError as exc:
        raise _as_client_error(exc)  # noqa: B904 (the cause is set, the context suppressed)


class LocalTransport:
    """Calls a `Runtime` in the same process."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self._runtime = runtime
        self._max_in = runtime.registry.max_incoming_message_size
        self._max_out = runtime.registry.max_outgoing_message_size

    def _copy_in(self, value: Any, what: str) -> tuple[bytes, Any]:
        data = encode(value, what)
        if len(data) > self._max_in:
            raise EncodingError(
                f"{what} is {len(data)} bytes, above the incoming message limit "
                f"({self._max_in} bytes)",
                group="message",
                code="incoming_too_long",
            )
        return data, decode(data)

    def _copy_out(self, value: Any) -> Any:
        data = encode(value, "the action result")
        if len(data) > self._max_out:
            raise EncodingError(
                f"the action result is {len(data)} bytes, above the outgoing message limit "
                f"({self._max_out} bytes)",
                group="message",
                code="outgoing_too_long",
            )
        return decode(data)

    async def list_actors(
        self, name: str | None, cursor: str | None, limit: int
    ) -> tuple[list[ActorInfo], str | None]:
        """A page of the runtime's stored actors (see `Transport.list_actors`)."""
        try:
            after = decode_cursor(cursor) if cursor else None
        except ValueError as exc:
            raise ActorError(str(exc), code="invalid_request") from None
        runtime = self._runtime
        records = await runtime.storage.list_actors(name, after=after, limit=limit + 1)
        following = None
        if len(records) > limit:
            records = records[:limit]
            following = encode_cursor(records[-1].created_at_ms, records[-1].actor_id)
        infos = [
            ActorInfo(
                r.actor_id, r.name, r.key, r.created_at_ms / 1000, runtime.is_awake(r.actor_id)
            )
            for r in records
        ]
        return infos, following

    async def resolve(self, query: ActorQuery) -> str:
        async def run() -> str:
            if query.input is not None:
                self._copy_in(query.input, "the actor input")
            return await self._runtime.resolve(query)

        return await _rewrapping_errors(run)

    async def call(
        self, query: ActorQuery, actor_id: str | None, name: str, args: list[Any], params: Any
    ) -> tuple[str, Any]:
        # The hot path of in-process calls: written out rather than through
        # `_rewrapping_errors`, which would add two coroutines per call.
        try:
            data, copied = self._copy_in(args, "the action arguments")
            target = actor_id
            if target is None or query.mode == "get_for_id":
                # get_for_id: also checks that the id belongs to an actor of query.name.
                target = await self._runtime.resolve(query, durable=False)
            result = await self._runtime.call_action(
                target, name, copied, params=params, encoded_args=data
            )
            return target, self._copy_out(result)
        except ActorError as exc:
            raise _as_client_error(exc)  # noqa: B904 (the cause is set, the context suppressed)

    async def send(
        self,
        query: ActorQuery,
        actor_id: str | None,
        name: str,
        body: Any,
        wait: bool,
        timeout: float | None,
    ) -> tuple[str, str, Any]:
        """Send to queue ``name``: (actor id, status, response); see `Runtime.send_queue`."""
        try:
            _, copied = self._copy_in(body, "the queue message body")
            target = actor_id
            if target is None or query.mode == "get_for_id":
                target = await self._runtime.resolve(query, durable=False)
            outcome = await self._runtime.send_queue(
                target, name, copied, wait=wait, timeout=timeout
            )
            return target, outcome.status, self._copy_out(outcome.response)
        except ActorError as exc:
            raise _as_client_error(exc)  # noqa: B904 (the cause is set, the context suppressed)

    async def connect(
        self, actor_id: str, params: Any, subscriptions: set[str], listener: _Listener
    ) -> LocalConnection:
        connection = LocalConnection(self, listener)

        async def run() -> ConnImpl:
            return await self._runtime.connect(actor_id, params, connection, subscriptions)

        connection.conn = await _rewrapping_errors(run)
        return connection

    async def aclose(self) -> None:
        """Nothing to release: the runtime outlives its in-process clients."""


class LocalConnection:
    """An in-process connection: the client's end and the actor's event sink in one."""

    def __init__(self, transport: LocalTransport, listener: _Listener) -> None:
        self._transport = transport
        self._listener = listener
        self.conn: ConnImpl | None = None

    def _open_conn(self) -> ConnImpl:
        if self.conn is None or not self.conn.is_open:
            raise ActorError("the connection is closed", group="connection", code="closed")
        return self.conn

    @property
    def actor_id(self) -> str:
        return self._open_conn().owner.actor_id

    @property
    def connection_id(self) -> str:
        return self._open_conn().id

    async def call(self, name: str, args: list[Any]) -> Any:
        transport = self._transport

        async def run() -> Any:
            conn = self._open_conn()
            data, copied = transport._copy_in(args, "the action arguments")
            result = await transport._runtime.call_on_conn(conn, name, copied, data)
            return transport._copy_out(result)

        return await _rewrapping_errors(run)

    def subscribe(self, event: str) -> None:
        if self.conn is not None:
            self.conn.subscribe(event)

    def unsubscribe(self, event: str) -> None:
        if self.conn is not None:
            self.conn.unsubscribe(event)

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.disconnect()

    # EventSink: called by the runtime.

    def deliver(self, event: str, payload: bytes) -> None:
        self._listener.on_event(event, decode(payload))

    def closed(self, reason: str | None) -> None:
        self._listener.on_close(reason)
