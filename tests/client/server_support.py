"""The real pyrivet server on uvicorn, on a loopback port, for end-to-end client tests.

`ServerHandle` can be stopped and started again on the same port and data directory,
which is what the reconnect tests need.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyrivet import Registry, Runtime, UserError, actor
from pyrivet.client import Client

from .waiting import until

uvicorn = pytest.importorskip("uvicorn")
server_mod = pytest.importorskip("pyrivet.server")


def increment(c: Any, amount: int = 1) -> int:
    """An action at module level, so tests can call it typed: ``handle.call(increment, 2)``."""
    if amount < 0:
        raise UserError(
            "amount must be positive", code="negative_amount", metadata={"amount": amount}
        )
    c.state["count"] += amount
    c.broadcast("count", c.state["count"])
    return int(c.state["count"])


def make_registry(gate: asyncio.Event) -> Registry:
    """The actors the client tests talk to. ``gate`` holds the ``wait`` action."""
    counter = actor("counter", create_state=lambda c, input: {"count": 0, "input": input})
    counter.action(increment)

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
    def pair(c: Any, a: Any, b: Any) -> None:
        c.broadcast("pair", a, b)

    @counter.action
    async def wait(c: Any) -> str:
        await gate.wait()
        return "waited"

    @counter.action
    def whoami(c: Any) -> Any:
        return c.actor_id

    @counter.action
    def destroy_me(c: Any) -> None:
        c.destroy()

    guarded = actor("guarded", state={"joined": 0})

    @guarded.on_before_connect
    def check(c: Any, params: Any) -> None:
        if not isinstance(params, dict) or params.get("token") != "secret":
            raise UserError("wrong token", code="forbidden", metadata={"hint": "token"})

    @guarded.action
    def hello(c: Any) -> str:
        return f"hi {c.conn.params['user']}"

    web = actor("web", state={"hits": 0})

    @web.on_request
    async def on_request(c: Any, request: Any) -> Any:
        c.state["hits"] += 1
        return server_mod.Response.json(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query_string,
                "body": request.text(),
                "header": request.headers.get("x-custom"),
                "params": c.conn.params if c.conn is not None else None,
                "hits": c.state["hits"],
            },
            status=201 if request.method == "POST" else 200,
            headers={"x-from-actor": "yes"},
        )

    @web.on_websocket
    async def on_websocket(c: Any, ws: Any) -> None:
        await ws.send(f"hello {ws.request.path}")
        async for message in ws:
            if message == "close-me":
                await ws.close(4000, "bye")
                return
            if message == "fail":
                raise UserError("socket says no", code="refused")
            if isinstance(message, bytes):
                await ws.send(message[::-1])
            else:
                await ws.send(f"echo {message}")

    return Registry([counter, guarded, web])


class _QuietServer(uvicorn.Server):  # type: ignore[misc, name-defined]
    """uvicorn without its signal handlers (the test runner keeps its own)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerHandle:
    """A pyrivet server (SQLite in ``data_dir``) that can be stopped and restarted."""

    def __init__(
        self, data_dir: Path, registry: Registry | None = None, *, compression: bool = True
    ) -> None:
        self.data_dir = data_dir
        #: Whether the server accepts permessage-deflate (``pyrivet serve`` does not).
        self.compression = compression
        #: Served instead of the `make_registry` actors when given.
        self.registry = registry
        self.port = free_port()
        #: Holds the ``wait`` action until set.
        self.gate = asyncio.Event()
        self.runtime: Runtime | None = None
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        registry = self.registry or make_registry(self.gate)
        runtime = registry.runtime(data_dir=self.data_dir)
        await runtime.start()
        self.runtime = runtime
        config = uvicorn.Config(
            server_mod.create_app(runtime),
            host="127.0.0.1",
            port=self.port,
            lifespan="off",
            log_config=None,
            log_level="warning",
            ws_ping_interval=None,
            ws_per_message_deflate=self.compression,
            timeout_graceful_shutdown=5,
        )
        self._server = _QuietServer(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve())
        async with asyncio.timeout(10):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop listening (WebSockets are closed), then close the runtime."""
        if self._task is not None:
            self._server.should_exit = True
            await self._task
            self._task = None
        if self.runtime is not None:
            await self.runtime.aclose()
            self.runtime = None


async def calls_and_events(url: str, encoding: Any) -> None:
    """One call, then 20 at once, over one connection subscribed to ``count`` (the
    server's app, a `ServerHandle`, at ``url``)."""
    async with Client(url, encoding=encoding) as client:
        room = client.get_or_create("counter", ["frames", encoding])
        async with room.connect() as conn:
            got: list[int] = []
            conn.on("count", got.append)
            assert await conn.increment(2) == 2
            results = await asyncio.gather(*(conn.increment(1) for _ in range(20)))
            assert sorted(results) == list(range(3, 23))
            await until(lambda: len(got) == 21)


async def calls_and_events_in_each_encoding(data_dir: Path, *, compression: bool) -> None:
    """`calls_and_events` in json, cbor and bare against a server of its own."""
    server = ServerHandle(data_dir, compression=compression)
    await server.start()
    try:
        for encoding in ("json", "cbor", "bare"):
            await calls_and_events(server.url, encoding)
    finally:
        await server.stop()
