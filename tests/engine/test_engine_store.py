"""`EngineStore` end to end: actors' data in the real engine's KV, read back by a new envoy.

Each test writes through the engine's gateway to an envoy whose runtime stores in the
engine, stops that envoy (its actors go to sleep with their state committed), starts a
second envoy with a runtime and store of its own (nothing kept locally) and checks
that the woken actor finds everything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pyrivet import Client, Registry, actor
from pyrivet.engine._envoy import EnvoyConfig
from pyrivet.engine._host import EnvoyHost
from pyrivet.engine._store import EngineStore
from pyrivet.errors import CommitError, DatabaseError
from pyrivet.server import create_app

from .conftest import Engine

pytestmark = pytest.mark.slow
WAIT = 30.0


def make_registry() -> Registry:
    box = actor("box", state={"n": 0}, queues=["jobs"])

    @box.action
    async def write(c: Any, n: int) -> int:
        c.state["n"] = n
        await c.kv.put("k", {"n": n})
        await c.kv.put("gone", 1)
        return n

    @box.action
    async def forget(c: Any) -> None:
        await c.kv.delete("gone")

    @box.action
    async def big(c: Any, size: int) -> int:
        c.state["blob"] = "x" * size
        return size

    @box.action
    async def read(c: Any) -> dict[str, Any]:
        return {
            "n": c.state["n"],
            "k": await c.kv.get("k"),
            "gone": await c.kv.get("gone"),
            "blob": len(c.state.get("blob", "")),
            "keys": sorted(k for k, _ in await c.kv.list("")),
        }

    @box.action
    async def drain(c: Any) -> list[Any]:
        messages = await c.queue.next_batch("jobs", count=10, timeout=0.5)
        return [m.body for m in messages]

    @box.action
    async def bad_key(c: Any) -> None:
        await c.kv.put("x" * 2047, 1)

    return Registry([box])


@contextlib.asynccontextmanager
async def envoy(
    engine: Engine, namespace: str, pool: str, **store_options: Any
) -> AsyncIterator[EnvoyHost]:
    """One envoy hosting `make_registry` on a fresh `EngineStore`."""
    store = EngineStore(**store_options)
    async with make_registry().runtime(storage=store) as runtime:
        config = EnvoyConfig(engine.endpoint, namespace=namespace, pool=pool, token=engine.token)
        async with EnvoyHost(runtime, create_app(runtime), config) as host:
            await asyncio.wait_for(host.envoy.wait_ready(), WAIT)
            yield host


def client(engine: Engine, namespace: str, pool: str) -> Client:
    return Client(engine.endpoint, namespace=namespace, pool_name=pool, token=engine.token)


async def test_data_written_on_one_envoy_is_read_back_on_the_next(
    engine: Engine, namespace: str, pool: str
) -> None:
    async with envoy(engine, namespace, pool) as first:
        async with client(engine, namespace, pool) as c:
            box = c.get_or_create("box", ["one"])
            assert await asyncio.wait_for(box.write(7), WAIT) == 7
            assert await asyncio.wait_for(box.write(8), WAIT) == 8
            await asyncio.wait_for(box.forget(), WAIT)
            assert await asyncio.wait_for(box.big(300_000), WAIT) == 300_000
            await asyncio.wait_for(box.send("jobs", {"job": 1}), WAIT)
            await asyncio.wait_for(box.send("jobs", {"job": 2}), WAIT)
            actor_id = await asyncio.wait_for(box.resolve(), WAIT)
        history = await first.runtime.history(actor_id)
        assert first.store is not None
        assert (await first.store.get_actor(actor_id)) is not None
    assert history, "the first envoy wrote history"

    async with envoy(engine, namespace, pool) as second:
        async with client(engine, namespace, pool) as c:
            box = c.get_or_create("box", ["one"])
            read = await asyncio.wait_for(box.read(), WAIT)
            assert read == {"n": 8, "k": {"n": 8}, "gone": None, "blob": 300_000, "keys": ["k"]}
            assert await asyncio.wait_for(box.drain(), WAIT) == [{"job": 1}, {"job": 2}]
            assert await asyncio.wait_for(box.resolve(), WAIT) == actor_id
        again = await second.runtime.history(actor_id)
        # The history of the first envoy is there, followed by this envoy's commits.
        assert [e.seq for e in again[: len(history)]] == [e.seq for e in history]
        assert [e.name for e in again[: len(history)]] == [e.name for e in history]
        assert again[-1].seq > history[-1].seq
        record = await second.store.get_actor(actor_id) if second.store else None
        assert record is not None and record.key == ("one",) and record.initialized


async def test_a_key_the_engine_refuses_fails_the_action_and_nothing_is_half_saved(
    engine: Engine, namespace: str, pool: str
) -> None:
    async with envoy(engine, namespace, pool) as host:
        async with client(engine, namespace, pool) as c:
            box = c.get_or_create("box", ["bad"])
            await asyncio.wait_for(box.write(1), WAIT)
            with pytest.raises(Exception) as caught:
                await asyncio.wait_for(box.bad_key(), WAIT)
            assert "too long for the Rivet Engine" in str(caught.value) or isinstance(
                caught.value, CommitError
            )
            read = await asyncio.wait_for(box.read(), WAIT)
            assert read["n"] == 1 and read["keys"] == ["gone", "k"]
        assert host.store is not None


async def test_an_engine_kv_error_reply_fails_the_commit_with_its_message(
    engine: Engine, namespace: str, pool: str
) -> None:
    async with envoy(engine, namespace, pool) as host:
        async with client(engine, namespace, pool) as c:
            box = c.get_or_create("box", ["refused"])
            await asyncio.wait_for(box.write(3), WAIT)
            actor_id = await asyncio.wait_for(box.resolve(), WAIT)
        store = host.store
        assert store is not None
        # A value the engine refuses (an empty value is invalid in its KV) goes in the
        # same batch as a valid record: the engine's error reply fails the commit.
        from pyrivet.storage import CommitRecord

        with pytest.raises(Exception) as caught:
            await store._kv.put(actor_id, [(b"\x02raw", b"")])  # type: ignore[union-attr]
        assert "value cannot be empty" in str(caught.value)
        state = await store.load_state(actor_id)
        with pytest.raises(Exception) as failed:
            await store.commit(
                [CommitRecord(actor_id, state.seq + 1, kv_puts=[(b"x" * 2046, b"v")])]
            )
        assert "too long" in str(failed.value)
        assert (await store.load_state(actor_id)).seq == state.seq


async def test_c_db_fails_clearly_without_local_actor_db(
    engine: Engine, namespace: str, pool: str, tmp_path: Path
) -> None:
    store = EngineStore()
    with pytest.raises(DatabaseError) as caught:
        store.actor_databases()
    assert "--local-actor-db" in str(caught.value)
    local = EngineStore(local_db_dir=tmp_path / "db")
    assert local.actor_databases() is local.actor_databases()
