"""Connections and events: opening, closing, subscriptions, broadcast and delivery.

A transport (in-process, WebSocket, HTTP) opens a connection with `open_conn`, giving
an `EventSink` that receives the connection's events. Events emitted by actor code go
through the actor's journal (`emit`): in strict mode they are held until the commit
that covers the change they report is durable, then `deliver`ed; in relaxed mode they
are delivered at once.

What connections need of their actor is the `ConnHost` Protocol (implemented by
`ActorInstance`), so this module never imports the instance.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any, Protocol, cast

from .._codec.values import encode, encode_unchecked
from .._util.ids import new_id
from ..actor._context import ActorContext, Conn
from ..errors import ActorError, ActorStoppingError, EncodingError
from ..types import ConnRequest
from .handoff import SocketIdentity
from .journal import Journal, JournalOwner
from .lifecycle import ActorStatus
from .metrics import bump
from .writes import Outgoing

__all__ = [
    "ConnHost",
    "ConnImpl",
    "EventSink",
    "HibernatableSink",
    "deliver",
    "disconnect",
    "emit",
    "open_conn",
]

log = logging.getLogger("pyrivet.actor")


class EventSink(Protocol):
    """Where a transport receives one connection's events. Called on the event loop."""

    __slots__ = ()

    def deliver(self, event: str, payload: bytes) -> None:
        """An event; ``payload`` is the encoded argument list. Must not block or raise."""
        ...

    def closed(self, reason: str | None) -> None:
        """The server closed the connection (actor sleeping/destroyed, or disconnect())."""
        ...


class HibernatableSink(EventSink, Protocol):
    """A sink whose socket can outlive its actor's sleep (see ``hibernation.py``).

    A sink says it is one with a true ``hibernatable`` attribute (set from the actor
    type's options before the connection opens); ``sequenced`` sinks
    negotiated numbered events (``event_log.py``) and get them through `deliver_seq`.
    """

    __slots__ = ()

    hibernatable: bool
    sequenced: bool
    #: How another process can serve this socket again (`handoff.SocketIdentity`),
    #: saved with the connection's record at sleep; None when it cannot.
    handoff: SocketIdentity | None

    def deliver_seq(self, event: str, payload: bytes, epoch: str, seq: int) -> None:
        """An event with its place in the actor's event sequence. Must not raise."""
        ...

    def hibernate(self) -> None:
        """The actor sleeps: drop the connection object, keep the socket open."""
        ...

    def attach(self, conn: ConnImpl) -> None:
        """The actor woke (or the client resumed): ``conn`` serves this socket again."""
        ...

    def hello(self, info: dict[str, Any]) -> None:
        """Tell a sequenced client its connection, resume token and event cursor
        (sent before any event of the connection). Must not raise."""
        ...


class ConnHost(JournalOwner, Protocol):
    """What connections need of their actor."""

    __slots__ = ()

    journal: Journal
    conns: dict[str, ConnImpl] | None
    status: ActorStatus

    def context(
        self, conn: ConnImpl | None = None, request: ConnRequest | None = None
    ) -> ActorContext[Any]:
        """A context for a hook (``c.conn`` is ``conn``, ``c.request`` is ``request``)."""
        ...

    async def call_hook(
        self, fn: Callable[..., Any], timeout: float | None, what: str, *args: Any
    ) -> Any:
        """Call a lifecycle hook with a time limit (see `ActorInstance.call_hook`)."""
        ...

    def became_idle(self) -> None:
        """Work ended: start the sleep countdown if the actor is idle."""
        ...

    def add_conn(self, conn: ConnImpl) -> None:
        """Add ``conn`` to ``conns``."""
        ...

    def remove_conn(self, conn: ConnImpl) -> None:
        """Remove ``conn`` from ``conns`` (no-op if absent)."""
        ...


class ConnImpl(Conn):
    """A connection as actor code sees it (`pyrivet.actor.Conn`)."""

    __slots__ = (
        "_id",
        "_inst",
        "_params",
        "hibernatable",
        "is_open",
        "request",
        "sequenced",
        "sink",
        "state",
        "subscriptions",
        "token",
    )

    def __init__(
        self,
        inst: ConnHost,
        params: Any,
        sink: EventSink | None,
        request: ConnRequest | None = None,
        conn_id: str | None = None,
    ) -> None:
        self._inst = inst
        self._id = conn_id or new_id()
        self._params = params
        self.state: Any = None
        self.sink = sink
        #: The HTTP request that opened it (None in-process).
        self.request = request
        self.subscriptions: set[str] = set()
        self.is_open = True
        #: Survives the actor's sleep (its socket stays open; ``hibernation.py``).
        self.hibernatable = bool(getattr(sink, "hibernatable", False))
        #: Gets numbered events (`HibernatableSink.deliver_seq`).
        self.sequenced = bool(getattr(sink, "sequenced", False))
        #: The secret a client shows to resume this connection (None: not resumable).
        self.token: str | None = new_id() if self.hibernatable else None

    @property
    def id(self) -> str:
        return self._id

    @property
    def params(self) -> Any:
        return self._params

    @property
    def is_hibernatable(self) -> bool:
        """Whether the connection stays open while the actor sleeps."""
        return self.hibernatable

    @property
    def owner(self) -> ConnHost:
        """The actor instance the connection belongs to."""
        return self._inst

    def send(self, event: str, *args: Any) -> None:
        emit(self._inst, self, event, args)

    async def disconnect(self, reason: str | None = None) -> None:
        await disconnect(self, reason)

    def subscribe(self, event: str) -> None:
        self.subscriptions.add(event)

    def unsubscribe(self, event: str) -> None:
        self.subscriptions.discard(event)

    def __repr__(self) -> str:
        return f"<Conn {self.id} params={self.params!r}>"


async def open_conn(
    inst: ConnHost,
    params: Any,
    sink: EventSink | None,
    subscriptions: set[str] | None = None,
    request: ConnRequest | None = None,
) -> ConnImpl:
    """Run the connection hooks and add a connection to ``c.conns``.

    Order: on_before_connect(c, params) -> conn state -> added to c.conns ->
    on_connect(c, conn); ``c.request`` is ``request`` in each. A hook that raises
    rejects the connection: the error reaches the caller, and on_disconnect does not
    run when the preflight (the first two) failed.
    """
    if inst.status is not ActorStatus.RUNNING:
        raise ActorStoppingError(f"actor {inst.name!r} is {inst.status.value}")
    d = inst.definition
    opts = d.options
    ctx = inst.context(None, request)
    hook = d.hooks.get("on_before_connect")
    if hook is not None:
        await inst.call_hook(hook, opts.on_before_connect_timeout, "on_before_connect", ctx, params)
    conn = ConnImpl(inst, params, sink, request)
    if subscriptions:
        conn.subscriptions.update(subscriptions)
    if d.create_conn_state is not None:
        conn.state = await inst.call_hook(
            d.create_conn_state, opts.create_conn_state_timeout, "create_conn_state", ctx, params
        )
    elif d.static_conn_state is not None:
        conn.state = copy.deepcopy(d.static_conn_state)
    inst.add_conn(conn)
    bump(inst.svc.metrics.conns_opened, d.name)
    hook = d.hooks.get("on_connect")
    if hook is not None:
        try:
            await inst.call_hook(
                hook, opts.on_connect_timeout, "on_connect", inst.context(conn, request), conn
            )
        except ActorError:
            await disconnect(conn, "on_connect failed", notify_sink=False)
            raise
        # State changed by on_connect is committed like any change outside an action.
        inst.journal.soon()
    return conn


async def disconnect(conn: ConnImpl, reason: str | None, *, notify_sink: bool = True) -> None:
    """Remove ``conn``, tell its transport, then run on_disconnect (errors are logged)."""
    if not conn.is_open:
        return
    conn.is_open = False
    inst = conn._inst
    inst.remove_conn(conn)
    bump(inst.svc.metrics.conns_closed, inst.definition.name)
    if notify_sink and conn.sink is not None:
        try:
            conn.sink.closed(reason)
        except Exception:
            log.exception("connection sink failed on close", extra=inst.log_fields)
    hook = inst.definition.hooks.get("on_disconnect")
    if hook is not None:
        try:
            await inst.call_hook(
                hook,
                inst.definition.options.on_connect_timeout,
                "on_disconnect",
                inst.context(conn),
                conn,
            )
        except ActorError as exc:
            log.error(
                "actor %s (%s): %s", inst.name, inst.actor_id, exc.message, extra=inst.log_fields
            )
        inst.journal.soon()
    inst.became_idle()


def emit(inst: ConnHost, target: ConnImpl | None, event: str, args: tuple[Any, ...]) -> None:
    """Send an event to every subscriber (``target`` None) or one connection, through
    the journal's output gate.

    Raises:
        EncodingError: an argument cannot be encoded or the event is too large.
    """
    svc = inst.svc
    payload = encode_event_args(args, event, svc.max_outgoing_message_size)
    inst.journal.emit((target, event, payload))
    bump(svc.metrics.events, inst.definition.name)


def deliver(
    conns: dict[str, ConnImpl] | None, outgoing: Outgoing, epoch: str = "", seq: int = 0
) -> None:
    """Hand a released event to its recipients' transports (``conns``: the actor's);
    ``epoch``/``seq`` is its place in the actor's event sequence (``event_log.py``)."""
    target, event, payload = outgoing
    if target is not None:
        sink = target.sink
        if target.is_open and sink is not None:
            if target.sequenced and seq:
                cast(HibernatableSink, sink).deliver_seq(event, payload, epoch, seq)
            else:
                sink.deliver(event, payload)
        return
    for conn in list((conns or {}).values()):
        sink = conn.sink
        if event in conn.subscriptions and sink is not None:
            if conn.sequenced and seq:
                cast(HibernatableSink, sink).deliver_seq(event, payload, epoch, seq)
            else:
                sink.deliver(event, payload)


def encode_event_args(args: tuple[Any, ...], event: str, limit: int) -> bytes:
    """Encode event arguments once for every recipient.

    Raises:
        EncodingError: an argument cannot be encoded or the event is too large.
    """
    values = list(args)
    try:
        payload = encode_unchecked(values)
    except (TypeError, ValueError, OverflowError):
        # Only now the message, naming the event (formatting it cost every event).
        payload = encode(values, f"the arguments of event {event!r}")
    if len(payload) > limit:
        raise EncodingError(
            f"event {event!r} is {len(payload)} bytes, above the outgoing message limit "
            f"({limit} bytes)",
            group="message",
            code="outgoing_too_long",
        )
    return payload
