"""The connection state machine (connect, reconnect with backoff, rejection of in-flight
actions) against a fake gateway, with the backoff waits on a mock clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pyrivet._protocol.messages import Error, SubscriptionRequest
from pyrivet.client import (
    ActorConnection,
    Backoff,
    Client,
    ConnectionClosedError,
    ConnectionLostError,
    NetworkError,
)
from pyrivet.client._ws import ActorSocket
from pyrivet.errors import ActionNotFoundError, ActorError, UserError
from pyrivet.testing import MockClock

from .fake_gateway import FakeGateway
from .waiting import until

ENCODINGS = ["json", "cbor", "bare"]


class SleepRecordingClock(MockClock):
    """A mock clock that records every `sleep` the client asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        await super().sleep(delay)


def sleeps_reach(clock: SleepRecordingClock, count: int) -> Callable[[], bool]:
    """A predicate for `until`: the client has slept ``count`` times."""
    return lambda: len(clock.sleeps) == count


def socket_of(conn: ActorConnection) -> ActorSocket:
    sock = conn._conn
    assert isinstance(sock, ActorSocket)
    return sock


@pytest.fixture
def clock() -> SleepRecordingClock:
    return SleepRecordingClock()


@pytest.fixture(params=ENCODINGS)
async def client(
    request: pytest.FixtureRequest, gateway: FakeGateway, clock: SleepRecordingClock
) -> AsyncIterator[Client]:
    async with Client(
        gateway.url,
        encoding=request.param,
        clock=clock,
        backoff=Backoff(jitter=0.0),
        metadata_lookup=False,
    ) as c:
        yield c


async def test_connect_sends_init_subscriptions_and_actions(
    client: Client, gateway: FakeGateway
) -> None:
    handle = client.get_or_create("counter", ["a", "sub"], params={"token": "t 1"})
    conn = handle.connect()
    seen: list[Any] = []
    conn.on("tick", lambda *args: seen.append(args))
    async with conn:
        assert conn.actor_id == "actor-1"
        assert conn.connection_id == "conn-1"
        fake = await gateway.wait_conns(1)
        assert fake.path.startswith("/gateway/counter/connect?rvt-namespace=default")
        assert "rvt-method=getOrCreate" in fake.path and "rvt-key=a%2Csub" in fake.path
        assert fake.params == {"token": "t 1"}
        # Several actions in flight at once on one socket.
        results = await asyncio.gather(*(conn.echo(i, "x") for i in range(5)))
        assert results == [[i, "x"] for i in range(5)]
        assert await conn.emit("tick", 1, 2) is None
        assert seen == [(1, 2)]
        assert fake.received[0] == SubscriptionRequest("tick", True)


async def test_action_errors_are_rebuilt(client: Client, gateway: FakeGateway) -> None:
    async with client.get("counter", "a").connect() as conn:
        with pytest.raises(UserError) as info:
            await conn.fail()
        assert (info.value.code, info.value.message, info.value.metadata) == (
            "custom_code",
            "nope",
            {"a": 1},
        )
        with pytest.raises(ActionNotFoundError):
            await conn.nope()


async def test_conn_error_rejects_in_flight(client: Client, gateway: FakeGateway) -> None:
    async with client.get("counter", "a").connect() as conn:
        hanging = asyncio.ensure_future(conn.hang())
        await until(lambda: len(gateway.conns[0].received) >= 1)
        with pytest.raises(ActorError, match="too busy"):
            await conn.conn_error()
        with pytest.raises(ActorError, match="too busy"):
            await hanging


async def test_reconnect_with_backoff_restores_subscriptions(
    client: Client, gateway: FakeGateway, clock: SleepRecordingClock
) -> None:
    calls = 0

    def params() -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"attempt": calls}

    conn = client.get_or_create("counter", ["a"], params=params).connect()
    events: list[Any] = []
    conn.on("tick", lambda *a: events.append(a))
    statuses: list[str] = []
    conn.on_status_change(statuses.append)  # public, registered before open
    async with conn:
        sock = socket_of(conn)
        first = await gateway.wait_conns(1)
        assert first.params == {"attempt": 1}
        in_flight = asyncio.ensure_future(conn.hang())
        await until(lambda: len(first.received) >= 2)  # subscription + hang

        await gateway.stop()
        # The in-flight action is rejected, not re-sent.
        with pytest.raises(ConnectionLostError):
            await in_flight
        await until(lambda: sock.status == "connecting")
        assert conn.status == "connecting" and conn.is_open
        # Attempt 1 runs at once and is refused; then the waits double from 250 ms.
        await until(lambda: len(clock.sleeps) == 1)
        for expected in (0.25, 0.5, 1.0, 2.0):
            assert clock.sleeps[-1] == expected
            count = len(clock.sleeps)
            await clock.advance(expected)
            await until(sleeps_reach(clock, count + 1))
        assert clock.sleeps == [0.25, 0.5, 1.0, 2.0, 4.0]

        # An action issued while disconnected waits for the next connection.
        queued = asyncio.ensure_future(conn.echo("late"))
        await asyncio.sleep(0.05)
        assert not queued.done()

        gateway.actor_id = "actor-2"
        await gateway.start()
        await clock.advance(4.0)
        second = await gateway.wait_conns(2)
        assert await queued == ["late"]
        assert second.params == {"attempt": calls} and calls >= 2  # params re-run
        # Subscriptions were sent again, before the queued action.
        assert second.received[0] == SubscriptionRequest("tick", True)
        assert await conn.emit("tick", "again") is None
        assert events == [("again",)]
        assert conn.actor_id == "actor-2"
        assert sock.opens == 2
        assert conn.status == "connected"
        assert statuses == ["connected", "disconnected", "connecting", "connected"]

        # After a success the backoff starts over.
        clock.sleeps.clear()
        await gateway.stop()
        await until(lambda: len(clock.sleeps) == 1)
        assert clock.sleeps == [0.25]
        await gateway.start()
        await clock.advance(0.25)
        await gateway.wait_conns(3)
        assert await conn.echo(1) == [1]
    assert statuses[-1] == "idle" and statuses.count("idle") == 1


async def test_backoff_is_capped_at_30s(
    client: Client, gateway: FakeGateway, clock: SleepRecordingClock
) -> None:
    async with client.get("counter", "a").connect() as conn:
        sock = socket_of(conn)
        await gateway.stop()
        await until(lambda: len(clock.sleeps) == 1)
        for count in range(1, 11):
            await clock.advance(clock.sleeps[-1])
            await until(sleeps_reach(clock, count + 1))
        assert clock.sleeps[:8] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
        assert set(clock.sleeps[8:]) == {30.0}
        assert sock.status == "connecting"


async def test_refusal_on_reconnect_closes_the_connection(
    client: Client, gateway: FakeGateway, clock: SleepRecordingClock
) -> None:
    conn = client.get_or_create("counter", "a").connect()
    await conn.open()
    iterator = conn.events("tick")
    next_event = asyncio.ensure_future(anext(iterator))
    first = await gateway.wait_conns(1)
    await until(lambda: len(first.received) >= 1)
    # The server now refuses this client (e.g. on_before_connect rejects its params).
    gateway.refuse_with = Error("auth", "forbidden", "go away")
    await first.ws.close(1012, "")
    queued: asyncio.Future[Any] | None = None
    await until(lambda: socket_of(conn).status != "connected")
    queued = asyncio.ensure_future(conn.echo(1))
    with pytest.raises(ActorError, match="go away"):
        await queued
    assert socket_of(conn).status == "idle"
    # The connection is closed: iterators end, new calls fail at once.
    with pytest.raises(StopAsyncIteration):
        await next_event
    with pytest.raises(ConnectionClosedError):
        await conn.echo(2)
    await conn.close()


async def test_first_open_failures_raise(client: Client, gateway: FakeGateway) -> None:
    gateway.refuse_with = Error("user", "bad_token", "invalid token", {"why": "expired"})
    with pytest.raises(UserError) as info:
        await client.get("counter", "a").connect().open()
    assert info.value.code == "bad_token" and info.value.metadata == {"why": "expired"}

    gateway.refuse_with = None
    gateway.http_refusal = (404, {"group": "actor", "code": "not_found", "message": "no actor"})
    with pytest.raises(ActorError, match="no actor"):
        await client.get_for_id("counter", "missing").connect().open()

    gateway.http_refusal = None
    await gateway.stop()
    with pytest.raises(NetworkError):
        await client.get("counter", "a").connect().open()


async def test_first_open_retries_lifecycle_answers(
    client: Client, gateway: FakeGateway, clock: SleepRecordingClock
) -> None:
    gateway.refuse_with = Error("actor", "stopping", "going to sleep")
    opening = asyncio.ensure_future(client.get("counter", "a").connect().open())
    await until(lambda: len(clock.sleeps) == 1)
    gateway.refuse_with = None
    await clock.advance(0.25)
    conn = await opening
    assert conn.actor_id == "actor-1"
    await conn.close()


async def test_close_while_reconnecting(
    client: Client, gateway: FakeGateway, clock: SleepRecordingClock
) -> None:
    conn = await client.get("counter", "a").connect().open()
    await gateway.stop()
    await until(lambda: len(clock.sleeps) == 1)
    queued = asyncio.ensure_future(conn.echo(1))
    await asyncio.sleep(0)
    await conn.close()
    with pytest.raises(ConnectionClosedError):
        await queued
    assert conn.status == "idle"


async def test_close_rejects_in_flight(client: Client, gateway: FakeGateway) -> None:
    conn = await client.get("counter", "a").connect().open()
    fake = await gateway.wait_conns(1)
    in_flight = asyncio.ensure_future(conn.hang())
    await until(lambda: len(fake.received) >= 1)
    await conn.close()
    with pytest.raises(ConnectionClosedError):
        await in_flight


async def test_unsubscribe_is_sent(client: Client, gateway: FakeGateway) -> None:
    async with client.get("counter", "a").connect() as conn:
        fake = await gateway.wait_conns(1)
        off = conn.on("tick", lambda *a: None)
        off()
        await conn.echo(0)
        assert fake.received[:2] == [
            SubscriptionRequest("tick", True),
            SubscriptionRequest("tick", False),
        ]


async def test_get_for_id_connects_directly(client: Client, gateway: FakeGateway) -> None:
    async with client.get_for_id("counter", "abc/1").connect() as conn:
        fake = await gateway.wait_conns(1)
        assert fake.path == "/gateway/abc%2F1/connect"
        assert await conn.whoami() == {"actor": "actor-1", "params": None}


async def test_client_close_closes_connections(gateway: FakeGateway) -> None:
    client = Client(gateway.url, encoding="json", metadata_lookup=False)
    conn = await client.get("counter", "a").connect().open()
    events = conn.events("tick")
    next_event = asyncio.ensure_future(anext(events))
    await gateway.wait_conns(1)
    await asyncio.sleep(0)
    await client.aclose()
    with pytest.raises(ConnectionClosedError):
        await conn.echo(1)
    with pytest.raises(StopAsyncIteration):
        await next_event
    assert conn.status == "idle"


async def test_server_not_running_is_retried(
    client: Client, gateway: FakeGateway, clock: SleepRecordingClock
) -> None:
    gateway.http_refusal = (503, {"group": "server", "code": "not_running", "message": "wait"})
    opening = asyncio.ensure_future(client.get("counter", "a").connect().open())
    await until(lambda: len(clock.sleeps) == 1)
    assert gateway.attempts == 1
    gateway.http_refusal = None
    await clock.advance(0.25)
    conn = await opening
    assert conn.status == "connected"
    await conn.close()
