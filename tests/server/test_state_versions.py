"""A stored actor whose state migration fails: a clear error over HTTP, others served."""

from __future__ import annotations

from typing import Any

import pytest

from pyrivet import MemoryDriver, Registry, StateMigrationError, actor
from pyrivet.client import Client
from pyrivet.testing import run_actors

from ._support import query_url
from .conftest import Served, Start


def counter(version: int, migrations: dict[int, Any] | None = None) -> Any:
    state: dict[str, Any] = {"count": 0} if version == 1 else {"count": 0, "label": ""}
    definition = actor("counter", state=state, state_version=version, migrations=migrations)

    @definition.action
    def increment(c: Any) -> Any:
        c.state["count"] += 1
        return c.state

    return definition


def refuse(old: dict[str, Any]) -> dict[str, Any]:
    raise ValueError("not yet")


async def call(served: Served, key: str) -> Any:
    return await served.http.post(
        query_url("counter", "/action/increment", key=key),
        content=b'{"args":[]}',
        headers={"x-rivet-encoding": "json"},
    )


async def test_failed_migration_is_a_clear_http_error_and_the_server_keeps_serving(
    start_server: Start,
) -> None:
    storage = MemoryDriver()
    async with run_actors(Registry([counter(1)]), storage=storage) as (_, client):
        assert await client.get_or_create("counter", ["old"]).increment() == {"count": 1}

    served = await start_server(Registry([counter(2, {1: refuse})]), storage=storage)
    response = await call(served, "old")
    assert response.status_code == 500
    body = response.json()
    assert (body["group"], body["code"]) == ("actor", "state_migration_failed")
    assert "migration 1->2 (migrations[1], refuse) raised ValueError" in body["message"]
    assert body["metadata"]["step"] == "1->2"
    assert "not yet" not in body["message"]  # the exception's text stays in the server log
    # A new actor of the same type is served, and the failed one still fails the same way.
    fresh = await call(served, "new")
    assert fresh.status_code == 200
    assert fresh.json()["output"] == {"count": 1, "label": ""}
    again = await call(served, "old")
    assert again.json()["code"] == "state_migration_failed"
    # The network client raises the error's own class.
    async with Client(served.url) as network:
        with pytest.raises(StateMigrationError, match="refuse"):
            await network.get_or_create("counter", ["old"]).increment()
