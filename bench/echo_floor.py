"""The floor of the server benchmarks: a raw echo app on the same ASGI server as pyrivet.

    python bench/echo_floor.py --port 6440             # serves until SIGTERM/SIGINT
    python bench/echo_floor.py --port 6440 --commit    # one durable commit before each echo

A plain ASGI 3 app with nothing behind it:

* WebSocket (any path): accepted, every message sent back as it came (bytes or text);
* HTTP POST (any path): the body sent back with status 200; any other method gets an
  empty 200.

With ``--commit``, before each WebSocket echo and each HTTP POST answer the app does
one bare SQLite commit (`bench_core.bare_commit`: WAL, synchronous=FULL, one row's 64
bytes overwritten, the table prepared past its first auto-checkpoint) inline on the
event loop's thread, and answers once it returned: the simplest program that makes
each request durable before answering it, the floor of a strict call. The database
lives in ``--data-dir`` (default: a temporary directory, removed at exit). A failed
commit raises out of the handler (uvicorn closes the socket / answers 500).

It is served by uvicorn with the settings ``pyrivet serve`` uses (see
`pyrivet.server.serve.serve`): the same `PyrivetServer` class, ``lifespan="off"``, the
same WebSocket ping interval and timeout, uvicorn's default loop, HTTP and WebSocket
implementations (whatever ``auto`` picks in this environment). So a round trip here is
what the network, uvicorn and the client library cost before any pyrivet code runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

from bench_core import bare_commit, open_floor_db  # this folder is sys.path[0] as a script
from pyrivet.cli.serve_command import run_loop
from pyrivet.server.serve import PyrivetServer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The values `pyrivet.server.serve.serve` passes to uvicorn by default.
WS_PING_INTERVAL = 20.0
WS_PING_TIMEOUT = 20.0
GRACEFUL_SHUTDOWN_S = 30


def _nothing() -> None:
    pass


def make_echo_app(before_answer: Callable[[], None] = _nothing) -> ASGIApp:
    """The echo app; ``before_answer`` runs (on the loop's thread, blocking it) before
    each WebSocket echo and each HTTP POST answer. If it raises, so does the handler."""

    async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
        """Echo WebSocket messages and HTTP POST bodies."""
        if scope["type"] == "websocket":
            await _echo_websocket(receive, send, before_answer)
        elif scope["type"] == "http":
            await _echo_http(scope, receive, send, before_answer)

    return echo_app


async def _echo_websocket(receive: Receive, send: Send, before_answer: Callable[[], None]) -> None:
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif kind == "websocket.receive":
            before_answer()
            if message.get("bytes") is not None:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
            else:
                await send({"type": "websocket.send", "text": message.get("text") or ""})
        elif kind == "websocket.disconnect":
            return


async def _echo_http(
    scope: Scope, receive: Receive, send: Send, before_answer: Callable[[], None]
) -> None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b""
    if scope["method"] == "POST":
        before_answer()
        body = b"".join(chunks)
    headers = [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _started(server: PyrivetServer) -> None:
    print(f"echo_floor: serving on http://127.0.0.1:{server.port}", file=sys.stderr, flush=True)


async def serve(host: str, port: int, log_level: str, app: ASGIApp) -> None:
    config = uvicorn.Config(
        app,
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
    parser.add_argument("--commit", action="store_true", help="a durable commit before each echo")
    parser.add_argument("--data-dir", help="where --commit's database goes (default: a temp dir)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        app = make_echo_app()
        if args.commit:
            data_dir = args.data_dir or stack.enter_context(
                tempfile.TemporaryDirectory(prefix="echo-floor-")
            )
            conn = open_floor_db(os.path.join(data_dir, "echo-floor.sqlite3"))
            stack.callback(conn.close)
            app = make_echo_app(lambda: bare_commit(conn))
        # the event loop `pyrivet serve` uses
        run_loop(serve(args.host, args.port, args.log_level, app))


if __name__ == "__main__":
    main()
