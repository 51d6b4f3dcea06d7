"""Shared pieces of the server tests: the actors they serve and wire helpers.

Everything is driven through a real uvicorn server on an ephemeral loopback port, with
httpx for HTTP and the ``websockets`` library for WebSockets, speaking the protocol
with the encoders of ``pyrivet._protocol.messages``.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from pyrivet import Registry, UserError, actor
from pyrivet._codec import cbor
from pyrivet._protocol.messages import (
    ActionRequest,
    Encoding,
    HttpActionRequest,
    HttpActionResponse,
    HttpResponseError,
    SubscriptionRequest,
    ToClient,
    decode_http,
    decode_to_client,
    encode_http,
    encode_to_server,
)
from pyrivet.server import Request, Response, WebSocket

ENCODINGS: tuple[Encoding, ...] = ("json", "cbor", "bare")


def make_registry() -> Registry:
    counter = actor(
        "counter",
        create_state=lambda c, input: {"count": 0, "input": input},
        create_vars=lambda c: {"gate": asyncio.Event()},
    )

    @counter.action
    def increment(c: Any, amount: int = 1) -> int:
        if amount < 0:
            raise UserError(
                "amount must be positive", code="negative_amount", metadata={"amount": amount}
            )
        c.state["count"] += amount
        c.broadcast("count", c.state["count"])
        return int(c.state["count"])

    @counter.action
    def get(c: Any) -> int:
        return int(c.state["count"])

    @counter.action
    def get_input(c: Any) -> Any:
        return c.state["input"]

    @counter.action
    def echo(c: Any, *args: Any) -> list[Any]:
        return list(args)

    @counter.action
    def big(c: Any, size: int) -> str:
        return "x" * size

    @counter.action
    def boom(c: Any) -> None:
        raise RuntimeError("secret database password in this message")

    @counter.action
    async def wait(c: Any) -> str:
        await c.vars["gate"].wait()
        return "waited"

    @counter.action
    def release(c: Any) -> str:
        c.vars["gate"].set()
        return "released"

    @counter.action
    def shout(c: Any, a: Any, b: Any) -> None:
        c.broadcast("pair", a, b)

    @counter.action
    def tell_me(c: Any, text: str) -> None:
        c.conn.send("private", text)

    guarded = actor("guarded", state={"joined": 0})

    @guarded.on_before_connect
    def check(c: Any, params: Any) -> None:
        if not isinstance(params, dict) or params.get("token") != "secret":
            raise UserError("wrong token", code="forbidden", metadata={"hint": "token"})

    @guarded.on_connect
    def joined(c: Any, conn: Any) -> None:
        c.state["joined"] += 1

    @guarded.action
    def hello(c: Any) -> str:
        return f"hi {c.conn.params['user']}"

    web = actor("web", state={"hits": 0, "frames": 0})

    @web.on_request
    async def on_request(c: Any, request: Request) -> Response:
        if request.path == "/fail":
            raise UserError("teapot here", code="teapot", metadata={"short": True})
        if request.path == "/crash":
            raise RuntimeError("hidden detail")
        if request.path == "/not-a-response":
            return "oops"  # type: ignore[return-value]
        c.state["hits"] += 1
        return Response.json(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query_string,
                "body": request.text(),
                "header": request.headers.get("x-custom"),
                "hits": c.state["hits"],
                "conn": c.conn is not None,
            },
            status=201 if request.method == "POST" else 200,
            headers={"x-from-actor": "yes"},
        )

    @web.on_websocket
    async def on_websocket(c: Any, ws: WebSocket) -> None:
        await ws.send(f"hello {ws.request.path}?{ws.request.query_string}")
        async for message in ws:
            if message == "close-me":
                await ws.close(4000, "bye")
                return
            if message == "fail":
                raise UserError("socket says no", code="refused")
            c.state["frames"] += 1
            if isinstance(message, bytes):
                await ws.send(message[::-1])
            else:
                await ws.send(f"echo {message} #{c.state['frames']}")

    @web.action
    def stats(c: Any) -> dict[str, int]:
        return dict(c.state)

    return Registry([counter, guarded, web])


# -- HTTP helpers --------------------------------------------------------------------


def query_url(
    name: str, path: str, *, key: str | None = None, method: str = "getOrCreate", extra: str = ""
) -> str:
    """A query-form gateway URL, as RivetKit 2.3.19 builds it."""
    params = [f"rvt-namespace=default&rvt-method={method}"]
    if method == "getOrCreate":
        params.append("rvt-runner=default")
    if key is not None:
        params.append(f"rvt-key={key}")
    if method == "getOrCreate":
        params.append("rvt-crash-policy=sleep")
    if extra:
        params.append(extra)
    return f"/gateway/{name}{path}?{'&'.join(params)}"


def action_request(args: list[Any], encoding: Encoding) -> tuple[bytes, dict[str, str]]:
    body = encode_http(HttpActionRequest(args), encoding)
    content = "application/json" if encoding == "json" else "application/octet-stream"
    return body, {"x-rivet-encoding": encoding, "content-type": content}


def action_output(body: bytes, encoding: Encoding) -> Any:
    return decode_http(body, encoding, HttpActionResponse).output


def http_error(body: bytes, content_type: str, encoding: Encoding) -> HttpResponseError:
    """Decode an error body as RivetKit's client does (JSON whenever it says JSON)."""
    used: Encoding = "json" if "application/json" in content_type else encoding
    return decode_http(body, used, HttpResponseError)


def cbor_input_b64url(value: Any) -> str:
    return base64.urlsafe_b64encode(cbor.encode(value)).decode().rstrip("=")


# -- WebSocket helpers ---------------------------------------------------------------


def subprotocols(encoding: str | None, params: str | None = None) -> list[Subprotocol]:
    """The WebSocket subprotocols a RivetKit client offers (no encoding: only ``rivet``)."""
    protocols = [Subprotocol("rivet")]
    if encoding is not None:
        protocols.append(Subprotocol(f"rivet_encoding.{encoding}"))
    if params is not None:
        protocols.append(Subprotocol(f"rivet_conn_params.{quote(params, safe='')}"))
    return protocols


async def send_msg(ws: ClientConnection, msg: Any, encoding: Encoding) -> None:
    data = encode_to_server(msg, encoding)
    await ws.send(data.decode() if encoding == "json" else data)


async def recv_msg(ws: ClientConnection, encoding: Encoding) -> ToClient:
    data = await ws.recv()
    if encoding == "json":
        assert isinstance(data, str), "json frames are text frames"
    else:
        assert isinstance(data, bytes), f"{encoding} frames are binary frames"
    return decode_to_client(data, encoding)


async def call(
    ws: ClientConnection, encoding: Encoding, action_id: int, name: str, *args: Any
) -> None:
    await send_msg(ws, ActionRequest(action_id, name, list(args)), encoding)


async def subscribe(ws: ClientConnection, encoding: Encoding, event: str, on: bool = True) -> None:
    await send_msg(ws, SubscriptionRequest(event, on), encoding)
