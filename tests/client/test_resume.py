"""Resumable event streams: the Python client gets back the events it missed.

A real server (`ServerHandle`); the connection is dropped by the actor
(``c.conn.disconnect()``) while events keep coming, and the client reconnects by
itself, offering its event cursor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pyrivet import ActorOptions, Registry, actor
from pyrivet.client import Backoff, Client, EventGap

from .server_support import ServerHandle
from .waiting import until


def make_feed() -> Registry:
    feed = actor("feed", state={"n": 0}, options=ActorOptions(event_retention=3))

    @feed.action
    async def kick_then_post(c: Any, count: int) -> None:
        """Drop the caller's connection, then post ``count`` events it does not hear."""
        await c.conn.disconnect()
        for _ in range(count):
            c.state["n"] += 1
            c.broadcast("post", c.state["n"])

    @feed.action
    def post(c: Any) -> int:
        c.state["n"] += 1
        c.broadcast("post", c.state["n"])
        return int(c.state["n"])

    return Registry([feed])


@pytest.fixture
async def feed_server(tmp_path: Path) -> AsyncIterator[ServerHandle]:
    handle = ServerHandle(tmp_path / "data", make_feed())
    await handle.start()
    yield handle
    await handle.stop()


def client_for(server: ServerHandle) -> Client:
    return Client(server.url, backoff=Backoff(initial=0.01, maximum=0.05, jitter=0.0))


async def test_missed_events_are_sent_after_a_reconnect(feed_server: ServerHandle) -> None:
    async with client_for(feed_server) as client:
        handle = client.get_or_create("feed", ["a"])
        heard: list[int] = []
        gaps: list[EventGap] = []
        async with handle.connect() as conn:
            conn.on("post", heard.append)
            conn.on_gap(gaps.append)
            assert await conn.post() == 1
            await until(lambda: heard == [1])
            await conn.kick_then_post(2)  # the socket drops; 2 and 3 are sent meanwhile
            await until(lambda: heard == [1, 2, 3])
            assert await conn.post() == 4
            await until(lambda: heard == [1, 2, 3, 4])
            cursor = conn.event_cursor
            assert cursor is not None and cursor[1] == 4
    assert gaps == []


async def test_a_gap_beyond_retention_is_reported_never_skipped(
    feed_server: ServerHandle,
) -> None:
    async with client_for(feed_server) as client:
        handle = client.get_or_create("feed", ["b"])
        heard: list[int] = []
        gaps: list[EventGap] = []
        async with handle.connect() as conn:
            conn.on("post", heard.append)
            conn.on_gap(gaps.append)
            assert await conn.post() == 1
            await until(lambda: heard == [1])
            await conn.kick_then_post(5)  # 2..6 sent; the actor keeps the last 3
            await until(lambda: bool(gaps) and heard[-1:] == [6])
    assert heard == [1, 4, 5, 6]
    assert len(gaps) == 1
    gap = gaps[0]
    assert (gap.code, gap.after, gap.until) == ("retention", 1, 3)
    assert "event_retention" in gap.reason


async def test_a_gap_without_a_callback_is_logged(
    feed_server: ServerHandle, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(feed_server) as client:
        handle = client.get_or_create("feed", ["c"])
        heard: list[int] = []
        async with handle.connect() as conn:
            conn.on("post", heard.append)
            await conn.post()
            await conn.kick_then_post(5)
            await until(lambda: heard[-1:] == [6])
    assert any("events were missed" in r.getMessage() for r in caplog.records)
