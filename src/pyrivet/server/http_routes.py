"""HTTP handlers of the top-level routes and the gateway's actor routes.

Each handler returns an `HttpReply` or raises; the app renders what it raises as a
JSON error body (RivetKit's gateway-level errors are JSON whatever the encoding).
Everything a request carries (route, method, encoding, params, body) is checked
*before* the actor is resolved, so bad input never creates, wakes or changes an actor.
Once the action runs, its result or error is encoded in the request's encoding.

| route                          | what runs                                         |
|--------------------------------|---------------------------------------------------|
| ``GET /metadata``              | server facts; RivetKit clients await it first     |
| ``POST …/action/{name}``       | `Runtime.call_action` with a transient connection |
| ``POST …/queue/{name}``        | `Runtime.send_queue` (waits if the body says so)  |
| ``GET …/health``               | ``ok`` (resolving, so waking, the actor)          |
| ``GET …/metadata``             | the actor's name and id                           |
| ``…/request/…``                | `raw_routes.handle_request` (``on_request``)      |
| ``…/inspector/…``              | `inspector.routes.inspector_http` (token needed)  |
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from .._protocol.messages import (
    HttpActionRequest,
    HttpActionResponse,
    HttpQueueSendRequest,
    HttpQueueSendResponse,
    QueueSendStatus,
    content_type,
    decode_http,
    encode_http,
    parse_encoding,
)
from .._version import __version__
from ..errors import ActionNotFoundError, ActorError
from ._asgi import BodyTooLarge, HttpReply, Receive, RequestInfo, read_body
from ._state import ServerState
from .conn_params import PARAMS_HEADER, parse_params
from .errors import (
    check_storable,
    error_reply,
    incoming_too_long,
    invalid_request,
    outgoing_too_long,
)
from .gateway import GatewayTarget, route_target
from .inspector.routes import inspector_http
from .raw_routes import handle_request
from .routing import Route

__all__ = [
    "gateway_http",
    "health",
    "json_reply",
    "metadata",
    "method_not_allowed",
    "not_found",
    "root",
]

_ENCODING_HEADER: Final = "x-rivet-encoding"


def json_reply(value: Any, status: int = 200) -> HttpReply:
    return HttpReply.of(status, msgspec.json.encode(value), "application/json")


def method_not_allowed(method: str, allowed: str) -> ActorError:
    return ActorError(
        f"method {method} is not allowed here; use {allowed}",
        code="method_not_allowed",
        metadata={"allowed": allowed},
    )


def not_found(what: str) -> ActorError:
    return ActorError(
        f"no route for {what}; see the gateway routes action/, queue/, connect, "
        "request/, websocket/, health, metadata",
        code="route_not_found",
    )


def _route_owner(route: Route) -> str:
    if route.by_header:
        return f"the actor {route.target} (named by x-rivet-actor)"
    return f"/gateway/{route.target}"


def _require(request: RequestInfo, *methods: str) -> None:
    if request.method not in methods:
        raise method_not_allowed(request.method, " or ".join(methods))


def root(request: RequestInfo) -> HttpReply:
    _require(request, "GET", "HEAD")
    return HttpReply.of(
        200, b"This is a pyrivet server (Rivet Actors for Python).\n", "text/plain; charset=utf-8"
    )


def health(request: RequestInfo) -> HttpReply:
    _require(request, "GET", "HEAD")
    return HttpReply.of(200, b"ok", "text/plain; charset=utf-8")


def metadata(state: ServerState, request: RequestInfo) -> HttpReply:
    """``GET /metadata``: any 200 JSON object satisfies RivetKit clients.

    ``clientEndpoint`` is included when configured: clients then send all later traffic
    there.
    """
    _require(request, "GET", "HEAD")
    body: dict[str, Any] = {
        "runtime": "pyrivet",
        "version": __version__,
        "actorNames": {name: {} for name in state.runtime.registry.definitions},
    }
    endpoint = state.options.client_endpoint
    if endpoint is not None:
        body["clientEndpoint"] = endpoint
        body["clientNamespace"] = "default"
    return json_reply(body)


async def gateway_http(
    state: ServerState, request: RequestInfo, route: Route, receive: Receive
) -> HttpReply:
    """Serve an HTTP request under ``/gateway/{target}``.

    Raises:
        ActorError: bad route, method, encoding, params, body or target (JSON error).
    """
    assert route.target is not None
    sub = route.sub
    if sub in ("connect", "websocket"):
        raise invalid_request(f"{sub} needs a WebSocket upgrade request")
    if sub == "unknown":
        raise not_found(f"{request.method} {route.path} under {_route_owner(route)}")
    target = route_target(route, request.query_string, max_input_size=state.max_incoming)
    if sub == "action":
        return await _action(state, request, route, target, receive)
    if sub == "queue":
        return await _queue_send(state, request, route, target, receive)
    if sub == "request":
        return await handle_request(state, request, route, target, receive)
    if sub == "inspector":
        return await inspector_http(state, request, route, target, receive)
    _require(request, "GET", "HEAD")
    actor = await state.directory.resolve(target)
    if sub == "health":
        reply = HttpReply.of(200, b"ok", "text/plain; charset=utf-8")
    else:
        reply = json_reply(
            {
                "runtime": "pyrivet",
                "version": __version__,
                "type": "actor",
                "name": actor.name,
                "actorId": actor.actor_id,
            }
        )
    reply.headers.extend(actor.headers())
    return reply


def _precheck_action(state: ServerState, target: GatewayTarget, name: str) -> None:
    """For the query form: fail before get-or-create can create an actor for nothing."""
    if target.query is None:
        return
    definition = state.runtime.definition(target.query.name)
    if name not in definition.actions:
        known = ", ".join(sorted(definition.actions)) or "none"
        raise ActionNotFoundError(
            f"actor {definition.name!r} has no action {name!r} (actions: {known})"
        )


async def _post_body(
    state: ServerState, request: RequestInfo, route: Route, receive: Receive
) -> bytes:
    """The body of a framework POST (action, queue send), within the incoming limit."""
    _require(request, "POST")
    assert route.name is not None
    try:
        return await read_body(receive, state.max_incoming)
    except BodyTooLarge:
        raise incoming_too_long("the request body", None, state.max_incoming) from None


async def _action(
    state: ServerState,
    request: RequestInfo,
    route: Route,
    target: GatewayTarget,
    receive: Receive,
) -> HttpReply:
    encoding = parse_encoding(request.header(_ENCODING_HEADER))
    params = parse_params(request.header(PARAMS_HEADER))
    body = await _post_body(state, request, route, receive)
    call = decode_http(body, encoding, HttpActionRequest)
    check_storable(call.args, "args")
    assert route.name is not None
    _precheck_action(state, target, route.name)
    actor = await state.directory.resolve(target, durable=False)
    try:
        output = await state.runtime.call_action(
            actor.actor_id, route.name, call.args, params=params, request=request.for_actor()
        )
        data = encode_http(HttpActionResponse(output), encoding)
        if len(data) > state.max_outgoing:
            raise outgoing_too_long("the action result", len(data), state.max_outgoing)
    except Exception as exc:
        reply = error_reply(exc, encoding, actor=actor.specifier())
    else:
        reply = HttpReply.of(200, data, content_type(encoding))
    reply.headers.extend(actor.headers())
    return reply


async def _queue_send(
    state: ServerState,
    request: RequestInfo,
    route: Route,
    target: GatewayTarget,
    receive: Receive,
) -> HttpReply:
    """``POST …/queue/{name}``: enqueue durably; with ``wait``, hold the reply until the
    message is completed or ``timeout`` ms pass (bounded by the actor's action timeout,
    as RivetKit's server does). The queue name comes from the path."""
    encoding = parse_encoding(request.header(_ENCODING_HEADER))
    body = await _post_body(state, request, route, receive)
    send = decode_http(body, encoding, HttpQueueSendRequest)
    check_storable(send.body, "body")
    assert route.name is not None
    wait = bool(send.wait)
    actor = await state.directory.resolve(target, durable=False)
    timeout: float | None = None
    if wait:
        limit = state.runtime.definition(actor.name).options.action_timeout
        timeout = limit if send.timeout_ms is None else min(send.timeout_ms / 1000, limit)
    try:
        outcome = await state.runtime.send_queue(
            actor.actor_id,
            route.name,
            send.body,
            wait=wait,
            timeout=timeout,
            request=request.for_actor(),
        )
        status = QueueSendStatus.from_wire(outcome.status) or QueueSendStatus.COMPLETED
        data = encode_http(HttpQueueSendResponse(status, outcome.response), encoding)
        if len(data) > state.max_outgoing:
            raise outgoing_too_long("the completion response", len(data), state.max_outgoing)
    except Exception as exc:
        reply = error_reply(exc, encoding, actor=actor.specifier())
    else:
        reply = HttpReply.of(200, data, content_type(encoding))
    reply.headers.extend(actor.headers())
    return reply
