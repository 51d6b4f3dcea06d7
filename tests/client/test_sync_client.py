"""`SyncClient`: the blocking wrapper, driven from a plain thread against the real server.

The server runs on the test's event loop, so the blocking calls run in a worker thread
(as a script would), never on that loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from pyrivet.client import SyncClient
from pyrivet.errors import ActorNotFoundError, DuplicateKeyError, UserError

from .server_support import ServerHandle, increment


def scenario(url: str, encoding: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with SyncClient(url, encoding=encoding) as client:
        room = client.get_or_create("counter", ["sync"])
        out["by_name"] = room.increment(2)
        out["typed"] = room.call(increment, 3)
        try:
            room.increment(-1)
        except UserError as exc:
            out["error"] = (exc.code, exc.metadata)
        try:
            client.get("counter", ["missing"]).get()
        except ActorNotFoundError:
            out["missing"] = True
        created = client.create("counter", ["sync-created"], input="hello")
        out["input"] = created.get_input()
        try:
            client.create("counter", ["sync-created"])
        except DuplicateKeyError:
            out["duplicate"] = True
        out["by_id"] = client.get_for_id("counter", room.resolve()).get()
        page = client.list_actors("counter", limit=1)
        out["listed"] = (page.actors[0].actor_id == room.resolve(), page.cursor is not None)

        heard: list[int] = []
        got_event = threading.Event()

        def on_count(value: int) -> None:
            heard.append(value)
            got_event.set()

        with room.connect() as conn:
            off = conn.on("count", on_count)
            out["conn_action"] = conn.increment(1)
            got_event.wait(10)
            off()
            out["heard"] = list(heard)
            out["conn_typed"] = conn.call(increment, 1)
            out["actor_id"] = conn.actor_id == room.resolve()
            out["status"] = conn.status
            remove_gap_callback = conn.on_gap(print)
            remove_gap_callback()
            cursor = conn.event_cursor
            out["cursor"] = cursor is not None and cursor[1] >= 1
            events = conn.events("count")  # subscribes at once
            conn.increment(1)
            out["iterated"] = next(events)
            events.close()
        web = client.get_or_create("web", ["sync"])
        out["fetch"] = web.fetch("/p?q=1").json()["query"]
        with web.websocket("/room") as ws:
            frames = [ws.recv(timeout=10)]
            ws.send("hi")
            ws.send(b"abc")
            frames += [ws.recv(timeout=10), ws.recv(timeout=10)]
            ws.send("close-me")
            frames += list(ws)  # ends when the actor closes the socket
            out["raw_ws"] = (frames, ws.close_code, ws.close_reason)
    return out


@pytest.mark.parametrize("encoding", ["json", "cbor", "bare"])
async def test_sync_client(server: ServerHandle, encoding: str) -> None:
    out = await asyncio.to_thread(scenario, server.url, encoding)
    assert out == {
        "by_name": 2,
        "typed": 5,
        "error": ("negative_amount", {"amount": -1}),
        "missing": True,
        "input": "hello",
        "duplicate": True,
        "by_id": 5,
        "listed": (True, True),
        "conn_action": 6,
        "heard": [6],
        "conn_typed": 7,
        "actor_id": True,
        "status": "connected",
        "cursor": True,
        "iterated": ("count", [8]),
        "fetch": "q=1",
        "raw_ws": (["hello /room", "echo hi", b"cba"], 4000, "bye"),
    }


def test_sync_client_refuses_calls_from_its_own_callbacks() -> None:
    client = SyncClient("http://127.0.0.1:9", metadata_lookup=False)
    try:
        result: list[BaseException] = []

        async def inside() -> None:
            try:
                client.get("counter").resolve()
            except RuntimeError as exc:
                result.append(exc)

        client._thread.run(inside())
        assert result and "own event callbacks" in str(result[0])
    finally:
        client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.get("counter").resolve()
