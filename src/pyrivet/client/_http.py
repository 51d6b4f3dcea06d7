"""`HttpTransport`: the network transport behind ``Client("http://host:6420")``.

It speaks the RivetKit client protocol the way the official JavaScript client 2.3.19
does (protocol reference §4.4), so it works against pyrivet's server and RivetKit's:

| operation        | handle by key (get / get_or_create)     | handle by id (get_for_id, create) |
|------------------|-----------------------------------------|-----------------------------------|
| action           | ``POST`` query gateway ``…/action/{n}`` | ``POST /gateway/{id}/action/{n}`` |
| ``connect()``    | WebSocket query gateway ``…/connect``   | ``/gateway/{id}/connect``         |
| ``fetch(path)``  | query gateway ``…/request/{path}``      | ``/gateway/{id}/request/{path}``  |
| ``websocket(p)`` | query gateway ``…/websocket/{p}``       | ``/gateway/{id}/websocket/{p}``   |
| ``resolve()``    | ``PUT /actors`` / ``GET /actors``       | no request                        |
| ``create``       | ``POST /actors``, then a handle by id   |                                   |

Query-gateway URLs are ``/gateway/{name}{path}?…rvt-namespace=…&rvt-method=…&rvt-key=…``.
Keys the query URL cannot carry (a part with ``,`` or empty) and inputs above
``max_input_size`` go through the management API instead, then the direct path.

Requests whose actor is starting or stopping (``actor/starting|stopping|…``) are retried
every 100 ms (60 times for get_or_create handles, 24 otherwise), on the injected clock.

Every HTTP request goes through one `aiohttp.ClientSession` per transport: keep-alive
connections, no cap on how many are open at once (many callers may each wait on a long
action), opened on the first request on the caller's event loop and closed by
`HttpTransport.aclose`. Connection failures, timeouts and responses that are not valid
HTTP raise `NetworkError`; error responses are decoded here (never raised by aiohttp).

aiohttp and websockets are the ``client`` extra; importing this module without them
raises an `ImportError` that says how to install them.
"""

from __future__ import annotations

import inspect
import json
import logging
import random
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import urlencode

try:
    import aiohttp
    from websockets.asyncio.client import connect as ws_connect
    from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
    from websockets.typing import Subprotocol
    from yarl import URL  # aiohttp's URL type, installed with it
except ImportError as exc:  # pragma: no cover - exercised by a test that hides the libs
    raise ImportError(
        "Client(url) needs the network client's dependencies (aiohttp, websockets): "
        "pip install 'pyrivet[client]'"
    ) from exc

from .._protocol.errors import ProtocolError
from .._protocol.listing import ActorInfo
from .._protocol.messages import (
    ENCODINGS,
    Encoding,
    HttpActionRequest,
    HttpActionResponse,
    HttpQueueSendRequest,
    HttpQueueSendResponse,
    HttpResponseError,
    content_type,
    decode_http,
    encode_http,
)
from .._protocol.query import ActorQuery, deserialize_key
from .._util.backoff import Backoff
from .._util.clock import Clock, SystemClock
from .._version import __version__
from ..errors import ActorError, ActorNotFoundError
from ._errors import HttpRequestError, NetworkError
from ._extensions import QueryConnectTransport, RawResponse, RawTransport
from ._gateway import (
    CONN_PARAMS_HEADER,
    DEFAULT_MAX_INPUT_SIZE,
    ENCODING_HEADER,
    conn_params_header,
    connect_subprotocols,
    direct_path,
    encode_uri_component,
    management_input,
    parse_endpoint,
    query_path,
    query_path_supported,
    serialize_key,
    split_user_path,
)
from ._reader import FrameReader
from ._transport import Transport
from ._ws import ActorSocket, NetRawWebSocket, is_transient

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from ._transport import ConnectionListener

__all__ = ["HttpTransport", "resolve_params"]

T = TypeVar("T")
log = logging.getLogger("pyrivet.client")

USER_AGENT: Final = f"pyrivet-client/{__version__}"
#: Wait between retries of a request whose actor is starting or stopping.
LIFECYCLE_RETRY_DELAY: Final = 0.1
#: The largest WebSocket message accepted from the server.
MAX_WS_MESSAGE: Final = 32 * 1024 * 1024
#: Seconds an idle keep-alive connection is kept: below uvicorn's 5 s, so the server
#: rarely closes one as it is being reused (Node's fetch uses 4 s too).
KEEPALIVE_EXPIRY: Final = 4.0


async def resolve_params(params: Any) -> Any:
    """Connection params: ``params`` itself, or what it returns if it is callable
    (sync or async), evaluated anew for every request and every (re)connection.

    Raises:
        ActorError: ``client/get_params_failed`` if the callable raised.
    """
    if not callable(params):
        return params
    try:
        value = params()
        if inspect.isawaitable(value):
            value = await value
    except Exception as exc:
        raise ActorError(
            f"the connection params function failed: {exc!r}",
            group="client",
            code="get_params_failed",
        ) from exc
    return value


class _Reply:
    """A complete HTTP response: status, reason, headers (aiohttp's case-insensitive
    multidict), body."""

    __slots__ = ("content", "headers", "reason_phrase", "status_code")

    def __init__(
        self,
        status_code: int,
        reason_phrase: str,
        headers: Mapping[str, str],
        content: bytes,
    ) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.headers = headers
        self.content = content

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def header_dict(self) -> dict[str, str]:
        """The headers with lower-case names; a repeated header's values joined by ``, ``."""
        merged: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            old = merged.get(key)
            merged[key] = value if old is None else f"{old}, {value}"
        return merged


def _error_from_body(
    status: int, reason: str, body: bytes, ctype: str, encoding: Encoding
) -> ActorError:
    """The error an error response carries, or `HttpRequestError` if it carries none.

    As the JavaScript client does, a JSON ``Content-Type`` means JSON whatever
    encoding was asked for.
    """
    candidates: list[Encoding] = ["json"] if "application/json" in ctype else [encoding, "json"]
    for enc in candidates:
        try:
            return decode_http(body, enc, HttpResponseError).to_exception()
        except ProtocolError:
            continue
    text = body.decode("utf-8", errors="replace")
    return HttpRequestError(
        f"{reason or 'HTTP error'} ({status}): {text[:200]}",
        metadata={"status": status, "body": text[:1000]},
    )


class HttpTransport(Transport, RawTransport, QueryConnectTransport):
    """A `Transport` over HTTP and WebSocket to a RivetKit-compatible endpoint.

    Args:
        endpoint: ``http(s)://host:port[/base]``; ``https://namespace:token@host`` sets
            the namespace and token.
        encoding: ``"bare"`` (default, as the JavaScript client), ``"cbor"`` or ``"json"``.
        namespace: sent as ``?namespace=`` / ``rvt-namespace``; default ``"default"``.
        token: sent as ``Authorization: Bearer`` (management API) and in gateway URLs.
        headers: extra headers sent with every HTTP request and WebSocket handshake.
        pool_name: ``runner_name_selector`` / ``rvt-runner``; default ``"default"``.
        clock: time source for backoff and retry waits (a mock clock in tests).
        backoff: the reconnect backoff of connections (250 ms doubling to 30 s).
        max_input_size: largest CBOR input carried in a query URL (4 KiB).
        timeout: seconds an HTTP request may take (actions may run up to the actor's
            action timeout, 60 s by default).
        metadata_lookup: read ``GET /metadata`` once before the first request and follow
            its ``clientEndpoint``/``clientNamespace``/``clientToken``, as the JS client.
        rng: random source for backoff jitter.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        encoding: str = "bare",
        namespace: str | None = None,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        pool_name: str = "default",
        clock: Clock | None = None,
        backoff: Backoff | None = None,
        max_input_size: int = DEFAULT_MAX_INPUT_SIZE,
        timeout: float = 90.0,
        metadata_lookup: bool = True,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}; got {encoding!r}")
        self._endpoint = parse_endpoint(endpoint, namespace, token)
        self._explicit_namespace = namespace
        self._explicit_token = token
        self.encoding: Encoding = encoding
        self._headers = dict(headers or {})
        self._pool_name = pool_name
        self._clock: Clock = clock or SystemClock()
        self._backoff = backoff or Backoff()
        self._max_input_size = max_input_size
        self._timeout = timeout
        self._metadata_pending = metadata_lookup
        self._rng = rng
        #: Opened by the first request, on the caller's loop (see `_open_session`).
        self._session: aiohttp.ClientSession | None = None
        self._sockets: weakref.WeakSet[ActorSocket] = weakref.WeakSet()
        self._closed = False

    @property
    def endpoint(self) -> str:
        """The base URL requests go to (after the metadata lookup, if any)."""
        return self._endpoint.base

    # -- plumbing -------------------------------------------------------------------

    def _open_session(self) -> aiohttp.ClientSession:
        """The HTTP session, bound to the running loop; our user agent unless the
        caller's headers name one. No ``Content-Type`` is added to a body that has none."""
        headers = dict(self._headers)
        if not any(name.lower() == "user-agent" for name in headers):
            headers["user-agent"] = USER_AGENT
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_EXPIRY),
            headers=headers,
            skip_auto_headers=("Content-Type",),
            timeout=aiohttp.ClientTimeout(
                total=self._timeout, sock_connect=min(self._timeout, 10.0)
            ),
            raise_for_status=False,
            auto_decompress=True,
        )
        return self._session

    async def _request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> _Reply:
        """Send one request and read its whole response (whatever its status).

        ``url`` is sent as it is (already percent-encoded); ``params`` are appended.

        Raises:
            NetworkError: no connection, a timeout, or a response that is not HTTP.
            RuntimeError: the transport is closed.
        """
        if self._closed:
            raise RuntimeError("the client is closed")
        target = url if not params else f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
        session = self._session or self._open_session()
        try:
            async with session.request(
                method,
                URL(target, encoded=True),
                data=content,
                headers=headers,
                allow_redirects=False,  # a redirect is the caller's to see, as with fetch
            ) as response:
                body = await response.read()
        except TimeoutError as exc:
            raise NetworkError(f"{method} {url} timed out ({type(exc).__name__})") from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"cannot reach {url}: {exc or type(exc).__name__}") from exc
        return _Reply(response.status, response.reason or "", response.headers, body)

    async def _ready(self) -> None:
        """Do the one-time ``GET /metadata`` lookup (retried on the next call if the
        server cannot be reached)."""
        if not self._metadata_pending:
            return
        response = await self._request(
            "GET",
            self._endpoint.http_url("/metadata"),
            params={"namespace": self._endpoint.namespace},
        )
        self._metadata_pending = False
        if response.status_code != 200:
            return
        try:
            meta = json.loads(response.content)
        except ValueError:
            return
        if not isinstance(meta, dict):
            return
        client_endpoint = meta.get("clientEndpoint")
        if isinstance(client_endpoint, str) and client_endpoint:
            namespace = meta.get("clientNamespace")
            token = meta.get("clientToken")
            self._endpoint = parse_endpoint(
                client_endpoint,
                self._explicit_namespace or (namespace if isinstance(namespace, str) else None),
                self._explicit_token or (token if isinstance(token, str) else None),
            )

    def _response_error(self, response: _Reply, encoding: Encoding) -> ActorError:
        return _error_from_body(
            response.status_code,
            response.reason_phrase,
            response.content,
            response.headers.get("content-type", ""),
            encoding,
        )

    async def _with_lifecycle_retry(self, query: ActorQuery, op: Callable[[], Awaitable[T]]) -> T:
        attempts = 60 if query.mode == "get_or_create" else 24
        for attempt in range(1, attempts + 1):
            try:
                return await op()
            except ActorError as exc:
                if attempt == attempts or not is_transient(exc, by_key=False):
                    raise
                log.debug("retrying %s: %s/%s", query.name, exc.group, exc.code)
                await self._clock.sleep(LIFECYCLE_RETRY_DELAY)
        raise AssertionError("unreachable")

    async def _gateway_path(
        self, query: ActorQuery, actor_id: str | None, path: str
    ) -> tuple[str, str | None]:
        """(the gateway path for ``path`` on the actor, its id if known)."""
        token = self._endpoint.token
        if query.mode == "get_for_id":
            assert query.actor_id is not None
            return direct_path(query.actor_id, path, token), query.actor_id
        if query_path_supported(query, self._max_input_size):
            return (
                query_path(
                    query,
                    path,
                    namespace=self._endpoint.namespace,
                    token=token,
                    pool_name=self._pool_name,
                ),
                None,
            )
        if actor_id is None:
            actor_id = await self.resolve(query)
        return direct_path(actor_id, path, token), actor_id

    def _framework_headers(self, params: Any) -> dict[str, str]:
        headers = {ENCODING_HEADER: self.encoding, "content-type": content_type(self.encoding)}
        if params is not None:
            headers[CONN_PARAMS_HEADER] = conn_params_header(params)
        return headers

    async def _open_ws(
        self,
        path: str,
        protocols: Sequence[str],
        connection: type[ClientConnection] | None = None,
    ) -> ClientConnection:
        """Open a WebSocket; ``connection``: the class ``websockets`` makes it with
        (`FrameReader` for actor connections; raw sockets keep ``websockets``' own)."""
        url = self._endpoint.ws_url(path)
        try:
            return await ws_connect(
                url,
                subprotocols=[Subprotocol(p) for p in protocols],
                additional_headers=self._headers or None,
                user_agent_header=USER_AGENT,
                open_timeout=min(self._timeout, 15.0),
                close_timeout=5.0,
                max_size=MAX_WS_MESSAGE,
                create_connection=connection,
            )
        except InvalidStatus as exc:
            response = exc.response
            raise _error_from_body(
                response.status_code,
                response.reason_phrase,
                bytes(response.body or b""),
                response.headers.get("content-type", ""),
                "json",
            ) from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise NetworkError(f"cannot open a WebSocket to {url}: {exc}") from exc

    # -- Transport --------------------------------------------------------------------

    async def resolve(self, query: ActorQuery) -> str:
        """The actor id for ``query`` through the management API (JSON).

        ``get``: ``GET /actors?name&key``; ``get_or_create``: ``PUT /actors``;
        ``create``: ``POST /actors``; ``get_for_id``: the id, no request.

        Raises:
            ActorNotFoundError: ``get`` found no actor.
            DuplicateKeyError: ``create`` found a live actor with that key.
        """
        if query.mode == "get_for_id":
            assert query.actor_id is not None
            return query.actor_id
        await self._ready()
        url = self._endpoint.http_url("/actors")
        namespace = {"namespace": self._endpoint.namespace}
        headers = (
            {"authorization": f"Bearer {self._endpoint.token}"} if self._endpoint.token else {}
        )
        key = serialize_key(query.key)
        if query.mode == "get":
            response = await self._request(
                "GET", url, params={"name": query.name, "key": key, **namespace}, headers=headers
            )
        else:
            body: dict[str, Any] = {
                "name": query.name,
                "key": key,
                "runner_name_selector": self._pool_name,
                "crash_policy": "sleep",
            }
            if query.input is not None:
                body["input"] = management_input(query.input)
            method = "PUT" if query.mode == "get_or_create" else "POST"
            headers["content-type"] = "application/json"
            response = await self._request(
                method,
                url,
                params=namespace,
                headers=headers,
                content=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
            )
        if not response.is_success:
            raise self._response_error(response, "json")
        try:
            payload = json.loads(response.content)
            actor = payload["actors"][0] if query.mode == "get" else payload["actor"]
            actor_id = actor["actor_id"]
        except IndexError:
            raise ActorNotFoundError(
                f"no actor {query.name!r} with key {list(query.key)!r}",
                metadata={"name": query.name, "key": list(query.key)},
            ) from None
        except (ValueError, KeyError, TypeError):
            raise HttpRequestError(
                f"unexpected management API answer ({response.status_code}): {response.text[:200]}",
                metadata={"status": response.status_code, "body": response.text[:1000]},
            ) from None
        if not isinstance(actor_id, str):
            raise HttpRequestError(f"unexpected actor id {actor_id!r} from the management API")
        return actor_id

    async def list_actors(
        self, name: str | None, cursor: str | None, limit: int
    ) -> tuple[list[ActorInfo], str | None]:
        """A page of actors through ``GET /actors?name&limit&cursor`` (JSON)."""
        await self._ready()
        params: dict[str, Any] = {"limit": str(limit), "namespace": self._endpoint.namespace}
        if name is not None:
            params["name"] = name
        if cursor:
            params["cursor"] = cursor
        headers = (
            {"authorization": f"Bearer {self._endpoint.token}"} if self._endpoint.token else {}
        )
        response = await self._request(
            "GET", self._endpoint.http_url("/actors"), params=params, headers=headers
        )
        if not response.is_success:
            raise self._response_error(response, "json")
        try:
            payload = json.loads(response.content)
            infos = [
                ActorInfo(
                    a["actor_id"],
                    a["name"],
                    deserialize_key(a["key"]),
                    a["create_ts"] / 1000,
                    a.get("awake"),
                )
                for a in payload["actors"]
            ]
            following = (payload.get("pagination") or {}).get("cursor")
        except (ValueError, KeyError, TypeError):
            raise HttpRequestError(
                f"unexpected management API answer ({response.status_code}): {response.text[:200]}",
                metadata={"status": response.status_code, "body": response.text[:1000]},
            ) from None
        return infos, following

    async def call(
        self, query: ActorQuery, actor_id: str | None, name: str, args: list[Any], params: Any
    ) -> tuple[str, Any]:
        body = encode_http(HttpActionRequest(list(args)), self.encoding)

        async def once() -> tuple[str, Any]:
            await self._ready()
            path, known = await self._gateway_path(
                query, actor_id, f"/action/{encode_uri_component(name)}"
            )
            headers = self._framework_headers(await resolve_params(params))
            response = await self._request(
                "POST", self._endpoint.http_url(path), content=body, headers=headers
            )
            if not response.is_success:
                raise self._response_error(response, self.encoding)
            output = decode_http(response.content, self.encoding, HttpActionResponse).output
            return response.headers.get("x-rivet-actor") or known or actor_id or "", output

        return await self._with_lifecycle_retry(query, once)

    async def send(
        self,
        query: ActorQuery,
        actor_id: str | None,
        name: str,
        body: Any,
        wait: bool,
        timeout: float | None,
    ) -> tuple[str, str, Any]:
        """``POST …/queue/{name}`` (as the JavaScript client's ``handle.send``)."""
        timeout_ms = None if timeout is None else max(0, round(timeout * 1000))
        content = encode_http(HttpQueueSendRequest(body, name, wait, timeout_ms), self.encoding)

        async def once() -> tuple[str, str, Any]:
            await self._ready()
            path, known = await self._gateway_path(
                query, actor_id, f"/queue/{encode_uri_component(name)}"
            )
            response = await self._request(
                "POST",
                self._endpoint.http_url(path),
                content=content,
                headers=self._framework_headers(None),
            )
            if not response.is_success:
                raise self._response_error(response, self.encoding)
            reply = decode_http(response.content, self.encoding, HttpQueueSendResponse)
            target = response.headers.get("x-rivet-actor") or known or actor_id or ""
            return target, str(reply.status), reply.response

        return await self._with_lifecycle_retry(query, once)

    async def connect(
        self,
        actor_id: str,
        params: Any,
        subscriptions: set[str],
        listener: ConnectionListener,
    ) -> ActorSocket:
        """Open a connection to the actor with this id (it is not re-resolved)."""
        # The name is not part of a direct URL; any placeholder does.
        query = ActorQuery("get_for_id", "", actor_id=actor_id)
        return await self.connect_query(query, params, subscriptions, listener)

    async def connect_query(
        self,
        query: ActorQuery,
        params: Any,
        subscriptions: set[str],
        listener: ConnectionListener,
    ) -> ActorSocket:
        """Open a reconnecting connection; each (re)connection re-evaluates callable
        params and, for a handle by key, reaches the actor the key names then."""
        await self._ready()

        async def opener(extra: list[str]) -> ClientConnection:
            resolved = await resolve_params(params)
            path, _ = await self._gateway_path(query, None, "/connect")
            protocols = connect_subprotocols(self.encoding, resolved, extra)
            return await self._open_ws(path, protocols, FrameReader)

        label = query.actor_id if query.mode == "get_for_id" else f"{query.name}{list(query.key)}"
        socket = ActorSocket(
            opener=opener,
            encoding=self.encoding,
            listener=listener,
            clock=self._clock,
            backoff=self._backoff,
            by_key=query.mode in ("get", "get_or_create"),
            rng=self._rng,
            label=str(label),
        )
        await socket.start(subscriptions)
        self._sockets.add(socket)
        return socket

    async def fetch(
        self,
        query: ActorQuery,
        actor_id: str | None,
        path: str,
        *,
        method: str = "GET",
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        params: Any = None,
    ) -> RawResponse:
        """Send a raw HTTP request to the actor's ``on_request`` at ``path``.

        The response is returned as it is, whatever its status, except errors of the
        ``actor`` and ``guard`` groups (the request never reached the handler: no such
        actor, actor stopping...), which are raised.
        """
        user_path, user_query = split_user_path(path)
        sub_path = f"/request/{user_path}{user_query}"

        async def once() -> RawResponse:
            await self._ready()
            gateway, _ = await self._gateway_path(query, actor_id, sub_path)
            request_headers = dict(headers or {})
            resolved = await resolve_params(params)
            if resolved is not None:
                request_headers[CONN_PARAMS_HEADER] = conn_params_header(resolved)
            response = await self._request(
                method.upper(),
                self._endpoint.http_url(gateway),
                content=body,
                headers=request_headers,
            )
            if not response.is_success:
                error = self._response_error(response, "json")
                if error.group in ("actor", "guard"):
                    raise error
            return RawResponse(
                status=response.status_code,
                headers=response.header_dict(),
                content=response.content,
            )

        return await self._with_lifecycle_retry(query, once)

    async def websocket(
        self,
        query: ActorQuery,
        actor_id: str | None,
        path: str,
        *,
        protocols: Sequence[str] = (),
        params: Any = None,
    ) -> NetRawWebSocket:
        """Open a raw WebSocket to the actor's ``on_websocket`` at ``path``."""
        user_path, user_query = split_user_path(path)
        sub_path = f"/websocket/{user_path}{user_query}"

        async def once() -> NetRawWebSocket:
            await self._ready()
            gateway, _ = await self._gateway_path(query, actor_id, sub_path)
            resolved = await resolve_params(params)
            ws = await self._open_ws(gateway, connect_subprotocols("bare", resolved, protocols))
            return NetRawWebSocket(ws)

        return await self._with_lifecycle_retry(query, once)

    async def aclose(self) -> None:
        """Close every connection opened through this transport, then the HTTP session."""
        if self._closed:
            return
        self._closed = True
        for socket in list(self._sockets):
            await socket.close()
        if self._session is not None:
            await self._session.close()
