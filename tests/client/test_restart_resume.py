"""Hibernated connections across an in-place restart of ``pyrivet serve`` (SIGHUP).

The Python client resumes its connection on the new process: same connection id,
``conn.state`` and subscriptions as saved with the actor, ``on_connect`` not run again,
and the events it missed while no server ran come back.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from pyrivet.client import Backoff, Client
from serve_process import ServeProcess

from .waiting import until

pytestmark = pytest.mark.slow

APP = """
from pyrivet import Registry, actor

room = actor(
    "room",
    state={"connects": 0, "disconnects": 0},
    create_conn_state=lambda c, params: {"sent": 0},
)

@room.on_connect
def on_connect(c, conn):
    c.state["connects"] += 1

@room.on_disconnect
def on_disconnect(c, conn):
    c.state["disconnects"] += 1

@room.action
def say(c, text):
    c.conn.state["sent"] += 1
    c.broadcast("said", text)
    return c.conn.state["sent"]

@room.action
def info(c):
    return dict(c.state)

registry = Registry([room])
"""


async def test_a_connection_resumes_with_its_state_after_a_sighup_restart(
    tmp_path: Path,
) -> None:
    (tmp_path / "app.py").write_text(APP)
    args = ["--port", "0", "--data-dir", str(tmp_path / "data"), "--log-level", "warning"]
    server = ServeProcess(tmp_path, args)
    try:
        port = await asyncio.to_thread(server.wait_serving)
        url = f"http://127.0.0.1:{port}"
        backoff = Backoff(initial=0.05, maximum=0.4, jitter=0.0)
        async with Client(url, backoff=backoff) as client, Client(url) as other:
            room = client.get_or_create("room", ["r"])
            heard: list[str] = []
            async with room.connect() as conn:
                conn.on("said", heard.append)
                assert await conn.say("one") == 1
                await until(lambda: heard == ["one"])
                conn_id = conn.connection_id

                server.signal(signal.SIGHUP)
                await asyncio.to_thread(server.wait_line, lambda s: "restarting in place" in s)
                assert await asyncio.to_thread(server.wait_serving) == port
                # Sent by another client before ours is back: it comes back replayed.
                assert await other.get_or_create("room", ["r"]).say("two") == 1
                await until(lambda: heard == ["one", "two"], timeout=15)
                await until(lambda: conn.status == "connected")
                assert conn.connection_id == conn_id  # the same connection
                assert await conn.say("three") == 2  # conn.state survived
                info = await conn.info()
                # One on_connect for it (the other client's HTTP call counts one more).
                assert info["connects"] == 2
        server.signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.wait_exit) == 0
    finally:
        server.close()
