"""Envoy mode end to end: clients, through the engine's gateway, to our actors.

One envoy hosts the server tests' registry (`make_registry`) for the whole module, in a
namespace of its own (see the conftest on why tests do not share a namespace).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from pyrivet import Client, UserError
from pyrivet.engine._envoy import EnvoyConfig
from pyrivet.engine._host import EnvoyHost
from pyrivet.server import create_app
from pyrivet.storage import MemoryDriver
from server._support import make_registry, query_url, subprotocols

from .conftest import Engine

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
WAIT = 30.0
POOL = "py-gateway-tests"


@pytest.fixture(scope="module")
def engine(module_engine: Engine) -> Engine:
    return module_engine


@pytest.fixture(scope="module")
def namespace(engine: Engine) -> str:
    return engine.create_namespace()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def host(engine: Engine, namespace: str) -> AsyncIterator[EnvoyHost]:
    async with make_registry().runtime(storage=MemoryDriver()) as runtime:
        config = EnvoyConfig(engine.endpoint, namespace=namespace, pool=POOL, token=engine.token)
        async with EnvoyHost(runtime, create_app(runtime), config) as served:
            await asyncio.wait_for(served.envoy.wait_ready(), WAIT)
            yield served


def client(engine: Engine, host: EnvoyHost) -> Client:
    namespace = host.envoy.config.namespace
    return Client(engine.endpoint, namespace=namespace, pool_name=POOL, token=engine.token)


def gateway_url(engine: Engine, host: EnvoyHost, name: str, path: str, key: str) -> str:
    url = query_url(name, path, key=key).replace("rvt-runner=default", f"rvt-runner={POOL}")
    url = url.replace("rvt-namespace=default", f"rvt-namespace={host.envoy.config.namespace}")
    return engine.endpoint + url


async def test_action_over_http_through_the_gateway(engine: Engine, host: EnvoyHost) -> None:
    async with client(engine, host) as c:
        room = c.get_or_create("counter", ["room", "a/b"])
        assert await asyncio.wait_for(room.increment(5), WAIT) == 5
        assert await asyncio.wait_for(room.increment(2), WAIT) == 7
        with pytest.raises(UserError) as caught:
            await asyncio.wait_for(room.increment(-1), WAIT)
        assert caught.value.code == "negative_amount"
        actor_id = await asyncio.wait_for(room.resolve(), WAIT)
    # The actor runs in our runtime under the engine's id, with the key parsed back.
    record = await host.runtime.storage.get_actor(actor_id)
    assert record is not None and record.key == ("room", "a/b")


async def test_connection_events_through_the_gateway(engine: Engine, host: EnvoyHost) -> None:
    async with client(engine, host) as c:
        room = c.get_or_create("counter", ["events"])
        seen: asyncio.Queue[int] = asyncio.Queue()
        async with room.connect() as conn:
            conn.on("count", seen.put_nowait)
            assert await asyncio.wait_for(conn.increment(3), WAIT) == 3
            assert await asyncio.wait_for(seen.get(), WAIT) == 3
            assert await asyncio.wait_for(conn.get(), WAIT) == 3


async def test_plain_http_post_reaches_the_action_route(engine: Engine, host: EnvoyHost) -> None:
    url = gateway_url(engine, host, "counter", "/action/increment", "curl")
    async with httpx.AsyncClient(timeout=WAIT) as http:
        first = await http.post(url, json={"args": [4]})
        second = await http.post(url, json={"args": [1]})
    assert first.status_code == 200, first.text
    assert (first.json(), second.json()) == ({"output": 4}, {"output": 5})


async def test_raw_request_handler_through_the_gateway(engine: Engine, host: EnvoyHost) -> None:
    url = gateway_url(engine, host, "web", "/request/hello/world", "raw").replace("?", "?x=1&", 1)
    async with httpx.AsyncClient(timeout=WAIT) as http:
        response = await http.post(url, content=b"payload", headers={"x-custom": "abc"})
        crash = await http.get(gateway_url(engine, host, "web", "/request/crash", "raw"))
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


async def test_raw_websocket_handler_through_the_gateway(engine: Engine, host: EnvoyHost) -> None:
    url = gateway_url(engine, host, "web", "/websocket/chat", "sock").replace("http://", "ws://", 1)
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
