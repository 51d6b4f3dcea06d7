"""Listing actors page by page: ``GET /actors?name&limit&cursor`` and
``Client.list_actors`` over the network and in-process."""

from __future__ import annotations

import asyncio
import time

import pytest

from pyrivet import ActorError, Client
from pyrivet.client import ActorInfo

from .conftest import Served


async def create_rooms(served: Served, count: int) -> list[str]:
    """Create ``count`` rooms, each in a later millisecond than the one before (pages
    are in creation order; actors created in the same millisecond come in id order)."""
    ids = []
    for i in range(count):
        created = time.time_ns() // 1_000_000
        reply = await served.http.post("/actors", json={"name": "counter", "key": f"room/{i}"})
        assert reply.status_code == 200, reply.text
        ids.append(reply.json()["actor"]["actor_id"])
        # The next creation lands in a later millisecond.
        await asyncio.sleep(max(0.0, (created + 2) / 1000 - time.time()))
    return ids


async def test_get_actors_pages_in_creation_order(served: Served) -> None:
    ids = await create_rooms(served, 5)
    other = await served.http.post("/actors", json={"name": "guarded", "key": "g"})
    assert other.status_code == 200
    seen: list[str] = []
    order: list[tuple[int, str]] = []
    cursor = None
    pages = 0
    while True:
        params = {"name": "counter", "limit": "2"}
        if cursor:
            params["cursor"] = cursor
        reply = await served.http.get("/actors", params=params)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        pages += 1
        seen += [a["actor_id"] for a in body["actors"]]
        order += [(a["create_ts"], a["actor_id"]) for a in body["actors"]]
        assert all(a["name"] == "counter" and isinstance(a["awake"], bool) for a in body["actors"])
        cursor = body["pagination"]["cursor"]
        if cursor is None:
            break
    # Creation order; actors created in the same millisecond come in id order.
    assert sorted(seen) == sorted(ids) and order == sorted(order) and pages == 3
    everything = (await served.http.get("/actors")).json()
    assert len(everything["actors"]) == 6 and everything["pagination"]["cursor"] is None


async def test_client_list_actors_over_the_network_and_in_process(served: Served) -> None:
    ids = await create_rooms(served, 3)
    assert served.runtime is not None
    await served.runtime.sleep(ids[0])
    async with Client(served.url) as client:
        first = await client.list_actors("counter", limit=2)
        assert [a.actor_id for a in first.actors] == ids[:2]
        assert first.actors[0] == ActorInfo(
            ids[0], "counter", ("room", "0"), first.actors[0].created_at, False
        )
        assert first.cursor is not None
        rest = await client.list_actors("counter", cursor=first.cursor, limit=2)
        assert [a.actor_id for a in rest.actors] == ids[2:] and rest.cursor is None
        with pytest.raises(ActorError) as info:
            await client.list_actors(cursor="garbage")
        assert info.value.code == "invalid_request"
        with pytest.raises(ValueError, match="limit"):
            await client.list_actors(limit=0)
    local = Client(served.runtime)
    page = await local.list_actors("counter", limit=10)
    assert [a.actor_id for a in page.actors] == ids and page.cursor is None
    assert [a.key for a in page.actors] == [("room", "0"), ("room", "1"), ("room", "2")]
    first_local = await local.list_actors(limit=1)
    assert first_local.cursor is not None
    with pytest.raises(ActorError):
        await local.list_actors(cursor="bad")
