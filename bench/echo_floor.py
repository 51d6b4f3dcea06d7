"""The floor of the server benchmarks: a raw echo app on the same ASGI server as pyrivet.

    python bench/echo_floor.py --port 6440        # serves until SIGTERM/SIGINT

A plain ASGI 3 app with nothing behind it:

* WebSocket (any path): accepted, every message sent back as it came (bytes or text);
* HTTP POST (any path): the body sent back with status 200; any other method gets an
  empty 200.

It is served by uvicorn with the settings ``pyrivet serve`` uses (see
`pyrivet.server.serve.serve`): the same `PyrivetServer` class, ``lifespan="off"``, the
same WebSocket ping interval and timeout, uvicorn's default loop, HTTP and WebSocket
implementations (whatever ``auto`` picks in this environment). So a round trip here is
what the network, uvicorn and the client library cost before any pyrivet code runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

from pyrivet.cli.serve_command import run_loop
from pyrivet.server.serve import PyrivetServer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: The values `pyrivet.server.serve.serve` passes to uvicorn by default.
WS_PING_INTERVAL = 20.0
WS_PING_TIMEOUT = 20.0
GRACEFUL_SHUTDOWN_S = 30


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Echo WebSocket messages and HTTP POST bodies."""
    if scope["type"] == "websocket":
        await _echo_websocket(receive, send)
    elif scope["type"] == "http":
        await _echo_http(scope, receive, send)


async def _echo_websocket(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif kind == "websocket.receive":
            if message.get("bytes") is not None:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
            else:
                await send({"type": "websocket.send", "text": message.get("text") or ""})
        elif kind == "websocket.disconnect":
            return


async def _echo_http(scope: Scope, receive: Receive, send: Send) -> None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks) if scope["method"] == "POST" else b""
    headers = [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _started(server: PyrivetServer) -> None:
    print(f"echo_floor: serving on http://127.0.0.1:{server.port}", file=sys.stderr, flush=True)


async def serve(host: str, port: int, log_level: str) -> None:
    config = uvicorn.Config(
        echo_app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="off",
        ws_ping_interval=WS_PING_INTERVAL,
        ws_ping_timeout=WS_PING_TIMEOUT,
        ws_per_message_deflate=False,  # as `pyrivet serve` (without --ws-compression)
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    await PyrivetServer(config, on_started=_started).serve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6440)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    run_loop(serve(args.host, args.port, args.log_level))  # the event loop `pyrivet serve` uses


if __name__ == "__main__":
    main()
