"""What `bench_engine.py` hosts: the counter of the server benchmarks and a raw echo.

    pyrivet serve engine_app:registry --engine URL --token T --pool pyrivet   # from bench/

``counter`` is `counter_app`'s (`bench_engine.py` sets its sleep timeout to an hour,
so the memory figure counts awake actors). ``echo`` answers each raw WebSocket message
and each raw HTTP request with the same bytes: through the engine it measures the
engine's own hop, standalone the floor without it. ``durable_echo`` counts each
WebSocket message in its state and answers once that count is durable
(`save_state`): the same hop plus one commit, which through the engine is a KV put
acknowledged by the engine, standalone a local SQLite commit.
"""

from __future__ import annotations

from typing import Any

from counter_app import counter
from pyrivet import Registry, actor
from pyrivet.server import Request, Response, WebSocket

echo = actor("echo", state={})
durable_echo = actor("durable_echo", state={"n": 0})


@echo.on_websocket
async def on_websocket(c: Any, ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


@echo.on_request
async def on_request(c: Any, request: Request) -> Response:
    return Response(request.body)


@durable_echo.on_websocket
async def on_durable_websocket(c: Any, ws: WebSocket) -> None:
    async for message in ws:
        c.state["n"] += 1
        await c.save_state()
        await ws.send(message)


registry = Registry([counter, echo, durable_echo])
