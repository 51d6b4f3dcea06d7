"""Connection hibernation over the real server: sockets that outlive their actor's sleep.

Driven with raw ``websockets`` clients speaking the protocol as RivetKit's client does
(plus, where said, pyrivet's resume extension).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from pyrivet import ActorOptions, Registry, actor
from pyrivet._protocol.messages import ActionResponse, Error, Event, Init
from pyrivet.server.ws_connect import MAX_WAKE_BUFFER

from ._support import call, query_url, recv_msg, subprotocols, subscribe
from .conftest import Served, Start

pytestmark = pytest.mark.usefixtures("reset_log")


@pytest.fixture
def reset_log() -> None:
    HOOKS.clear()
    GATE.set()
    SLEEP_GATE.set()


#: What the hooks of the `room` actor ran, in order.
HOOKS: list[str] = []
#: on_wake of `room` waits for it (set unless a test holds wakes).
GATE = asyncio.Event()
#: on_sleep of `room` waits for it.
SLEEP_GATE = asyncio.Event()


def make_room(**options: Any) -> Registry:
    def conn_state(c: Any, params: Any) -> dict[str, Any]:
        return {"name": (params or {}).get("name", "anon"), "sent": 0}

    room = actor(
        "room",
        state={"said": []},
        create_conn_state=conn_state,
        options=ActorOptions(**{"sleep_timeout": 3600, **options}),
    )

    @room.on_connect
    def on_connect(c: Any, conn: Any) -> None:
        HOOKS.append(f"connect:{conn.state['name']}")

    @room.on_disconnect
    def on_disconnect(c: Any, conn: Any) -> None:
        HOOKS.append(f"disconnect:{conn.state['name']}")

    @room.on_wake
    async def on_wake(c: Any) -> None:
        HOOKS.append("wake")
        await GATE.wait()

    @room.on_sleep
    async def on_sleep(c: Any) -> None:
        HOOKS.append("sleep")
        await SLEEP_GATE.wait()

    @room.action
    def say(c: Any, text: str) -> int:
        c.conn.state["sent"] += 1
        c.state["said"].append(text)
        c.broadcast("said", c.conn.state["name"], text)
        return int(c.conn.state["sent"])

    @room.action
    def who(c: Any) -> list[Any]:
        return sorted([conn.state["name"], conn.is_hibernatable] for conn in c.conns.values())

    return Registry([room])


async def join(
    served: Served, name: str, key: str = "r1", **kw: Any
) -> tuple[ClientConnection, Init]:
    protocols = subprotocols("json", json.dumps({"name": name}))
    protocols.extend(Subprotocol(p) for p in kw.get("extra", ()))
    ws = await connect(
        served.ws_url + query_url("room", "/connect", key=key), subprotocols=protocols
    )
    init = await recv_msg(ws, "json")
    assert isinstance(init, Init), init
    return ws, init


async def asleep(served: Served, actor_id: str) -> None:
    assert served.runtime is not None
    await served.runtime.sleep(actor_id)
    assert not served.runtime.is_awake(actor_id)


async def test_state_and_subscriptions_survive_sleep_and_hooks_do_not_rerun(
    start_server: Start,
) -> None:
    served = await start_server(make_room())
    ada, init = await join(served, "ada")
    bob, _ = await join(served, "bob")
    async with ada, bob:
        await subscribe(bob, "json", "said")
        await call(ada, "json", 0, "say", "one")
        assert await recv_msg(ada, "json") == ActionResponse(0, 1)
        assert await recv_msg(bob, "json") == Event("said", ["ada", "one"])

        await asleep(served, init.actor_id)
        assert HOOKS == ["wake", "connect:ada", "connect:bob", "sleep"]
        # Both sockets stayed open and the actor holds nothing for them.
        assert served.runtime is not None
        assert served.runtime._services.parking.count() == 2

        # A message wakes the actor; conn.state kept counting; bob is still subscribed.
        await call(ada, "json", 1, "say", "two")
        assert await recv_msg(ada, "json") == ActionResponse(1, 2)
        assert await recv_msg(bob, "json") == Event("said", ["ada", "two"])
        # Woken once more, with no on_connect again.
        assert HOOKS == ["wake", "connect:ada", "connect:bob", "sleep", "wake"]
        await call(bob, "json", 0, "who")
        assert await recv_msg(bob, "json") == ActionResponse(0, [["ada", True], ["bob", True]])
    # The clients really leave now: on_disconnect runs for each.
    assert served.runtime is not None
    for _ in range(200):
        if HOOKS.count("disconnect:ada") and HOOKS.count("disconnect:bob"):
            break
        await asyncio.sleep(0.01)
    assert HOOKS[-2:] == ["disconnect:ada", "disconnect:bob"] or HOOKS[-2:] == [
        "disconnect:bob",
        "disconnect:ada",
    ]


async def test_open_connections_do_not_keep_the_actor_awake(start_server: Start) -> None:
    served = await start_server(make_room(sleep_timeout=0.2))
    ws, init = await join(served, "ada")
    async with ws:
        assert served.runtime is not None
        for _ in range(300):
            if not served.runtime.is_awake(init.actor_id):
                break
            await asyncio.sleep(0.01)
        assert not served.runtime.is_awake(init.actor_id)
        await call(ws, "json", 0, "say", "hi")
        assert await recv_msg(ws, "json") == ActionResponse(0, 1)


async def test_non_hibernatable_connections_keep_the_old_behaviour(start_server: Start) -> None:
    served = await start_server(make_room(hibernatable_connections=False))
    ws, init = await join(served, "ada")
    async with ws:
        await call(ws, "json", 0, "who")
        assert await recv_msg(ws, "json") == ActionResponse(0, [["ada", False]])
        assert served.runtime is not None
        await served.runtime.sleep(init.actor_id)
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1000
    assert HOOKS == ["wake", "connect:ada", "sleep", "disconnect:ada"]


async def test_a_client_leaving_while_hibernated_does_not_wake_the_actor(
    start_server: Start,
) -> None:
    served = await start_server(make_room())
    ada, init = await join(served, "ada")
    bob, _ = await join(served, "bob")
    await asleep(served, init.actor_id)
    await ada.close()
    assert served.runtime is not None
    parking = served.runtime._services.parking
    for _ in range(300):
        if parking.count() == 1:
            break
        await asyncio.sleep(0.01)
    assert parking.count() == 1
    assert not served.runtime.is_awake(init.actor_id)
    assert "disconnect:ada" not in HOOKS
    async with bob:
        await call(bob, "json", 0, "who")  # wakes it: ada's on_disconnect runs now
        assert await recv_msg(bob, "json") == ActionResponse(0, [["ada", True], ["bob", True]])
        for _ in range(300):
            if "disconnect:ada" in HOOKS:
                break
            await asyncio.sleep(0.01)
        await call(bob, "json", 1, "who")
        assert await recv_msg(bob, "json") == ActionResponse(1, [["bob", True]])
    assert HOOKS.count("wake") == 2 and "disconnect:ada" in HOOKS


async def test_a_vanished_client_is_found_by_ping_without_waking(start_server: Start) -> None:
    served = await start_server(make_room(), ws_ping=(0.1, 0.1))
    ws, init = await join(served, "ada")
    await asleep(served, init.actor_id)
    assert served.runtime is not None
    parking = served.runtime._services.parking
    assert parking.count() == 1
    # The client stops reading (so it answers no ping) but never closes its socket.
    transport = ws.transport
    transport.pause_reading()
    for _ in range(500):
        if parking.count() == 0:
            break
        await asyncio.sleep(0.01)
    assert parking.count() == 0
    assert not served.runtime.is_awake(init.actor_id)
    assert parking.gone == {init.actor_id: {init.connection_id}}
    transport.abort()


async def test_messages_sent_while_waking_are_held_then_a_burst_past_the_bound_fails(
    start_server: Start,
) -> None:
    served = await start_server(make_room())
    ws, init = await join(served, "ada")
    async with ws:
        await asleep(served, init.actor_id)
        GATE.clear()  # the wake now waits in on_wake
        burst = MAX_WAKE_BUFFER + 5
        for i in range(burst):
            await call(ws, "json", i, "say", f"m{i}")
        # The five past the bound fail at once, while the actor is still waking.
        errors = [await recv_msg(ws, "json") for _ in range(5)]
        assert all(isinstance(e, Error) for e in errors)
        assert {e.action_id for e in errors if isinstance(e, Error)} == set(
            range(MAX_WAKE_BUFFER, burst)
        )
        first = errors[0]
        assert isinstance(first, Error)
        assert (first.group, first.code) == ("connection", "wake_buffer_full")
        assert "waking up" in first.message
        GATE.set()
        replies = [await recv_msg(ws, "json") for _ in range(MAX_WAKE_BUFFER)]
        # Held messages ran in order, none lost.
        assert replies == [ActionResponse(i, i + 1) for i in range(MAX_WAKE_BUFFER)]


async def test_an_action_sent_while_the_actor_falls_asleep_runs_after_the_wake(
    start_server: Start,
) -> None:
    served = await start_server(make_room())
    ws, init = await join(served, "ada")
    async with ws:
        assert served.runtime is not None
        SLEEP_GATE.clear()
        sleeping = asyncio.ensure_future(served.runtime.sleep(init.actor_id))
        for _ in range(300):
            if "sleep" in HOOKS:
                break
            await asyncio.sleep(0.01)
        await call(ws, "json", 0, "say", "late")  # on_sleep is still running
        await asyncio.sleep(0.05)
        SLEEP_GATE.set()
        await sleeping
        assert await recv_msg(ws, "json") == ActionResponse(0, 1)
        assert HOOKS == ["wake", "connect:ada", "sleep", "wake"]


async def test_destroying_a_sleeping_actor_closes_its_hibernated_sockets(
    start_server: Start,
) -> None:
    served = await start_server(make_room())
    ws, init = await join(served, "ada")
    async with ws:
        await asleep(served, init.actor_id)
        assert served.runtime is not None
        await served.runtime.destroy(init.actor_id)
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert served.runtime._services.parking.count() == 0


def resume_offer(**fields: Any) -> str:
    return "pyrivet_resume." + quote(json.dumps({"v": 1, **fields}), safe="")


async def test_resume_extension_numbers_events_and_reports_unknown_cursors(
    start_server: Start,
) -> None:
    served = await start_server(make_room())
    ws, _ = await join(served, "ada", extra=[resume_offer(events=["said"])])
    async with ws:
        hello = await recv_msg(ws, "json")
        assert isinstance(hello, Event) and hello.name == "_pyrivet.hello"
        info = hello.args[0]
        assert info["resumed"] is False and info["seq"] == 0 and "gap" not in info
        await call(ws, "json", 0, "say", "x")
        event = await recv_msg(ws, "json")
        assert event == Event("_pyrivet.event", [1, info["epoch"], "said", ["ada", "x"]])
        assert await recv_msg(ws, "json") == ActionResponse(0, 1)
        # Resuming that connection with its token: same id, no on_connect, state kept.
        offer = resume_offer(conn=info["conn"], token=info["token"], epoch=info["epoch"], seq=0)
        again, init = await join(served, "ada", extra=[offer])
        async with again:
            assert init.connection_id == info["conn"]
            hello2 = await recv_msg(again, "json")
            assert isinstance(hello2, Event)
            assert hello2.args[0]["resumed"] is True
            # The event it missed after seq 0 comes back.
            assert await recv_msg(again, "json") == Event(
                "_pyrivet.event", [1, info["epoch"], "said", ["ada", "x"]]
            )
            await call(again, "json", 0, "say", "y")
            assert await recv_msg(again, "json") == Event(
                "_pyrivet.event", [2, info["epoch"], "said", ["ada", "y"]]
            )
            assert await recv_msg(again, "json") == ActionResponse(0, 2)
        with pytest.raises(ConnectionClosed):  # the old socket was replaced
            await ws.recv()
    assert HOOKS.count("connect:ada") == 1

    # A cursor past anything the actor sent: reported, not answered with events.
    bad, _ = await join(served, "cy", extra=[resume_offer(epoch=info["epoch"], seq=99)])
    async with bad:
        hello3 = await recv_msg(bad, "json")
        assert isinstance(hello3, Event)
        gap = hello3.args[0]["gap"]
        assert gap["code"] == "unknown_sequence" and "never sent event 99" in gap["reason"]
        assert hello3.args[0]["seq"] == 2


async def test_a_malformed_resume_offer_is_refused_clearly(start_server: Start) -> None:
    served = await start_server(make_room())
    protocols = [*subprotocols("json"), Subprotocol("pyrivet_resume.%7Bnope")]
    ws = await connect(
        served.ws_url + query_url("room", "/connect", key="r1"), subprotocols=protocols
    )
    async with ws:
        error = await recv_msg(ws, "json")
        assert isinstance(error, Error)
        assert (error.group, error.code) == ("connection", "invalid_resume")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1011


def make_chat(**options: Any) -> Registry:
    chat = actor(
        "chat",
        state={"lines": 0},
        create_conn_state=lambda c, params: {"n": 0},
        options=ActorOptions(**{"can_hibernate_websocket": True, **options}),
    )

    @chat.on_websocket
    async def on_websocket(c: Any, ws: Any) -> None:
        HOOKS.append(f"open resumed={ws.resumed}")
        async for message in ws:
            c.conn.state["n"] += 1
            c.state["lines"] += 1
            await ws.send(f"{message} #{c.conn.state['n']}")
        HOOKS.append("hook ended")

    @chat.on_disconnect
    def gone(c: Any, conn: Any) -> None:
        HOOKS.append("disconnect")

    return Registry([chat])


async def test_a_hibernatable_raw_websocket_survives_sleep(start_server: Start) -> None:
    served = await start_server(make_chat(sleep_timeout=0.2))
    assert served.runtime is not None
    url = served.ws_url + query_url("chat", "/websocket/room", key="c1")
    async with connect(url) as ws:
        await ws.send("a")
        assert await ws.recv() == "a #1"
        # The hook waits in receive(): the actor still goes to sleep by itself.
        for _ in range(300):
            if served.runtime.awake_count == 0:
                break
            await asyncio.sleep(0.01)
        assert served.runtime.awake_count == 0
        assert HOOKS == ["open resumed=False", "hook ended"]
        # The next message wakes it; the hook runs again, conn.state kept.
        await ws.send("b")
        assert await ws.recv() == "b #2"
        assert HOOKS == ["open resumed=False", "hook ended", "open resumed=True"]
    for _ in range(300):
        if "disconnect" in HOOKS:
            break
        await asyncio.sleep(0.01)
    assert HOOKS[-2:] == ["hook ended", "disconnect"]


async def test_a_raw_websocket_client_leaving_while_hibernated(start_server: Start) -> None:
    served = await start_server(make_chat())
    assert served.runtime is not None
    url = served.ws_url + query_url("chat", "/websocket/room", key="c2")
    ws = await connect(url)
    await ws.send("a")
    assert await ws.recv() == "a #1"
    (actor_id,) = list(served.runtime._instances)
    await served.runtime.sleep(actor_id)
    parking = served.runtime._services.parking
    assert parking.count() == 1
    await ws.close()
    for _ in range(300):
        if parking.count() == 0:
            break
        await asyncio.sleep(0.01)
    assert len(parking.gone[actor_id]) == 1
    assert not served.runtime.is_awake(actor_id)
    assert "disconnect" not in HOOKS
