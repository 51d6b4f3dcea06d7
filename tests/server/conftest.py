"""Fixtures: the real app on a real uvicorn server, on an ephemeral loopback port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from pyrivet import MemoryDriver, Registry, Runtime
from pyrivet.server import PyrivetApp, create_app
from pyrivet.server._uvicorn_ws import BatchingWebSocketProtocol
from pyrivet.server.serve import PyrivetServer
from pyrivet.storage import ActorStore

from ._support import make_registry


@dataclass
class Served:
    """A running server: its base URLs, the runtime behind it, an HTTP client."""

    url: str
    ws_url: str
    runtime: Runtime | None
    app: PyrivetApp
    http: httpx.AsyncClient


Start = Callable[..., Awaitable[Served]]


@pytest.fixture
async def start_server() -> AsyncIterator[Start]:
    """``await start_server(registry, **create_app_kwargs)`` -> `Served`.

    Pass ``owned=True`` to let the app own its runtime (started by the ASGI lifespan),
    ``storage=`` to serve data written before (a fresh `MemoryDriver` otherwise).
    ``ws_ping=(interval, timeout)`` to have uvicorn ping WebSocket clients.
    ``storage=`` to serve data written before (a fresh `MemoryDriver` otherwise),
    ``runtime_options=`` for `Registry.runtime` (not with ``owned``).
    Everything is stopped when the test ends: the server first, then the runtime.
    """
    async with contextlib.AsyncExitStack() as stack:

        async def start(
            registry: Registry,
            *,
            owned: bool = False,
            storage: ActorStore | None = None,
            ws_ping: tuple[float, float] | None = None,
            runtime_options: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> Served:
            runtime: Runtime | None = None
            store = storage if storage is not None else MemoryDriver()
            if owned:
                app = create_app(registry, storage=store, **kwargs)
            else:
                runtime = registry.runtime(storage=store, **(runtime_options or {}))
                await runtime.start()
                stack.push_async_callback(runtime.aclose)
                app = create_app(runtime, **kwargs)
            config = uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                lifespan="on" if owned else "off",
                log_config=None,
                log_level="warning",
                ws=BatchingWebSocketProtocol,  # as `pyrivet serve`
                ws_ping_interval=ws_ping[0] if ws_ping else None,
                ws_ping_timeout=ws_ping[1] if ws_ping else None,
                timeout_graceful_shutdown=5,
            )
            server = PyrivetServer(config, handle_signals=False)
            task = asyncio.get_running_loop().create_task(server.serve())

            async def stop() -> None:
                server.should_exit = True
                await task

            stack.push_async_callback(stop)
            await server.ready.wait()
            assert server.started
            url = f"http://127.0.0.1:{server.port}"
            http = httpx.AsyncClient(base_url=url, timeout=10)
            stack.push_async_callback(http.aclose)
            return Served(url, url.replace("http://", "ws://"), runtime, app, http)

        yield start


@pytest.fixture
async def served(start_server: Start) -> Served:
    """The test actors (counter, guarded, web) served on a fresh in-memory runtime."""
    return await start_server(make_registry())
