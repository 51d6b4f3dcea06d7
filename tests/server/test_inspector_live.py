"""``/gateway/{actor}/inspector/live``: frames pushed as the actor commits, auth, and
the hub that keeps a slow or dead socket from costing the actor anything."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from pyrivet import Client, Queue, Registry, actor
from pyrivet.server._uvicorn_ws import MORE_KEY
from pyrivet.server.inspector.hubs import MAX_BUFFERED, LiveSocket

from ._support import query_url
from .conftest import Served, Start

TOKEN = "live-token"


def registry() -> Registry:
    counter = actor("counter", state={"count": 0}, queues={"jobs": Queue()})

    @counter.action
    def add(c: Any, amount: int) -> int:
        c.state["count"] += amount
        c.broadcast("count", c.state["count"])
        return int(c.state["count"])

    return Registry([counter])


def live_url(served: Served) -> str:
    return served.ws_url + query_url("counter", "/inspector/live", key="k", method="get")


async def open_live(served: Served, token: str = TOKEN) -> ClientConnection:
    return await connect(
        live_url(served),
        subprotocols=[Subprotocol("pyrivet-inspector"), Subprotocol(f"bearer.{token}")],
    )


#: Every frame each socket received so far (frames of one flush come in any order).
_seen: dict[int, list[Any]] = {}


async def frames_until(ws: ClientConnection, kind: str, pred: Any = lambda f: True) -> Any:
    """The first frame of ``kind`` matching ``pred`` this socket received, waiting for it."""
    seen = _seen.setdefault(id(ws), [])
    for index, frame in enumerate(seen):
        if frame["type"] == kind and pred(frame):
            del seen[index]
            return frame
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == kind and pred(frame):
                return frame
            seen.append(frame)


async def add(served: Served, amount: int) -> int:
    response = await served.http.post(
        query_url("counter", "/action/add", key="k"), json={"args": [amount]}
    )
    return int(response.json()["output"])


@pytest.fixture
async def served(start_server: Start) -> Served:
    return await start_server(registry(), inspector_token=TOKEN)


async def test_frames_follow_commits_connections_and_events(served: Served) -> None:
    await add(served, 1)
    runtime = served.runtime
    assert runtime is not None
    ws = await open_live(served)
    assert ws.subprotocol == "pyrivet-inspector"
    init = await frames_until(ws, "init")
    assert init["state"] == {"count": 1} and init["rpcs"] == ["add"]
    actor_id = init["actorId"]
    inst = runtime.awake_instance(actor_id)
    assert inst is not None and inst.watcher is not None

    await add(served, 41)
    state = await frames_until(ws, "state", lambda f: f["state"] == {"count": 42})
    assert state["seq"] >= 3
    history = await frames_until(ws, "history")
    assert history["entries"][-1]["name"] == "add" and history["entries"][-1]["args"] == [41]
    assert history["entries"][-1]["stateChanged"] and "state" not in history["entries"][-1]
    assert (await frames_until(ws, "queue"))["size"] == 0

    async with Client(runtime) as client:
        conn = client.get("counter", ["k"]).connect()
        async with conn:
            conn.on("count", lambda *_: None)
            frame = await frames_until(ws, "connections", lambda f: len(f["connections"]) == 1)
            assert frame["connections"][0]["details"]["params"] is None
            await add(served, 1)
            events = await frames_until(
                ws, "events", lambda f: {"name": "count", "args": [43], "to": None} in f["events"]
            )
            assert not events.get("gap")
        await frames_until(ws, "connections", lambda f: f["connections"] == [])

    # A second socket shares the hub; the last one to leave detaches it.
    other = await open_live(served)
    await frames_until(other, "init")
    await ws.close()
    await add(served, 1)
    assert (await frames_until(other, "state"))["state"] == {"count": 44}
    await other.close()
    # The server's handler ends just after the close handshake: nothing to await on.
    async with asyncio.timeout(10):
        while len(served.app._running().inspector_hubs):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert inst.watcher is None


async def test_a_sleeping_actor_is_watched_across_its_wake(served: Served) -> None:
    await add(served, 1)
    runtime = served.runtime
    assert runtime is not None
    ws = await open_live(served)
    actor_id = (await frames_until(ws, "init"))["actorId"]
    await runtime.sleep(actor_id)
    assert not runtime.is_awake(actor_id)
    await add(served, 5)  # wakes it: the new instance gets the hub
    assert (await frames_until(ws, "state", lambda f: f["state"]["count"] == 6))["seq"] > 0
    await ws.close()


async def test_wrong_or_missing_token_is_refused(served: Served) -> None:
    await add(served, 1)
    with pytest.raises(InvalidStatus):
        await open_live(served, token="wrong")
    with pytest.raises(InvalidStatus):
        await connect(live_url(served))
    # The Authorization header works for clients that can send it.
    ws = await connect(live_url(served), additional_headers={"authorization": f"Bearer {TOKEN}"})
    assert (await frames_until(ws, "init"))["state"] == {"count": 1}
    await ws.close()


async def test_a_stuck_reader_keeps_bounded_coalesced_frames() -> None:
    stuck: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)
        await stuck  # the client never reads: the first send never returns

    sock = LiveSocket(send)
    writer = asyncio.ensure_future(sock.write())
    sock.offer([{"type": "state", "seq": 0, "state": 0}])
    await asyncio.sleep(0)
    for n in range(1, 2001):
        sock.offer(
            [
                {"type": "state", "seq": n, "state": n},
                {"type": "history", "entries": [{"seq": n}]},
            ]
        )
    frames = sock._take()
    assert len(sent) == 1
    by_type = {f["type"]: f for f in frames}
    assert by_type["state"]["state"] == 2000  # only the latest value is kept
    assert len(by_type["history"]["entries"]) == MAX_BUFFERED and by_type["history"]["gap"]
    writer.cancel()


async def test_a_dead_socket_stops_its_writer() -> None:
    async def send(message: Any) -> None:
        raise OSError("gone")

    sock = LiveSocket(send)
    sock.offer([{"type": "state", "seq": 1, "state": 1}])
    await asyncio.wait_for(sock.write(), 5)
    assert sock.dead


async def push_of(ws: ClientConnection, amount: int) -> list[str]:
    """The frame types up to and including the history frame of ``add(amount)``."""
    types = []
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await ws.recv())
            types.append(frame["type"])
            if frame["type"] == "history" and frame["entries"][-1]["args"] == [amount]:
                return types


async def test_queue_frames_come_when_the_size_changes(served: Served) -> None:
    await add(served, 1)
    ws = await open_live(served)
    await add(served, 2)
    assert "queue" in await push_of(ws, 2)  # the first push says the size
    await add(served, 3)
    assert "queue" not in await push_of(ws, 3)  # unchanged: not sent again
    injected = await served.http.post(
        query_url("counter", "/inspector/queue", key="k"),
        json={"name": "jobs", "body": 1},
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    assert injected.status_code == 200
    assert (await frames_until(ws, "queue"))["size"] == 1
    await ws.close()


async def test_the_frames_of_a_push_leave_in_one_write() -> None:
    sent: list[Any] = []
    done = asyncio.Event()

    async def send(message: Any) -> None:
        sent.append(message)
        if len(sent) == 3:
            done.set()

    sock = LiveSocket(send)
    writer = asyncio.ensure_future(sock.write())
    sock.offer(
        [
            {"type": "state", "seq": 1, "state": {"n": 1}},
            {"type": "queue", "size": 0},
            {"type": "history", "entries": [{"seq": 1}]},
        ]
    )
    await asyncio.wait_for(done.wait(), 5)
    # Every frame but the last is held back and written with the next one.
    assert [m.get(MORE_KEY, False) for m in sent] == [True, True, False]
    assert [json.loads(m["text"])["type"] for m in sent] == ["state", "queue", "history"]
    writer.cancel()
