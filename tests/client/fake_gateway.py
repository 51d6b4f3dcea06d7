"""A tiny stand-in for a RivetKit gateway's ``connect`` WebSocket, for client unit tests.

It speaks just enough of the protocol (with the real encoders) to drive the client's
connection state machine: Init, actions, subscriptions, events, errors, refusals, and
being stopped and restarted on the same port.

Actions it understands:

| action          | does                                                     |
|-----------------|----------------------------------------------------------|
| ``echo(*a)``    | replies ``list(a)``                                       |
| ``emit(n, *a)`` | sends event ``n`` with args ``a`` if subscribed, replies ``None`` |
| ``hang()``      | never replies                                             |
| ``fail()``      | replies ``Error(user/custom_code, metadata {"a": 1})``   |
| ``conn_error()``| sends a connection-level Error (no action id)             |
| ``whoami()``    | replies ``{"actor": actor_id, "params": params}``          |
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from pyrivet._protocol.messages import (
    ActionRequest,
    ActionResponse,
    Encoding,
    Error,
    Event,
    Init,
    SubscriptionRequest,
    ToClient,
    decode_to_server,
    encode_to_client,
    is_binary,
)


@dataclass
class FakeConn:
    ws: ServerConnection
    encoding: Encoding
    path: str
    params: Any
    subscriptions: set[str] = field(default_factory=set)
    #: Every message received, in order.
    received: list[Any] = field(default_factory=list)

    async def send(self, msg: ToClient) -> None:
        frame = encode_to_client(msg, self.encoding)
        await self.ws.send(frame if is_binary(self.encoding) else frame.decode())


class FakeGateway:
    def __init__(self) -> None:
        self.port = 0
        self._server: Server | None = None
        self.actor_id = "actor-1"
        self.conns: list[FakeConn] = []
        self.attempts = 0
        #: If set, the next handshakes get this Error frame (no action id) instead of Init.
        self.refuse_with: Error | None = None
        #: If set, handshakes are answered with this (status, JSON body) HTTP response.
        self.http_refusal: tuple[int, dict[str, Any]] | None = None
        self._ids = itertools.count(1)
        self._new_conn = asyncio.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            self.port,
            subprotocols=["rivet"],  # type: ignore[list-item]
            process_request=self._process_request,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close every socket (1001 going away)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def wait_conns(self, count: int, timeout: float = 10.0) -> FakeConn:
        """Wait until ``count`` connections got their Init; return the last."""
        async with asyncio.timeout(timeout), self._new_conn:
            await self._new_conn.wait_for(lambda: len(self.conns) >= count)
        return self.conns[-1]

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.http_refusal is None:
            return None
        self.attempts += 1
        status, body = self.http_refusal
        headers = Headers([("Content-Type", "application/json")])
        return Response(status, "Refused", headers, json.dumps(body).encode())

    async def _handle(self, ws: ServerConnection) -> None:
        self.attempts += 1
        offered = ws.request.headers.get("Sec-WebSocket-Protocol", "") if ws.request else ""
        protocols = [p.strip() for p in offered.split(",")]
        encoding: Encoding = "json"
        params: Any = None
        for protocol in protocols:
            if protocol.startswith("rivet_encoding."):
                encoding = protocol.removeprefix("rivet_encoding.")  # type: ignore[assignment]
            elif protocol.startswith("rivet_conn_params."):
                params = json.loads(unquote(protocol.removeprefix("rivet_conn_params.")))
        path = ws.request.path if ws.request else ""
        conn = FakeConn(ws, encoding, path, params)
        if self.refuse_with is not None:
            await conn.send(self.refuse_with)
            await ws.close(1011, f"{self.refuse_with.group}.{self.refuse_with.code}")
            return
        await conn.send(Init(self.actor_id, f"conn-{next(self._ids)}"))
        async with self._new_conn:
            self.conns.append(conn)
            self._new_conn.notify_all()
        try:
            async for frame in ws:
                msg = decode_to_server(frame, encoding)
                conn.received.append(msg)
                if isinstance(msg, SubscriptionRequest):
                    if msg.subscribe:
                        conn.subscriptions.add(msg.event_name)
                    else:
                        conn.subscriptions.discard(msg.event_name)
                elif isinstance(msg, ActionRequest):
                    await self._action(conn, msg)
        except ConnectionClosed:
            pass

    async def _action(self, conn: FakeConn, msg: ActionRequest) -> None:
        if msg.name == "echo":
            await conn.send(ActionResponse(msg.id, list(msg.args)))
        elif msg.name == "emit":
            name, *args = msg.args
            if name in conn.subscriptions:
                await conn.send(Event(name, args))
            await conn.send(ActionResponse(msg.id, None))
        elif msg.name == "hang":
            pass
        elif msg.name == "fail":
            await conn.send(Error("user", "custom_code", "nope", {"a": 1}, action_id=msg.id))
        elif msg.name == "conn_error":
            await conn.send(Error("actor", "overloaded", "too busy"))
        elif msg.name == "whoami":
            await conn.send(ActionResponse(msg.id, {"actor": self.actor_id, "params": conn.params}))
        else:
            await conn.send(Error("actor", "action_not_found", f"no {msg.name}", action_id=msg.id))
