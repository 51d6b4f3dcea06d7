"""Connections and events: opening, closing, subscriptions, broadcast and delivery.

A transport (in-process, WebSocket, HTTP) opens a connection with `open_conn`, giving
an `EventSink` that receives the connection's events. Events emitted by actor code go
through the output gate (`emit`): in strict mode they are held until the commit that
covers the change they report is durable, then `deliver`ed; in relaxed mode they are
delivered at once.
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any, Protocol

from .._codec.values import encode
from .._util.ids import new_id
from ..errors import ActorError, ActorStoppingError, EncodingError
from .writes import Outgoing, PendingWrites

if TYPE_CHECKING:
    from .instance import ActorInstance

__all__ = ["ConnImpl", "EventSink", "deliver", "disconnect", "emit", "open_conn"]

log = logging.getLogger("pyrivet.actor")


class EventSink(Protocol):
    """Where a transport receives one connection's events. Called on the event loop."""

    def deliver(self, event: str, payload: bytes) -> None:
        """An event; ``payload`` is the encoded argument list. Must not block or raise."""
        ...

    def closed(self, reason: str | None) -> None:
        """The server closed the connection (actor sleeping/destroyed, or disconnect())."""
        ...


class ConnImpl:
    """A connection as actor code sees it (`pyrivet.actor.Conn`)."""

    __slots__ = ("_inst", "id", "is_open", "params", "sink", "state", "subscriptions")

    def __init__(self, inst: ActorInstance, params: Any, sink: EventSink | None) -> None:
        self._inst = inst
        self.id = new_id()
        self.params = params
        self.state: Any = None
        self.sink = sink
        self.subscriptions: set[str] = set()
        self.is_open = True

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
    inst: ActorInstance,
    params: Any,
    sink: EventSink | None,
    subscriptions: set[str] | None = None,
) -> ConnImpl:
    """Run the connection hooks and add a connection to ``c.conns``.

    Order: on_before_connect(c, params) -> conn state -> added to c.conns ->
    on_connect(c, conn). A hook that raises rejects the connection: the error reaches
    the caller, and on_disconnect does not run when the preflight (the first two) failed.
    """
    from .instance import ActorStatus

    if inst.status is not ActorStatus.RUNNING:
        raise ActorStoppingError(f"actor {inst.name!r} is {inst.status.value}")
    d = inst.definition
    opts = d.options
    ctx = inst.context()
    hook = d.hooks.get("on_before_connect")
    if hook is not None:
        await inst.call_hook(hook, opts.on_before_connect_timeout, "on_before_connect", ctx, params)
    conn = ConnImpl(inst, params, sink)
    if subscriptions:
        conn.subscriptions.update(subscriptions)
    if d.create_conn_state is not None:
        conn.state = await inst.call_hook(
            d.create_conn_state, opts.create_conn_state_timeout, "create_conn_state", ctx, params
        )
    elif d.static_conn_state is not None:
        conn.state = copy.deepcopy(d.static_conn_state)
    if inst.conns is None:
        inst.conns = {}
    inst.conns[conn.id] = conn
    hook = d.hooks.get("on_connect")
    if hook is not None:
        try:
            await inst.call_hook(
                hook, opts.on_connect_timeout, "on_connect", inst.context(conn), conn
            )
        except ActorError:
            await disconnect(conn, "on_connect failed", notify_sink=False)
            raise
        from .checkpoint import checkpoint_soon

        # State changed by on_connect is committed like any change outside an action.
        checkpoint_soon(inst)
    return conn


async def disconnect(conn: ConnImpl, reason: str | None, *, notify_sink: bool = True) -> None:
    """Remove ``conn``, tell its transport, then run on_disconnect (errors are logged)."""
    if not conn.is_open:
        return
    conn.is_open = False
    inst = conn._inst
    if inst.conns is not None:
        inst.conns.pop(conn.id, None)
        if not inst.conns:
            inst.conns = None
    if notify_sink and conn.sink is not None:
        try:
            conn.sink.closed(reason)
        except Exception:
            log.exception("connection sink failed on close")
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
            log.error("actor %s (%s): %s", inst.name, inst.actor_id, exc.message)
        from .checkpoint import checkpoint_soon

        checkpoint_soon(inst)
    inst.became_idle()


def emit(inst: ActorInstance, target: ConnImpl | None, event: str, args: tuple[Any, ...]) -> None:
    """Queue an event for a broadcast (``target`` None) or one connection.

    Raises:
        EncodingError: an argument cannot be encoded or the event is too large.
    """
    payload = encode_event_args(args, event, inst.svc.max_outgoing_message_size)
    outgoing: Outgoing = (target, event, payload)
    if inst.definition.options.durability != "strict":
        deliver(inst, outgoing)
        return
    from .checkpoint import checkpoint_soon

    if inst.writes is None:
        inst.writes = PendingWrites()
    inst.writes.outbox.append(outgoing)
    checkpoint_soon(inst)


def deliver(inst: ActorInstance, outgoing: Outgoing) -> None:
    """Hand a released event to its recipients' transports."""
    target, event, payload = outgoing
    if target is not None:
        if target.is_open and target.sink is not None:
            target.sink.deliver(event, payload)
        return
    for conn in list((inst.conns or {}).values()):
        if event in conn.subscriptions and conn.sink is not None:
            conn.sink.deliver(event, payload)


def encode_event_args(args: tuple[Any, ...], event: str, limit: int) -> bytes:
    """Encode event arguments once for every recipient.

    Raises:
        EncodingError: an argument cannot be encoded or the event is too large.
    """
    payload = encode(list(args), f"the arguments of event {event!r}")
    if len(payload) > limit:
        raise EncodingError(
            f"event {event!r} is {len(payload)} bytes, above the outgoing message limit "
            f"({limit} bytes)",
            group="message",
            code="outgoing_too_long",
        )
    return payload
