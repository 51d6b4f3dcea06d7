"""Connections and events: subscriptions, targeted sends, hooks and their order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from pyrivet import Registry, UserError, actor
from pyrivet.storage import ActorStore
from pyrivet.testing import MockClock, run_actors

DriverFactory = Callable[[], ActorStore]


def room_def(log: list[str]) -> Any:
    def create_conn_state(c: Any, params: Any) -> dict[str, Any]:
        user = (params or {}).get("user", "anon")
        log.append(f"create_conn_state {user}")
        return {"user": user, "sent": 0}

    room = actor(
        "room",
        state={"joined": []},
        create_vars=lambda c: {"gate": asyncio.Event()},
        create_conn_state=create_conn_state,
    )

    @room.on_before_connect
    def on_before_connect(c: Any, params: Any) -> None:
        user = (params or {}).get("user", "anon")
        log.append(f"on_before_connect {user} conns={len(c.conns)}")
        if (params or {}).get("reject"):
            raise UserError("you may not enter", code="forbidden", metadata={"user": user})

    @room.on_connect
    def on_connect(c: Any, conn: Any) -> None:
        user = conn.state["user"]
        log.append(f"on_connect {user} listed={conn.id in c.conns}")
        if (conn.params or {}).get("quiet"):
            c.state["joined"].append(user)
        if (conn.params or {}).get("announce"):
            c.state["joined"].append(user)
            conn.send("welcome", f"hello {user}")
            c.broadcast("joined", user)

    @room.on_disconnect
    def on_disconnect(c: Any, conn: Any) -> None:
        log.append(f"on_disconnect {conn.state['user']} listed={conn.id in c.conns}")
        if (conn.params or {}).get("quiet"):
            c.state.setdefault("left", []).append(conn.state["user"])

    @room.action
    def say(c: Any, text: str) -> int:
        c.state.setdefault("said", []).append(text)
        c.broadcast("message", c.conn.state["user"], text)
        return len(c.state["said"])

    @room.action
    def shout(c: Any, *args: Any) -> None:
        c.broadcast("multi", *args)

    @room.action
    def whisper(c: Any, target: str, text: str) -> bool:
        conn = c.conns.get(target)
        if conn is None:
            return False
        conn.send("dm", c.conn.state["user"], text)
        return True

    @room.action
    def echo(c: Any, text: str) -> None:
        c.conn.send("dm", "server", text)

    @room.action
    def who(c: Any) -> list[Any]:
        return sorted([cid, conn.params, conn.state["user"]] for cid, conn in c.conns.items())

    @room.action
    def me(c: Any) -> dict[str, Any]:
        return dict(c.conn.state)

    @room.action
    def bump(c: Any) -> int:
        c.conn.state["sent"] += 1
        return int(c.conn.state["sent"])

    @room.action
    async def wait_gate(c: Any) -> str:
        await c.vars["gate"].wait()
        return "through"

    @room.action
    def open_gate(c: Any) -> str:
        c.vars["gate"].set()
        return "opened"

    @room.action
    def joined(c: Any) -> list[str]:
        return list(c.state["joined"])

    return room


def recorder() -> tuple[list[tuple[Any, ...]], Callable[..., None]]:
    got: list[tuple[Any, ...]] = []

    def record(*args: Any) -> None:
        got.append(args)

    return got, record


async def test_events_reach_only_subscribed_connections(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([room_def([])]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("room", ["r"])
        a_got, a_rec = recorder()
        b_got, b_rec = recorder()
        async with (
            handle.connect(params={"user": "ann"}) as a,
            handle.connect(params={"user": "bob"}) as b,
            handle.connect(params={"user": "cy"}) as c,
        ):
            unsubscribe = a.on("message", a_rec)
            b.on("other", b_rec)
            assert await c.say("hi") == 1
            # Released with the reply: the commit is durable, so the event is out.
            assert a_got == [("cy", "hi")]
            assert b_got == []
            unsubscribe()
            await c.say("again")
            assert a_got == [("cy", "hi")]
            a.on("message", a_rec)
            await b.say("back")
            assert a_got == [("cy", "hi"), ("bob", "back")]
            assert b_got == []


async def test_events_iterator(driver_factory: DriverFactory, clock: MockClock) -> None:
    async with run_actors(Registry([room_def([])]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("room", ["r"])
        async with handle.connect(params={"user": "ann"}) as conn:
            events = conn.events("message", "multi")
            first = asyncio.ensure_future(events.__anext__())
            await clock.settle()
            await conn.say("one")
            assert await first == ("message", ["ann", "one"])
            await conn.shout(1, 2)
            assert await events.__anext__() == ("multi", [1, 2])
            await events.aclose()


async def test_events_iterator_is_subscribed_before_its_first_next(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    """Events sent after `events()` returned are kept, even before anyone iterates; a
    local connection reports "connected" when open and "idle" when closed."""
    async with run_actors(Registry([room_def([])]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("room", ["r"])
        statuses: list[str] = []
        conn = handle.connect(params={"user": "ann"})
        conn.on_status_change(statuses.append)
        async with conn:
            assert statuses == ["connected"]
            async with conn.events("message") as events:
                await conn.say("one")
                await conn.say("two")
                assert await anext(events) == ("message", ["ann", "one"])
                assert await anext(events) == ("message", ["ann", "two"])
            with pytest.raises(StopAsyncIteration):
                await anext(events)  # closed by the `async with`
            assert "message" not in conn._queues  # and unsubscribed
        assert statuses == ["connected", "idle"]
        ended = conn.events("message")
        with pytest.raises(StopAsyncIteration):  # the connection is closed
            await anext(ended)


async def test_send_targets_one_connection(driver_factory: DriverFactory, clock: MockClock) -> None:
    async with run_actors(Registry([room_def([])]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("room", ["r"])
        a_got, a_rec = recorder()
        b_got, b_rec = recorder()
        async with (
            handle.connect(params={"user": "ann"}) as a,
            handle.connect(params={"user": "bob"}) as b,
        ):
            a.on("dm", a_rec)
            b.on("dm", b_rec)
            assert await a.whisper(b.connection_id, "psst") is True
            assert b_got == [("ann", "psst")]
            assert a_got == []
            await b.echo("me only")
            assert b_got == [("ann", "psst"), ("server", "me only")]
            assert a_got == []
            assert await a.whisper("no-such-conn", "x") is False


async def test_broadcast_with_several_args(driver_factory: DriverFactory, clock: MockClock) -> None:
    async with run_actors(Registry([room_def([])]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("room", ["r"])
        got, rec = recorder()
        async with handle.connect() as conn:
            conn.on("multi", rec)
            await conn.shout(1, "two", [3], {"four": 4}, None)
            await conn.shout()
            assert got == [(1, "two", [3], {"four": 4}, None), ()]


async def test_on_before_connect_rejection(driver_factory: DriverFactory, clock: MockClock) -> None:
    log: list[str] = []
    async with run_actors(Registry([room_def(log)]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("room", ["r"])
        async with handle.connect(params={"user": "ann"}) as ann:
            rejected = handle.connect(params={"user": "eve", "reject": True})
            with pytest.raises(UserError) as info:
                await rejected.open()
            assert info.value.code == "forbidden"
            assert info.value.message == "you may not enter"
            assert info.value.metadata == {"user": "eve"}
            assert not rejected.is_open
            assert [row[2] for row in await ann.who()] == ["ann"]
            # A stateless call with rejected params is refused the same way.
            with pytest.raises(UserError) as info:
                await client.get_or_create("room", ["r"], params={"reject": True}).say("x")
            assert info.value.code == "forbidden"
        assert not any("eve" in line and "on_before_connect" not in line for line in log)
        assert not any(line.startswith("on_disconnect anon") for line in log)
        assert "on_before_connect eve conns=1" in log


async def test_conn_state(driver_factory: DriverFactory, clock: MockClock) -> None:
    async with run_actors(Registry([room_def([])]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("room", ["r"])
        async with (
            handle.connect(params={"user": "ann"}) as a,
            handle.connect(params={"user": "bob"}) as b,
        ):
            assert await a.bump() == 1
            assert await a.bump() == 2
            assert await a.me() == {"user": "ann", "sent": 2}
            assert await b.me() == {"user": "bob", "sent": 0}
        # Connection state is per connection: a new one starts fresh.
        async with handle.connect(params={"user": "ann"}) as again:
            assert await again.me() == {"user": "ann", "sent": 0}


async def test_conns_lists_open_connections(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([room_def([])]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("room", ["r"])
        a = await handle.connect(params={"user": "ann"}).open()
        b = await handle.connect(params={"user": "bob", "x": 1}).open()
        both: list[list[Any]] = [
            [a.connection_id, {"user": "ann"}, "ann"],
            [b.connection_id, {"user": "bob", "x": 1}, "bob"],
        ]
        assert await a.who() == sorted(both)
        await b.close()
        assert not b.is_open
        assert await a.who() == [[a.connection_id, {"user": "ann"}, "ann"]]
        # A stateless call runs on a transient connection listed only during the call.
        rows = await client.get_or_create("room", ["r"], params={"user": "tmp"}).who()
        assert sorted(row[2] for row in rows) == ["ann", "tmp"]
        assert await a.who() == [[a.connection_id, {"user": "ann"}, "ann"]]
        await a.close()


async def test_hook_order(driver_factory: DriverFactory, clock: MockClock) -> None:
    log: list[str] = []
    async with run_actors(Registry([room_def(log)]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("room", ["r"])
        conn = await handle.connect(params={"user": "ann"}).open()
        assert log == [
            "on_before_connect ann conns=0",
            "create_conn_state ann",
            "on_connect ann listed=True",
        ]
        await conn.say("x")
        await conn.close()
        # on_disconnect has run when close() returns, after the connection left c.conns.
        assert log[3:] == ["on_disconnect ann listed=False"]


async def test_on_connect_events_reach_listeners_registered_before_open(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([room_def([])]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("room", ["r"])
        welcome, on_welcome = recorder()
        joined, on_joined = recorder()
        watcher_got, watcher_rec = recorder()
        async with handle.connect(params={"user": "zed"}) as watcher:
            watcher.on("joined", watcher_rec)
            conn = handle.connect(params={"user": "ann", "announce": True})
            conn.on("welcome", on_welcome)
            conn.on("joined", on_joined)
            await conn.open()
            await clock.settle()
            assert welcome == [("hello ann",)]
            assert joined == [("ann",)]
            assert watcher_got == [("ann",)]
            # on_connect's state change was committed.
            assert await conn.joined() == ["ann"]
            await conn.close()


async def test_on_connect_state_change_is_committed(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([room_def([])]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("room", ["r"])
        actor_id = await handle.resolve()
        # No event is sent, so nothing but the change itself calls for a commit.
        async with handle.connect(params={"user": "ann", "quiet": True}):
            await clock.settle()
            entries = await runtime.history(actor_id)
            assert entries[-1].state == {"joined": ["ann"]}
        await clock.settle()
        entries = await runtime.history(actor_id)
        assert entries[-1].state == {"joined": ["ann"], "left": ["ann"]}
        assert [e.kind for e in entries] == ["create", "save", "save"]


async def test_concurrent_actions_over_one_connection(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([room_def([])]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("room", ["r"])
        got, rec = recorder()
        async with handle.connect(params={"user": "ann"}) as conn:
            conn.on("message", rec)
            # An action waiting inside the actor does not block the next one on the same
            # connection: the second opens the gate the first waits on.
            assert list(await asyncio.gather(conn.wait_gate(), conn.open_gate())) == [
                "through",
                "opened",
            ]
            counts = await asyncio.gather(*(conn.say(str(i)) for i in range(20)))
            assert sorted(counts) == list(range(1, 21))
            assert sorted(args[1] for args in got) == sorted(str(i) for i in range(20))


async def test_an_action_on_a_connection_not_yet_open_fails_when_awaited(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([room_def([])]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        conn = client.get_or_create("room", ["r"]).connect()
        call = conn.say("too early")  # no error yet: nothing runs before the await
        with pytest.raises(RuntimeError, match="not open"):
            await call
        async with conn:
            assert await conn.say("now") == 1
        with pytest.raises(RuntimeError, match="not open"):
            await conn.action("say", "closed")
