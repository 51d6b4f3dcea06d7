"""Actor-to-actor calls under the server: an HTTP or WebSocket action on one actor
calls another through ``c.client()`` (the runtime's in-process client), both in an
app served on uvicorn and under a real ``pyrivet serve`` process.

The network client sees the called actor's errors exactly as if it had called it
itself, and events the inner call causes reach the callee's WebSocket connections.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pyrivet import Registry, UserError
from pyrivet.client import Client
from serve_process import ServeProcess

from .conftest import Start

#: The app both tests serve: ``front`` calls ``back`` (and ``back`` calls ``front``).
APP = """
from pyrivet import Registry, UserError, actor

back = actor("back", state={"count": 0})

@back.action
def add(c, amount):
    if amount < 0:
        raise UserError("no negative amounts", code="negative", metadata={"amount": amount})
    c.state["count"] += amount
    c.broadcast("count", c.state["count"])
    return c.state["count"]

@back.action
async def ask_front(c, front_key):
    return await c.client().get("front", [front_key]).whoami()

front = actor("front", state={})

@front.action
async def forward(c, back_key, amount):
    return await c.client().get_or_create("back", [back_key]).add(amount)

@front.action
async def round_trip(c, back_key):
    return await c.client().get_or_create("back", [back_key]).ask_front(c.key[0])

@front.action
def whoami(c):
    return f"front {c.key[0]}"

registry = Registry([back, front])
"""


def app_registry() -> Registry:
    namespace: dict[str, Any] = {}
    exec(compile(APP, "app.py", "exec"), namespace)
    registry = namespace["registry"]
    assert isinstance(registry, Registry)
    return registry


async def check_app(url: str, encoding: str) -> None:
    """What both tests check, through the network client."""
    async with Client(url, encoding=encoding) as client:  # type: ignore[arg-type]
        front = client.get_or_create("front", ["f1"])
        heard: list[int] = []
        arrived = asyncio.Event()

        def on_count(value: int) -> None:
            heard.append(value)
            arrived.set()

        async with client.get_or_create("back", ["b1"]).connect() as conn:
            conn.on("count", on_count)
            assert await front.forward("b1", 3) == 3
            async with asyncio.timeout(10):
                await arrived.wait()
            assert heard == [3]
        assert await client.get("back", ["b1"]).add(0) == 3
        async with asyncio.timeout(10):
            assert await front.round_trip("b1") == "front f1"

        with pytest.raises(UserError) as direct:
            await client.get("back", ["b1"]).add(-1)
        with pytest.raises(UserError) as via_front:
            await front.forward("b1", -1)
        assert (via_front.value.code, via_front.value.metadata) == ("negative", {"amount": -1})
        assert via_front.value.message == direct.value.message


@pytest.mark.parametrize("encoding", ["json", "cbor", "bare"])
async def test_a_served_action_calls_another_actor(start_server: Start, encoding: str) -> None:
    served = await start_server(app_registry(), owned=True)
    await check_app(served.url, encoding)


@pytest.mark.slow
async def test_actor_to_actor_calls_under_pyrivet_serve(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    args = ["--port", "0", "--data-dir", str(tmp_path / "data"), "--log-level", "warning"]
    server = ServeProcess(tmp_path, args)
    try:
        port = await asyncio.to_thread(server.wait_serving)
        await check_app(f"http://127.0.0.1:{port}", "bare")
    finally:
        server.close()
