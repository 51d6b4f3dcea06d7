"""Envoy mode end to end: pyrivet's client, through the engine's gateway, to our actors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from pyrivet import Client, Registry, UserError, actor
from pyrivet.engine._envoy import EnvoyConfig
from pyrivet.engine._host import EnvoyHost
from pyrivet.engine._keys import parse_actor_key
from pyrivet.server import create_app
from pyrivet.storage import MemoryDriver
from pyrivet.storage._base import serialize_key
from server._support import make_registry, query_url, subprotocols

from .conftest import Engine

pytestmark = pytest.mark.slow
WAIT = 30.0

counter = actor("counter", state={"count": 0})


@counter.action
def increment(c: Any, amount: int = 1) -> int:
    if amount < 0:
        raise UserError("amount must be positive", code="negative_amount")
    c.state["count"] += amount
    c.broadcast("count", c.state["count"])
    return int(c.state["count"])


@counter.action
def read(c: Any) -> int:
    return int(c.state["count"])


registry = Registry([counter])


@pytest.fixture
async def host(engine: Engine, pool: str) -> AsyncIterator[EnvoyHost]:
    async with registry.runtime(storage=MemoryDriver()) as runtime:
        config = EnvoyConfig(engine.endpoint, pool=pool, token=engine.token)
        async with EnvoyHost(runtime, create_app(runtime), config) as served:
            await asyncio.wait_for(served.envoy.wait_ready(), WAIT)
            yield served


def client(engine: Engine, pool: str) -> Client:
    return Client(engine.endpoint, pool_name=pool, token=engine.token)


async def test_action_over_http_through_the_gateway(
    engine: Engine, pool: str, host: EnvoyHost
) -> None:
    async with client(engine, pool) as c:
        room = c.get_or_create("counter", ["room", "a/b"])
        assert await asyncio.wait_for(room.increment(5), WAIT) == 5
        assert await asyncio.wait_for(room.increment(2), WAIT) == 7
        with pytest.raises(UserError) as caught:
            await asyncio.wait_for(room.increment(-1), WAIT)
        assert caught.value.code == "negative_amount"
    # The actor runs in our runtime under the engine's id, with the key parsed back.
    (actor_id,) = list(host.runtime._instances)
    record = await host.runtime.storage.get_actor(actor_id)
    assert record is not None and record.key == ("room", "a/b")


async def test_connection_events_through_the_gateway(
    engine: Engine, pool: str, host: EnvoyHost
) -> None:
    async with client(engine, pool) as c:
        room = c.get_or_create("counter", ["events"])
        seen: asyncio.Queue[int] = asyncio.Queue()
        async with room.connect() as conn:
            conn.on("count", seen.put_nowait)
            assert await asyncio.wait_for(conn.increment(3), WAIT) == 3
            assert await asyncio.wait_for(seen.get(), WAIT) == 3
            assert await asyncio.wait_for(conn.read(), WAIT) == 3


async def test_raw_http_post_reaches_the_action_route(
    engine: Engine, pool: str, host: EnvoyHost
) -> None:
    url = (
        f"{engine.endpoint}/gateway/counter/action/increment?rvt-namespace=default"
        f"&rvt-method=getOrCreate&rvt-runner={pool}&rvt-key=curl&rvt-crash-policy=sleep"
    )
    async with httpx.AsyncClient(timeout=WAIT) as http:
        first = await http.post(url, json={"args": [4]}, headers={"x-rivet-token": engine.token})
        second = await http.post(url, json={"args": [1]}, headers={"x-rivet-token": engine.token})
    assert first.status_code == 200, first.text
    assert (first.json(), second.json()) == ({"output": 4}, {"output": 5})


@pytest.mark.parametrize(
    "key", [(), ("a",), ("a", "b"), ("",), ("x/y", "z\\w"), ("", "end"), ("tail\\",)]
)
def test_actor_keys_round_trip_rivetkit_serialization(key: tuple[str, ...]) -> None:
    assert parse_actor_key(serialize_key(key)) == key


def test_actor_key_strings() -> None:
    assert serialize_key(()) == "/"
    assert serialize_key(("a/b", "")) == "a\\/b/\\0"
    assert parse_actor_key(None) == ()
    assert parse_actor_key("trail\\") == ("trail\\",)


@pytest.fixture
async def web_host(engine: Engine, pool: str) -> AsyncIterator[EnvoyHost]:
    async with make_registry().runtime(storage=MemoryDriver()) as runtime:
        config = EnvoyConfig(engine.endpoint, pool=pool, token=engine.token)
        async with EnvoyHost(runtime, create_app(runtime), config) as served:
            await asyncio.wait_for(served.envoy.wait_ready(), WAIT)
            yield served


def gateway_url(engine: Engine, pool: str, path: str, key: str) -> str:
    return engine.endpoint + query_url("web", path, key=key).replace(
        "rvt-runner=default", f"rvt-runner={pool}"
    )


async def test_raw_request_handler_through_the_gateway(
    engine: Engine, pool: str, web_host: EnvoyHost
) -> None:
    url = gateway_url(engine, pool, "/request/hello/world", "raw").replace("?", "?x=1&", 1)
    async with httpx.AsyncClient(timeout=WAIT) as http:
        response = await http.post(url, content=b"payload", headers={"x-custom": "abc"})
        crash = await http.get(gateway_url(engine, pool, "/request/crash", "raw"))
    assert response.status_code == 201, response.text
    assert response.headers["x-from-actor"] == "yes"
    body = response.json()
    assert (body["method"], body["path"], body["body"], body["header"]) == (
        "POST",
        "/hello/world",
        "payload",
        "abc",
    )
    assert "x=1" in body["query"]
    assert crash.status_code == 500 and crash.json()["code"] == "internal_error"


async def test_raw_websocket_handler_through_the_gateway(
    engine: Engine, pool: str, web_host: EnvoyHost
) -> None:
    url = gateway_url(engine, pool, "/websocket/chat", "sock").replace("http://", "ws://", 1)
    async with ws_connect(url, subprotocols=subprotocols("bare")) as ws:
        assert str(await asyncio.wait_for(ws.recv(), WAIT)).startswith("hello /chat")
        await ws.send("one")
        assert await asyncio.wait_for(ws.recv(), WAIT) == "echo one #1"
        await ws.send(b"\x01\x02\x03")
        assert await asyncio.wait_for(ws.recv(), WAIT) == b"\x03\x02\x01"
        await ws.send("close-me")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), WAIT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
