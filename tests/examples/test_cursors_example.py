"""examples/cursors: two network clients in one room that sleeps while they stay connected.

The room is served by the real server (uvicorn, in this process) over a runtime on a
mock clock, so the test decides when the sleep timeout has passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pyrivet import Runtime, UserError
from pyrivet.client import Client
from pyrivet.testing import MockClock

from .conftest import load_example

cursors = load_example("cursors/app.py")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Runtime, MockClock, str]]:
    """The example's room on SQLite in tmp_path and a mock clock, served as the demo does."""
    clock = MockClock()
    async with (
        cursors.registry.runtime(data_dir=tmp_path, clock=clock) as runtime,
        cursors.serving(runtime) as url,
    ):
        yield runtime, clock, url


async def settle(check: Any) -> bool:
    """Poll ``check()`` a bounded number of times (the runtime works in the background)."""
    for _ in range(500):
        if check():
            return True
        await asyncio.sleep(0.01)
    return bool(check())


async def next_cursor(seen: Any) -> Any:
    """The next event of the stream, which must be a ``cursor`` event: its cursor."""
    event, args = await asyncio.wait_for(anext(seen), 10)
    assert event == "cursor", (event, args)
    return args[0]


async def test_moves_reach_the_room_across_a_sleep_with_connections_open(
    served: tuple[Runtime, MockClock, str],
) -> None:
    runtime, clock, url = served
    async with Client(url) as client:
        room = client.get_or_create("cursors", ["r1"])
        async with (
            room.connect(params={"name": "ada"}) as ada,
            room.connect(params={"name": "bob"}) as bob,
            bob.events("cursor", "left") as seen,
        ):
            assert await bob.room() == []  # also: bob's subscription has arrived
            await ada.move(10, 20)
            cursor = await next_cursor(seen)
            assert cursor == {"id": ada.connection_id, "name": "ada", "x": 10, "y": 20}

            # Bad moves are refused and change nothing.
            for x, y in [(-1, 5), (5, cursors.SIZE + 1), (float("nan"), 0)]:
                with pytest.raises(UserError) as bad:
                    await ada.move(x, y)
                assert bad.value.code == "bad_move"
            assert await ada.where() == [10, 20]

            # Nobody moves for the sleep timeout: the room sleeps, both sockets stay open.
            actor_id = await room.resolve()
            await clock.advance(cursors.SLEEP_TIMEOUT + 1)
            assert await settle(lambda: not runtime.is_awake(actor_id))
            assert ada.is_open and bob.is_open

            # Ada's next move wakes it; bob (still subscribed) sees it.
            await ada.move(30, 40)
            assert runtime.is_awake(actor_id)
            cursor = await next_cursor(seen)
            assert cursor == {"id": ada.connection_id, "name": "ada", "x": 30, "y": 40}
            # Connection state survived the sleep: each one's own last position.
            assert await ada.where() == [30, 40]
            assert await bob.where() is None
            assert await bob.room() == [cursor]

            # The room sleeps again; ada leaves while it sleeps. Bob's next message
            # wakes it, on_disconnect runs then, and bob hears that ada left.
            await clock.advance(cursors.SLEEP_TIMEOUT + 1)
            assert await settle(lambda: not runtime.is_awake(actor_id))
            ada_id = ada.connection_id
            await ada.close()
            await bob.move(1, 2)
            events = [await asyncio.wait_for(anext(seen), 10) for _ in range(2)]
            assert ("left", [ada_id]) in events
            assert await bob.room() == [{"id": bob.connection_id, "name": "bob", "x": 1, "y": 2}]


async def test_a_bad_name_is_refused_and_watchers_cannot_move(
    served: tuple[Runtime, MockClock, str],
) -> None:
    _, _, url = served
    async with Client(url) as client:
        room = client.get_or_create("cursors", ["r2"])
        with pytest.raises(UserError) as nameless:
            async with room.connect(params={"name": ""}) as conn:
                await conn.where()
        assert nameless.value.code == "bad_name"
        async with room.connect() as watcher:
            with pytest.raises(UserError) as watching:
                await watcher.move(1, 1)
            assert watching.value.code == "not_joined"
            assert await watcher.where() is None
        with pytest.raises(UserError) as stateless:
            await room.move(1, 1)  # a plain HTTP call has no cursor either
        assert stateless.value.code == "not_joined"
        assert await room.room() == []
