"""What `bench_engine.py` hosts: the counter of the server benchmarks and a raw echo.

    pyrivet serve engine_app:registry --engine URL --token T --pool pyrivet   # from bench/

``counter`` is `counter_app`'s (`bench_engine.py` sets its sleep timeout to an hour,
so the memory figure counts awake actors). ``echo`` answers each raw WebSocket message
and each raw HTTP request with the same bytes: through the engine it measures the
engine's own hop, standalone the floor without it.
"""

from __future__ import annotations

from typing import Any

from counter_app import counter
from pyrivet import Registry, actor
from pyrivet.server import Request, Response, WebSocket

echo = actor("echo", state={})


@echo.on_websocket
async def on_websocket(c: Any, ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


@echo.on_request
async def on_request(c: Any, request: Request) -> Response:
    return Response(request.body)


registry = Registry([counter, echo])
