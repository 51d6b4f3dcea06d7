"""Raw routes: ``…/request/…`` and ``…/websocket/…``, served by the actor's own hooks.

The objects the hooks receive and return, and what the client sees, are described in
`pyrivet.server.raw`. Both routes open a connection through the runtime (so the
connection hooks run and the request appears in ``c.conns``) and close it afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from .._runtime.connections import ConnImpl, HibernatableSink
from .._util.tasks import TaskSupervisor
from ..actor._definition import ActorDefinition
from ..errors import ActorError, InternalError
from ._asgi import BodyTooLarge, HttpReply, Receive, RequestInfo, Send, read_body
from ._state import ServerState
from ._websocket import Outbox
from .conn_params import PARAMS_HEADER, parse_params
from .errors import CLOSE_ERROR, close_reason, incoming_too_long, to_wire
from .gateway import GatewayTarget, ResolvedActor, route_target
from .raw import CLOSED, WAKE, Request, Response, WebSocket, WebSocketClosed
from .routing import Route
from .ws_connect import accept_subprotocol

__all__ = ["handle_request", "handle_websocket"]

log = logging.getLogger("pyrivet.server")

#: Request headers that belong to the gateway, not to the actor's handler.
_HIDDEN_HEADERS = frozenset({"x-rivet-encoding"})
#: Response headers the server sets itself.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


class _NoEvents:
    """EventSink of a raw HTTP request: events do not apply, the request ends by itself."""

    def deliver(self, event: str, payload: bytes) -> None:
        pass

    def closed(self, reason: str | None) -> None:
        pass


def _request(request: RequestInfo, route: Route, target: GatewayTarget, body: bytes) -> Request:
    return Request(
        request.method,
        route.path,
        raw_path=route.raw_path,
        query_string=target.forwarded_query,
        headers=[(k, v) for k, v in request.headers if k not in _HIDDEN_HEADERS],
        body=body,
    )


def _require_hook(state: ServerState, actor: ResolvedActor, hook: str) -> ActorDefinition[Any]:
    """The actor's definition, if it defines ``hook`` (checked before connecting)."""
    definition = state.runtime.definition(actor.name)
    if hook not in definition.hooks:
        raise ActorError(
            f"actor {actor.name!r} defines no {hook} handler", code="handler_not_found"
        )
    return definition


async def handle_request(
    state: ServerState,
    request: RequestInfo,
    route: Route,
    target: GatewayTarget,
    receive: Receive,
) -> HttpReply:
    """Run ``on_request`` for an HTTP request and return its `Response` as a reply.

    Raises:
        ActorError: bad params or body size (before the actor is touched), actor not
            found, a connection hook rejected the request, the hook is missing
            (``actor/handler_not_found``) or failed; rendered as a JSON error body.
    """
    params = parse_params(request.header(PARAMS_HEADER))
    limit = state.options.max_raw_request_size
    try:
        body = await read_body(receive, limit)
    except BodyTooLarge:
        raise incoming_too_long("the request body", None, limit) from None
    actor = await state.directory.resolve(target)
    runtime = state.runtime
    timeout = _require_hook(state, actor, "on_request").options.action_timeout
    conn = await runtime.connect(actor.actor_id, params, _NoEvents(), None, request.for_actor())
    try:
        result: Any = await runtime.call_hook_on_conn(
            conn, "on_request", _request(request, route, target, body), timeout=timeout
        )
    finally:
        await conn.disconnect()
    if not isinstance(result, Response):
        log.error(
            "actor %s (%s): on_request returned %s; it must return pyrivet.server.Response",
            actor.name,
            actor.actor_id,
            type(result).__name__,
        )
        raise InternalError()
    # The server frames the body itself: a handler's length/encoding headers would clash.
    headers = [(k, v) for k, v in result.headers if k not in _FRAMING_HEADERS]
    reply = HttpReply(result.status, result.body, headers)
    reply.add_headers(actor.headers())
    return reply


class _RawSession(HibernatableSink):
    """One raw WebSocket: pumps client frames into the hook's inbox, closes on request.

    For a hibernatable socket it is also the parked sink while the actor sleeps
    (``hibernation.py``): `hibernate` ends the hook's ``receive``, `attach` hands the
    woken connection back.
    """

    sequenced = False
    #: A raw socket is not handed to another process (its hook's state lives here).
    handoff = None

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.ws: WebSocket | None = None
        self.conn: ConnImpl | None = None
        #: Set from ``can_hibernate_websocket`` once the actor is known.
        self.hibernatable = False

    async def pump(self, receive: Receive) -> None:
        """Move client frames into the inbox until the client disconnects."""
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                code = int(message.get("code", 1000))
                if self.ws is not None:
                    self.ws._mark_closed(code)
                return
            data = message.get("bytes")
            self.inbox.put_nowait(data if data is not None else message.get("text") or "")

    def attach_ws(self, ws: WebSocket, *, closed: bool) -> None:
        self.ws = ws
        if closed:
            ws._mark_closed(1006)

    async def close(self, code: int, reason: str) -> None:
        self.outbox.close(code, reason)

    # EventSink: events do not reach raw sockets; a close from the actor closes it.
    def deliver(self, event: str, payload: bytes) -> None:
        pass

    def deliver_seq(self, event: str, payload: bytes, epoch: str, seq: int) -> None:
        pass

    def hello(self, info: dict[str, Any]) -> None:
        pass

    def closed(self, reason: str | None) -> None:
        if self.ws is not None:
            self.ws._mark_closed(1000)
        self.outbox.close(1000, reason or "")

    def hibernate(self) -> None:
        self.conn = None
        if self.ws is not None:
            self.ws._hibernate()

    def attach(self, conn: ConnImpl) -> None:
        self.conn = conn

    def is_parked(self) -> bool:
        """Whether the actor slept and left the socket open (hibernated)."""
        return self.conn is None and not self.outbox.closing

    async def next_message(self, pump: asyncio.Task[None], tasks: TaskSupervisor) -> bool:
        """While hibernated: wait for a client message (True; it stays first in the
        inbox) or for the client to leave (False)."""
        while True:
            getter = tasks.spawn(self.inbox.get(), name="ws-wait")
            await asyncio.wait({getter, pump}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                return False
            item = getter.result()
            if item is CLOSED:
                return False
            if item is WAKE:
                continue
            rest = [item]
            while not self.inbox.empty():
                rest.append(self.inbox.get_nowait())
            for frame in rest:
                if frame is not WAKE:
                    self.inbox.put_nowait(frame)
            return True


def _frame_sender(
    state: ServerState, conn: ConnImpl, outbox: Outbox
) -> Callable[[str | bytes], Awaitable[None]]:
    """Send one frame of a raw socket, after committing the actor's pending changes."""

    async def send_frame(data: str | bytes) -> None:
        try:
            await state.runtime.commit_on_conn(conn, "on_websocket")
        except ActorError as exc:
            if (exc.group, exc.code) == ("connection", "closed"):
                raise WebSocketClosed("the WebSocket is closed") from None
            raise
        if not await outbox.send(data):
            raise WebSocketClosed("the WebSocket is closed")

    return send_frame


async def _serve_hook(
    state: ServerState,
    session: _RawSession,
    conn: ConnImpl,
    request: Request,
    pump: asyncio.Task[None],
    tasks: TaskSupervisor,
) -> None:
    """Run ``on_websocket`` for the socket; for a hibernatable one, again after each
    wake, until the socket or the hook ends it."""
    runtime = state.runtime
    outbox = session.outbox
    actor_id = _instance_id(conn)
    session.conn = conn
    resumed = False
    while True:
        waiting = partial(runtime.conn_waiting, conn) if conn.hibernatable else None
        ws = WebSocket(
            request,
            session.inbox,
            _frame_sender(state, conn, outbox),
            session.close,
            resumed=resumed,
            waiting=waiting,
        )
        session.attach_ws(ws, closed=pump.done())
        try:
            await runtime.call_hook_on_conn(conn, "on_websocket", ws, timeout=None)
        except Exception as exc:
            error = to_wire(exc)
            if (error.group, error.code) != ("connection", "closed"):
                outbox.close(CLOSE_ERROR, close_reason(error))
        if session.is_parked():
            # Hibernated: the socket waits without the actor for the next message.
            if not await session.next_message(pump, tasks):
                runtime.parked_left(actor_id, conn.id, session)
                return
            try:
                conn = await runtime.wake_parked(actor_id, conn.id, session)
            except Exception as exc:
                outbox.close(CLOSE_ERROR, close_reason(to_wire(exc)))
                return
            resumed = True
            continue
        if conn.is_open and conn.sink is session:
            await conn.disconnect()
        return


def _instance_id(conn: ConnImpl) -> str:
    return str(conn.owner.actor_id)


async def handle_websocket(
    state: ServerState, request: RequestInfo, route: Route, receive: Receive, send: Send
) -> None:
    """Serve a ``…/websocket/…`` socket with the actor's ``on_websocket`` hook.

    The socket is accepted first (selecting ``rivet`` when offered); any failure to
    reach the actor or of its hooks closes it with 1011 and reason ``group.code``.
    """
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    protocols = request.subprotocols()
    await send({"type": "websocket.accept", "subprotocol": accept_subprotocol(protocols)})
    outbox = Outbox(send, state.options.max_send_queue)
    session = _RawSession(outbox)
    tasks = TaskSupervisor("pyrivet raw websocket")
    tasks.spawn(outbox.run(), name="ws-writer")
    pump = tasks.spawn(session.pump(receive), name="ws-reader")
    runtime = state.runtime
    try:
        try:
            params = parse_params(request.header(PARAMS_HEADER), protocols)
            target = route_target(route, request.query_string, max_input_size=state.max_incoming)
            actor = await state.directory.resolve(target)
            definition = _require_hook(state, actor, "on_websocket")
            session.hibernatable = definition.options.can_hibernate_websocket
            conn = await runtime.connect(actor.actor_id, params, session, None, request.for_actor())
        except Exception as exc:
            outbox.close(CLOSE_ERROR, close_reason(to_wire(exc)))
        else:
            raw_request = _request(request, route, target, b"")
            await _serve_hook(state, session, conn, raw_request, pump, tasks)
            outbox.close(1000)
        await outbox.done.wait()
    finally:
        await tasks.aclose()
