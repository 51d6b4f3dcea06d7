"""Raw routes: ``…/request/…`` and ``…/websocket/…``, served by the actor's own hooks.

The objects the hooks receive and return, and what the client sees, are described in
`pyrivet.server.raw`. Both routes open a connection through the runtime (so the
connection hooks run and the request appears in ``c.conns``) and close it afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .._runtime.connections import ConnImpl
from .._util.tasks import TaskSupervisor
from ..actor._definition import ActorDefinition
from ..errors import ActorError, InternalError
from ._asgi import BodyTooLarge, HttpReply, Receive, RequestInfo, Send, read_body
from ._state import ServerState
from ._websocket import Outbox
from .conn_params import PARAMS_HEADER, parse_params
from .errors import CLOSE_ERROR, close_reason, incoming_too_long, to_wire
from .gateway import GatewayTarget, ResolvedActor, route_target
from .raw import Request, Response, WebSocket, WebSocketClosed
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


class _RawSession:
    """One raw WebSocket: pumps client frames into the hook's inbox, closes on request."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.ws: WebSocket | None = None

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

    def attach(self, ws: WebSocket, *, closed: bool) -> None:
        self.ws = ws
        if closed:
            ws._mark_closed(1006)

    async def close(self, code: int, reason: str) -> None:
        self.outbox.close(code, reason)

    # EventSink: events do not reach raw sockets; a close from the actor closes it.
    def deliver(self, event: str, payload: bytes) -> None:
        pass

    def closed(self, reason: str | None) -> None:
        if self.ws is not None:
            self.ws._mark_closed(1000)
        self.outbox.close(1000, reason or "")


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
            _require_hook(state, actor, "on_websocket")
            conn = await runtime.connect(actor.actor_id, params, session, None, request.for_actor())
        except Exception as exc:
            outbox.close(CLOSE_ERROR, close_reason(to_wire(exc)))
        else:
            ws = WebSocket(
                _request(request, route, target, b""),
                session.inbox,
                _frame_sender(state, conn, outbox),
                session.close,
            )
            session.attach(ws, closed=pump.done())
            try:
                await runtime.call_hook_on_conn(conn, "on_websocket", ws, timeout=None)
            except Exception as exc:
                error = to_wire(exc)
                if (error.group, error.code) != ("connection", "closed"):
                    outbox.close(CLOSE_ERROR, close_reason(error))
            finally:
                if conn.is_open:
                    await conn.disconnect()
            outbox.close(1000)
        await outbox.done.wait()
    finally:
        await tasks.aclose()
