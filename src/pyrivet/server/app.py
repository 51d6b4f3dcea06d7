"""`PyrivetApp`: the ASGI application that serves a runtime to RivetKit clients.

```python
from pyrivet.server import create_app

app = create_app(registry)          # uvicorn app:app  (the app starts its own runtime)
```

It is a plain ASGI 3 callable, so it can be served by any ASGI server or mounted in
Starlette/FastAPI (``app.mount("/rivet", create_app(runtime))``). Everything runs on
the server's event loop, in the task the ASGI server gives each request.

Runtime ownership:

* ``create_app(registry, data_dir=...)`` owns a runtime: it is started by the ASGI
  lifespan ``startup`` and put to sleep (every actor's state committed) by
  ``shutdown``. Hosts that do not forward lifespan events to mounted apps (Starlette's
  ``Mount``) must enter ``async with app.lifespan():`` in their own lifespan.
* ``create_app(runtime)`` serves a runtime the caller starts and closes.

Until a runtime is running, requests get 503 ``server/not_running``.

Tracing: when the runtime makes OpenTelemetry spans (see ``pyrivet._runtime.tracing``),
a request's W3C ``traceparent`` (and ``tracestate``) header becomes the parent of the
spans its actions make, for HTTP requests and for every action of a WebSocket
connection.

Errors: a request that fails before reaching an actor gets a JSON error body (with
``x-rivet-error``) whatever its encoding; errors from the actor's action come in the
request's encoding; see `pyrivet.server.errors` for statuses. An unexpected exception
is logged and answered with ``core/internal_error``; the server keeps serving.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Sequence
from typing import Final

from .._runtime.handoff import REVIVE_EXTENSION, SOCKET_EXTENSION
from .._runtime.registry import Registry
from .._runtime.runtime import Runtime
from .._runtime.tracing import continue_trace, end_trace
from ..errors import ActorError
from ..storage._base import ActorStore
from ._asgi import ClientGone, HttpReply, Receive, RequestInfo, Scope, Send, send_reply
from ._state import ServerOptions, ServerState
from ._uvicorn_ws import DIRECT_EXTENSION, DIRECT_SEND_EXTENSION
from .cors import CorsPolicy
from .errors import error_reply
from .http_routes import gateway_http, health, metadata, not_found, root
from .inspector.auth import TOKEN_ENV
from .inspector.live import handle_live
from .inspector.page import ui_http
from .management import actor_route, actors_route
from .metrics import metrics_route
from .raw_routes import handle_websocket
from .routing import Route, header_route, parse_route
from .ws_connect import handle_connect

__all__ = ["PyrivetApp", "create_app"]

log = logging.getLogger("pyrivet.server")

#: RivetKit's hard limit on raw request bodies.
DEFAULT_MAX_RAW_REQUEST_SIZE: Final = 20 * 1024 * 1024
#: WebSocket code for "policy violation": used to refuse a socket on a non-socket route.
_CLOSE_POLICY: Final = 1008


class PyrivetApp:
    """The ASGI app; build it with `create_app`."""

    def __init__(
        self,
        target: Runtime | Registry,
        options: ServerOptions,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        storage: ActorStore | None = None,
    ) -> None:
        self._options = options
        self._registry: Registry | None = None
        self._runtime: Runtime | None = None
        self._data_dir = data_dir
        self._storage = storage
        self._state: ServerState | None = None
        if isinstance(target, Runtime):
            self._runtime = target
            self._state = ServerState(target, options)
        elif isinstance(target, Registry):
            self._registry = target
        else:
            raise TypeError(
                f"create_app takes a pyrivet Registry or Runtime, got {type(target).__name__}"
            )

    @property
    def runtime(self) -> Runtime | None:
        """The runtime served (None before an owned runtime started)."""
        return self._runtime

    # -- lifespan ------------------------------------------------------------------

    async def startup(self) -> None:
        """Start the owned runtime (no-op for a runtime passed in, or if started)."""
        if self._registry is None or self._state is not None:
            return
        runtime = self._registry.runtime(storage=self._storage, data_dir=self._data_dir)
        await runtime.start()
        self._runtime = runtime
        self._state = ServerState(runtime, self._options)

    async def shutdown(self) -> None:
        """Put every actor of the owned runtime to sleep and close its storage."""
        if self._registry is None or self._runtime is None:
            return
        runtime, self._runtime, self._state = self._runtime, None, None
        await runtime.aclose()

    async def go_away(self, timeout: float) -> None:
        """Close every ``connect`` WebSocket with 1012 ``ws.going_away`` (the server
        stops; see `ServerState.go_away`); waits at most ``timeout`` seconds."""
        if self._state is not None:
            await self._state.go_away(timeout)

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[PyrivetApp]:
        """``startup`` then ``shutdown``, for hosts that do not send lifespan events."""
        await self.startup()
        try:
            yield self
        finally:
            await self.shutdown()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("pyrivet runtime failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                except Exception as exc:
                    log.exception("pyrivet runtime failed to shut down cleanly")
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- ASGI ----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    def _running(self) -> ServerState:
        state = self._state
        if state is None:
            raise ActorError(
                "the pyrivet runtime is not running; serve this app with ASGI lifespan "
                "enabled, enter `async with app.lifespan()`, or pass a started Runtime",
                group="server",
                code="not_running",
            )
        return state

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = RequestInfo.from_scope(scope)
        cors = self._options.cors
        if request.method == "OPTIONS" and cors is not None:
            reply = cors.preflight(request)
        else:
            state = self._state
            trace = None
            if state is not None and state.runtime.tracing:
                trace = continue_trace(request.header("traceparent"), request.header("tracestate"))
            try:
                reply = await self._route_http(request, receive)
            except ClientGone:
                return
            except Exception as exc:
                reply = error_reply(exc)
            finally:
                end_trace(trace)
            if cors is not None:
                reply.add_headers(cors.response_headers(request))
        await send_reply(send, reply, head=request.method == "HEAD")

    async def _route_http(self, request: RequestInfo, receive: Receive) -> HttpReply:
        route = parse_route(request.segments, request.raw_segments)
        if route.kind != "gateway":
            route = header_route(request, websocket=False) or route
        if route.kind == "root":
            return root(request)
        if route.kind == "health":
            return health(request)
        state = self._running()
        if route.kind == "not_found" and request.segments[:1] == ("ui",):
            return await ui_http(state, request)
        if route.kind == "metadata":
            return metadata(state, request)
        if route.kind == "metrics":
            return await metrics_route(state, request)
        if route.kind == "actors":
            return await actors_route(state, request, receive)
        if route.kind == "actor":
            assert route.actor_id is not None
            return await actor_route(state, request, route.actor_id)
        if route.kind == "gateway":
            return await gateway_http(state, request, route, receive)
        raise not_found(f"{request.method} /{'/'.join(request.segments)}")

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = RequestInfo.from_scope(scope)
        route: Route = parse_route(request.segments, request.raw_segments)
        if route.kind != "gateway":
            route = header_route(request, websocket=True) or route
        state = self._state
        live = route.sub == "inspector" and route.path.rstrip("/") == "/live"
        if (
            state is None
            or route.kind != "gateway"
            or not (live or route.sub in ("connect", "websocket"))
        ):
            # Refused before the handshake: the ASGI server answers 403.
            await send({"type": "websocket.close", "code": _CLOSE_POLICY})
            return
        if live:
            await handle_live(state, request, route, receive, send)
            return
        trace = None
        if state.runtime.tracing:
            # Actions of this connection run in tasks started from this one: they
            # inherit the caller's trace.
            trace = continue_trace(request.header("traceparent"), request.header("tracestate"))
        try:
            if route.sub == "connect":
                extensions = scope.get("extensions") or {}
                serving = handle_connect(
                    state,
                    request,
                    route,
                    receive,
                    send,
                    handoff=extensions.get(SOCKET_EXTENSION),
                    revive=extensions.get(REVIVE_EXTENSION),
                    direct=extensions.get(DIRECT_EXTENSION),
                    direct_send=extensions.get(DIRECT_SEND_EXTENSION),
                )
                del request, route  # the handler drops them once the connection is open
                await serving
            else:
                await handle_websocket(state, request, route, receive, send)
        finally:
            end_trace(trace)


def create_app(
    target: Runtime | Registry,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    storage: ActorStore | None = None,
    cors_origins: str | Sequence[str] | None = "*",
    client_endpoint: str | None = None,
    max_raw_request_size: int = DEFAULT_MAX_RAW_REQUEST_SIZE,
    max_send_queue: int = 4096,
    inspector_token: str | None = None,
    reply_before_events: bool = False,
) -> PyrivetApp:
    """Build the ASGI app serving ``target`` to RivetKit clients.

    Args:
        target: a `Registry` (the app starts and stops its own runtime through the ASGI
            lifespan) or a `Runtime` the caller starts and closes.
        data_dir: for a registry: where the default SQLite driver keeps its files.
        storage: for a registry: a storage driver instead of the SQLite default.
        cors_origins: ``"*"`` answers CORS for every origin (echoed, with credentials,
            as the Rivet engine does), a list allows only those origins, None disables
            CORS handling.
        client_endpoint: reported by ``/metadata`` as ``clientEndpoint``: RivetKit
            clients then send all later traffic there.
        max_raw_request_size: largest body a raw ``request/`` handler receives.
        max_send_queue: frames one WebSocket may have queued before it is closed as
            too slow (1011 ``connection.overloaded``).
        inspector_token: the bearer token the ``/inspector`` routes require (default:
            the ``PYRIVET_INSPECTOR_TOKEN`` environment variable); without one they are
            refused (``inspector/disabled``).
        reply_before_events: on a ``connect`` WebSocket, send an action's reply ahead
            of the events its commit released (default: events first, as RivetKit
            sends them). ``pyrivet serve --engine`` sets it: behind the engine's
            gateway, an event sent right before its reply delayed the reply by the
            client's delayed ACK, ~40 ms (docs/engine.md).

    Raises:
        TypeError: ``target`` is neither a Registry nor a Runtime.
        ValueError: a limit is not positive.
    """
    if max_raw_request_size <= 0 or max_send_queue <= 0:
        raise ValueError("max_raw_request_size and max_send_queue must be positive")
    cors = CorsPolicy(cors_origins) if cors_origins is not None else None
    if inspector_token is None:
        inspector_token = os.environ.get(TOKEN_ENV) or None
    options = ServerOptions(
        cors,
        client_endpoint,
        max_raw_request_size,
        max_send_queue,
        inspector_token,
        reply_before_events,
    )
    return PyrivetApp(target, options, data_dir=data_dir, storage=storage)
