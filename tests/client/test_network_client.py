"""The network client end to end: ``Client(url)`` against the real pyrivet server on
uvicorn, in json, cbor and bare."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pyrivet.client import (
    ActorConnection,
    Backoff,
    Client,
    ConnectionClosedError,
    ConnectionLostError,
)
from pyrivet.errors import ActorError, ActorNotFoundError, DuplicateKeyError, UserError

from .server_support import ServerHandle, increment
from .waiting import until, until_async

ENCODINGS = ["json", "cbor", "bare"]


@pytest.fixture(params=ENCODINGS)
def encoding(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def client(server: ServerHandle, encoding: str) -> AsyncIterator[Client]:
    async with Client(server.url, encoding=encoding) as c:  # type: ignore[arg-type]
        yield c


async def test_actions_by_name_and_typed(client: Client) -> None:
    room = client.get_or_create("counter", ["room-1", "sub"])
    assert await room.increment(5) == 5
    assert await room.action("increment", 2) == 7
    total: int = await room.call(increment, 3)
    assert total == 10
    assert await room.call(increment, amount=1) == 11
    values = [None, True, 1.5, "é", [1, [2]], {"a": {"b": None}}, b"\x00\xff", 2**60]
    assert await room.echo(*values) == values
    assert await room.resolve() == await room.whoami()


async def test_user_error_code_and_metadata(client: Client) -> None:
    room = client.get_or_create("counter", "errors")
    with pytest.raises(UserError) as info:
        await room.increment(-1)
    assert info.value.code == "negative_amount"
    assert info.value.message == "amount must be positive"
    assert info.value.metadata == {"amount": -1}
    async with room.connect() as conn:
        with pytest.raises(UserError) as info:
            await conn.increment(-2)
        assert info.value.metadata == {"amount": -2}
    with pytest.raises(ActorError) as unknown:
        await room.no_such_action()
    assert unknown.value.code == "action_not_found"


async def test_get_get_or_create_create(client: Client) -> None:
    missing = client.get("counter", ["nobody"])
    with pytest.raises(ActorNotFoundError):
        await missing.increment()
    with pytest.raises(ActorNotFoundError):
        await missing.resolve()

    made = client.get_or_create("counter", ["k1"])
    assert await made.increment() == 1
    found = client.get("counter", ["k1"])
    assert await found.increment() == 2
    assert await found.resolve() == await made.resolve()

    with pytest.raises(DuplicateKeyError):
        await client.create("counter", ["k1"])
    fresh = await client.create("counter", ["k2"], input={"seed": 7})
    assert await fresh.get_input() == {"seed": 7}
    actor_id = await fresh.resolve()
    by_id = client.get_for_id("counter", actor_id)
    assert await by_id.increment(4) == 4
    assert await client.get("counter", ["k2"]).get() == 4
    with pytest.raises(ActorNotFoundError):
        await client.get_for_id("counter", "no-such-id").get()


async def test_input_reaches_a_new_actor_only(client: Client) -> None:
    value = {"list": [1, 2], "bytes": b"\x01\x02", "big": 2**62, "text": "ü"}
    handle = client.get_or_create("counter", ["with-input"], input=value)
    assert await handle.get_input() == value
    again = client.get_or_create("counter", ["with-input"], input={"other": 1})
    assert await again.get_input() == value
    # Too big for a query URL: resolved through the management API instead.
    big = client.get_or_create("counter", ["big-input"], input="x" * 6000)
    assert await big.get_input() == "x" * 6000


async def test_keys_the_query_url_cannot_carry(client: Client) -> None:
    comma = client.get_or_create("counter", ["a,b"])
    split = client.get_or_create("counter", ["a", "b"])
    empty = client.get_or_create("counter", [""])
    assert await comma.increment(1) == 1
    assert await split.increment(10) == 10
    assert await empty.increment(100) == 100
    assert len({await comma.resolve(), await split.resolve(), await empty.resolve()}) == 3
    assert await client.get("counter", ["a,b"]).get() == 1
    async with comma.connect() as conn:
        assert await conn.increment(1) == 2


async def test_events_reach_only_subscribed_connections(client: Client) -> None:
    room = client.get_or_create("counter", ["events"])
    listener = room.connect()
    heard: list[Any] = []
    listener.on("count", heard.append)
    other = room.connect()
    other_frames: list[str] = []
    async with listener, other:
        original = other.on_event

        def record(event: str, args: list[Any]) -> None:
            other_frames.append(event)
            original(event, args)

        other.on_event = record  # type: ignore[method-assign]
        other.on("pair", lambda a, b: None)
        assert await other.increment(1) == 1
        assert await room.increment(2) == 3
        await until(lambda: heard == [1, 3])
        pairs: list[Any] = []
        listener.on("pair", lambda a, b: pairs.append((a, b)))
        await listener.pair("x", {"y": 1})
        await until(lambda: pairs == [("x", {"y": 1})])
        await other.echo()  # a round trip: anything sent to `other` has arrived
        assert "count" not in other_frames
        assert "pair" in other_frames


async def test_events_async_iterator_and_once(client: Client) -> None:
    room = client.get_or_create("counter", ["iter"])
    async with room.connect() as conn:
        first: list[Any] = []
        conn.once("count", first.append)
        received: list[Any] = []

        async def consume() -> None:
            async for name, args in conn.events("count"):
                received.append((name, args))
                if len(received) == 3:
                    return

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.05)
        for _ in range(3):
            await conn.increment()
        await asyncio.wait_for(task, 10)
        assert received == [("count", [1]), ("count", [2]), ("count", [3])]
        assert first == [1]


async def test_many_actions_in_flight_on_one_connection(client: Client) -> None:
    room = client.get_or_create("counter", ["parallel"])
    async with room.connect() as conn:
        results = await asyncio.gather(*(conn.increment(1) for _ in range(25)))
        assert sorted(results) == list(range(1, 26))
        echoes = await asyncio.gather(*(conn.echo(i) for i in range(10)))
        assert echoes == [[i] for i in range(10)]
        assert conn.actor_id == await room.resolve()
        assert conn.connection_id


async def test_connection_params_and_rejection(client: Client) -> None:
    with pytest.raises(UserError) as info:
        await client.get_or_create("guarded", "g").connect().open()
    assert info.value.code == "forbidden" and info.value.metadata == {"hint": "token"}
    with pytest.raises(UserError):
        await client.get_or_create("guarded", "g").connect(params={"token": "no"}).open()

    params = {"token": "secret", "user": "ann é"}
    async with client.get_or_create("guarded", "g").connect(params=params) as conn:
        assert await conn.hello() == "hi ann é"
    # HTTP actions carry the params in a header.
    handle = client.get_or_create("guarded", "g", params=params)
    assert await handle.hello() == "hi ann é"
    with pytest.raises(UserError):
        await client.get_or_create("guarded", "g").hello()

    # Params may be a (sync or async) function, evaluated for each request.
    async def fresh_params() -> dict[str, str]:
        return {"token": "secret", "user": "bob"}

    assert await client.get_or_create("guarded", "g", params=fresh_params).hello() == "hi bob"


async def test_raw_fetch(client: Client) -> None:
    web = client.get_or_create("web", ["site"], params={"who": "me"})
    response = await web.fetch(
        "/hello/world?x=1&y=2", method="POST", body="payload", headers={"x-custom": "v"}
    )
    assert response.status == 201 and response.ok
    assert response.headers["x-from-actor"] == "yes"
    data = response.json()
    assert data["method"] == "POST"
    assert data["path"] == "/hello/world"
    assert data["query"] == "x=1&y=2"
    assert data["body"] == "payload"
    assert data["header"] == "v"
    assert data["params"] == {"who": "me"}
    plain = await web.fetch("plain")
    assert plain.status == 200 and plain.json()["path"] == "/plain"
    assert (await client.get_for_id("web", await web.resolve()).fetch("/x")).json()["hits"] == 3
    with pytest.raises(ActorNotFoundError):
        await client.get("web", ["nowhere"]).fetch("/x")


async def test_raw_websocket(client: Client) -> None:
    web = client.get_or_create("web", ["sockets"])
    async with web.websocket("/chat") as ws:
        assert await ws.recv() == "hello /chat"
        await ws.send("hi")
        assert await ws.recv() == "echo hi"
        await ws.send(b"\x01\x02\x03")
        assert await ws.recv() == b"\x03\x02\x01"
        await ws.send("close-me")
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
        assert ws.close_code == 4000
    async with web.websocket("/doomed") as ws:
        assert await ws.recv() == "hello /doomed"
        await ws.send("fail")
        with pytest.raises(UserError) as info:
            await ws.recv()
        assert info.value.code == "refused"
    ws2 = await client.get_for_id("web", await web.resolve()).websocket("direct")
    async with ws2:
        assert await ws2.recv() == "hello /direct"
        await ws2.send("close-me")
        assert [m async for m in ws2] == []


async def test_stale_handle_reaches_a_new_actor(client: Client) -> None:
    room = client.get_or_create("counter", ["phoenix"])
    assert await room.increment(5) == 5
    first_id = await room.whoami()
    await room.destroy_me()
    await until_destroyed(client, "phoenix")
    assert await room.increment(1) == 1
    assert await room.whoami() != first_id
    # A key the query URL cannot carry: the handle caches the id, and re-resolves it.
    odd = client.get_or_create("counter", ["phoe,nix"])
    assert await odd.increment(2) == 2
    await odd.destroy_me()
    await until_destroyed(client, "phoe,nix")
    assert await odd.increment(1) == 1


async def until_destroyed(client: Client, key: str) -> None:
    async def gone() -> bool:
        try:
            await client.get("counter", [key]).resolve()
        except ActorNotFoundError:
            return True
        return False

    await until_async(gone)


async def test_reconnect_after_server_restart(server: ServerHandle, encoding: str) -> None:
    async with Client(
        server.url,
        encoding=encoding,  # type: ignore[arg-type]
        backoff=Backoff(initial=0.05, maximum=0.4, jitter=0.0),
    ) as client:
        room = client.get_or_create("counter", ["durable"])
        conn: ActorConnection = room.connect()
        heard: list[int] = []
        conn.on("count", heard.append)
        async with conn:
            assert await conn.increment(3) == 3
            await until(lambda: heard == [3])
            in_flight = asyncio.ensure_future(conn.wait())
            await asyncio.sleep(0.1)

            stopping = asyncio.ensure_future(server.stop())
            with pytest.raises(ConnectionLostError):
                await asyncio.wait_for(in_flight, 10)
            server.gate.set()  # let the held action finish so the server can stop
            await stopping
            server.gate.clear()

            # Issued while the server is down: sent once the connection is back.
            later = asyncio.ensure_future(conn.increment(1))
            await asyncio.sleep(0.3)
            assert not later.done()
            await server.start()
            assert await asyncio.wait_for(later, 15) == 4  # state survived the restart
            await until(lambda: heard == [3, 4])  # the subscription was restored
            assert await conn.increment(1) == 5
            await until(lambda: heard == [3, 4, 5])
        assert await room.get() == 5


async def test_http_calls_fail_clearly_while_the_server_is_down(
    server: ServerHandle, encoding: str
) -> None:
    async with Client(server.url, encoding=encoding) as client:  # type: ignore[arg-type]
        room = client.get_or_create("counter", ["down"])
        assert await room.increment() == 1
        await server.stop()
        from pyrivet.client import NetworkError

        with pytest.raises(NetworkError):
            await room.increment()
        await server.start()
        assert await room.increment() == 2
