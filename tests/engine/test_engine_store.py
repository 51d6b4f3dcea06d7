"""`EngineStore` end to end: actors' data in the real engine's KV, read back by a new envoy.

Each test writes through the engine's gateway to an envoy whose runtime stores in the
engine, stops that envoy (its actors go to sleep with their state committed), starts a
second envoy with a runtime and store of its own (nothing kept locally) and checks
that the woken actor finds everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pyrivet import Client, Registry, actor
from pyrivet._codec.values import encode
from pyrivet.engine import _store_layout as layout
from pyrivet.engine._envoy import EnvoyConfig
from pyrivet.engine._host import EnvoyHost
from pyrivet.engine._store import EngineStore
from pyrivet.engine._store_plan import Plan
from pyrivet.errors import CommitError, DatabaseError, StorageError
from pyrivet.server import create_app
from pyrivet.storage import CommitRecord
from serve_process import ServeProcess

from .conftest import Engine

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
WAIT = 60.0


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
    async def fill(c: Any, count: int) -> None:
        await c.kv.put_batch([(f"f/{i:04}", i) for i in range(count)])

    @box.action
    async def clear_and_put(c: Any) -> None:
        await c.kv.delete_range("f/", "f0")
        await c.kv.put("f/0001", "again")

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


async def test_an_engine_kv_error_reply_fails_the_callers_commit_and_keeps_the_old_state(
    engine: Engine, namespace: str, pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Our own check refuses long keys before sending; turned off, the engine itself
    # answers the put with a KvErrorResponse ("key is too long").
    monkeypatch.setattr(layout, "check_key", lambda key: None)
    async with envoy(engine, namespace, pool), client(engine, namespace, pool) as c:
        box = c.get_or_create("box", ["refused"])
        await asyncio.wait_for(box.write(3), WAIT)
        with pytest.raises(CommitError) as caught:
            await asyncio.wait_for(box.bad_key(), WAIT)
        assert "the engine refused a KvPutRequest" in str(caught.value)
        read = await asyncio.wait_for(box.read(), WAIT)
        assert (read["n"], read["keys"]) == (3, ["gone", "k"])
        assert await asyncio.wait_for(box.write(4), WAIT) == 4


async def test_a_batch_with_a_refused_actor_fails_and_the_others_land(
    engine: Engine, namespace: str, pool: str
) -> None:
    async with envoy(engine, namespace, pool) as host:
        async with client(engine, namespace, pool) as c:
            box = c.get_or_create("box", ["batch"])
            await asyncio.wait_for(box.write(5), WAIT)
            actor_id = await asyncio.wait_for(box.resolve(), WAIT)
        store = host.store
        assert store is not None
        state = await store.load_state(actor_id)
        store.adopt("not-an-engine-id")
        batch = [
            CommitRecord(actor_id, state.seq + 1, kv_puts=[(b"extra", b"\x01")]),
            CommitRecord("not-an-engine-id", 1, state=b"\x80"),
        ]
        with pytest.raises(StorageError) as caught:
            await store.commit(batch)
        assert "not-an-engine-id" in str(caught.value)
        assert (await store.load_state(actor_id)).seq == state.seq + 1
        assert await store.kv_get(actor_id, b"extra") == b"\x01"
        # An actor the engine did not start here is refused before anything is sent.
        with pytest.raises(StorageError) as refused:
            await store.commit([CommitRecord("elsewhere", 1, state=b"\x80")])
        assert "not hosted by this envoy" in str(refused.value)


async def test_range_deletes_and_oversize_commits_go_through_an_intent(
    engine: Engine, namespace: str, pool: str
) -> None:
    async with envoy(engine, namespace, pool), client(engine, namespace, pool) as c:
        box = c.get_or_create("box", ["big"])
        await asyncio.wait_for(box.write(1), WAIT)
        # 128 KV keys + seq + history entry: more entries than one engine put takes.
        await asyncio.wait_for(box.fill(128), WAIT)
        keys = (await asyncio.wait_for(box.read(), WAIT))["keys"]
        assert len(keys) == 130 and keys[0] == "f/0000"
        await asyncio.wait_for(box.clear_and_put(), WAIT)
        read = await asyncio.wait_for(box.read(), WAIT)
        assert read["keys"] == ["f/0001", "gone", "k"]
    async with envoy(engine, namespace, pool) as second:
        async with client(engine, namespace, pool) as c:
            box = c.get_or_create("box", ["big"])
            read = await asyncio.wait_for(box.read(), WAIT)
            assert read["keys"] == ["f/0001", "gone", "k"] and read["n"] == 1
            actor_id = await asyncio.wait_for(box.resolve(), WAIT)
        assert second.store is not None
        # No intent is left behind once applied.
        kv = second.store._kv
        assert kv is not None
        assert await kv.list(actor_id, prefix=layout.INTENT) == []
        assert await kv.list(actor_id, prefix=layout.PART + layout.INTENT) == []


async def test_an_intent_left_by_a_crash_is_replayed_by_the_next_reader(
    engine: Engine, namespace: str, pool: str
) -> None:
    async with envoy(engine, namespace, pool) as first:
        async with client(engine, namespace, pool) as c:
            box = c.get_or_create("box", ["crash"])
            await asyncio.wait_for(box.write(2), WAIT)
            actor_id = await asyncio.wait_for(box.resolve(), WAIT)
        store, kv = first.store, first.store._kv if first.store else None
        assert store is not None and kv is not None
        seq = (await store.load_state(actor_id)).seq
        # Write what a commit writes before applying an intent, then "crash": the
        # intent (a range delete of the user KV, a new state and key) is never applied.
        plan = Plan(actor_id, await store.get_actor(actor_id))
        plan.add(
            CommitRecord(
                actor_id,
                seq + 1,
                state=encode({"n": 9}),
                kv_delete_ranges=((b"", b"\xff"),),
                kv_puts=[(b"after", b"\x01")],
            )
        )
        plan.finish()
        intent = plan.intent()
        entries = layout.encode_value(
            layout.INTENT + layout.int8(intent.seq), layout.encode_record(intent)
        )
        await kv.put(actor_id, entries)
        assert await kv.list(actor_id, prefix=layout.INTENT) != []
    async with envoy(engine, namespace, pool) as second:
        async with client(engine, namespace, pool) as c:
            box = c.get_or_create("box", ["crash"])
            read = await asyncio.wait_for(box.read(), WAIT)
        # The state from the intent, the KV emptied but for the key it put.
        assert read["n"] == 9 and read["keys"] == ["after"]
        assert second.store is not None and second.store._kv is not None
        assert await second.store._kv.list(actor_id, prefix=layout.INTENT) == []


BOX_APP = """
from pyrivet import Registry, actor

box = actor("box", state={"n": 0}, queues=["jobs"])

@box.action
async def write(c, n):
    c.state["n"] = n
    await c.kv.put("k", n)
    return n

@box.action
async def read(c):
    messages = await c.queue.next_batch("jobs", count=10, timeout=0.5)
    return [c.state["n"], await c.kv.get("k"), [m.body for m in messages]]

registry = Registry([box])
"""


def test_envoy_process_restarted_with_an_empty_data_dir_keeps_everything(
    engine: Engine, pool: str, namespace: str, tmp_path: Path
) -> None:
    (tmp_path / "app.py").write_text(BOX_APP)
    env = {
        "RIVET_ENDPOINT": engine.endpoint,
        "RIVET_TOKEN": engine.token,
        "RIVET_POOL": pool,
        "RIVET_NAMESPACE": namespace,
    }

    async def first() -> None:
        async with client(engine, namespace, pool) as c:
            box = c.get_or_create("box", ["cli"])
            await asyncio.wait_for(box.action("write", 5), WAIT)
            await asyncio.wait_for(box.send("jobs", "job-1"), WAIT)

    async def second() -> Any:
        async with client(engine, namespace, pool) as c:
            return await asyncio.wait_for(c.get_or_create("box", ["cli"]).action("read"), WAIT)

    results = []
    for data_dir, step in (("first", first), ("second", second)):
        served = ServeProcess(tmp_path, ["--data-dir", str(tmp_path / data_dir)], env=env)
        try:
            line = served.wait_line(lambda s: "pyrivet: hosting" in s, timeout=WAIT)
            assert "data in the engine's KV" in line
            results.append(asyncio.run(step()))
            served.signal(signal.SIGTERM)
            assert served.wait_exit() == 0
        finally:
            served.close()
    assert results[1] == [5, 5, ["job-1"]]
    # Nothing of the actors' data was kept on disk.
    assert not list((tmp_path / "second").glob("**/*.sqlite3"))


async def test_c_db_fails_clearly_without_local_actor_db(
    engine: Engine, namespace: str, pool: str, tmp_path: Path
) -> None:
    store = EngineStore()
    with pytest.raises(DatabaseError) as caught:
        store.actor_databases()
    assert "--local-actor-db" in str(caught.value)
    local = EngineStore(local_db_dir=tmp_path / "db")
    assert local.actor_databases() is local.actor_databases()


def db_registry() -> Registry:
    scratch = actor("scratch", state={}, db=True)

    @scratch.action
    async def use(c: Any) -> Any:
        await c.db.execute("CREATE TABLE IF NOT EXISTS t (x)")
        await c.db.execute("INSERT INTO t VALUES (1)")
        return await c.db.execute("SELECT count(*) AS n FROM t")

    return Registry([scratch])


async def test_c_db_in_envoy_mode_is_local_only_when_asked(
    engine: Engine, namespace: str, pool: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def host(store: EngineStore, key: str, failed: asyncio.Event | None = None) -> Any:
        async with db_registry().runtime(storage=store) as runtime:
            config = EnvoyConfig(
                engine.endpoint, namespace=namespace, pool=pool, token=engine.token
            )
            async with EnvoyHost(runtime, create_app(runtime), config) as served:
                await asyncio.wait_for(served.envoy.wait_ready(), WAIT)
                async with client(engine, namespace, pool) as c:
                    call = asyncio.ensure_future(c.get_or_create("scratch", [key]).use())
                    if failed is None:
                        return await asyncio.wait_for(call, WAIT)
                    # The start fails on the envoy; the gateway keeps the caller
                    # waiting, so stop at the envoy's report.
                    await asyncio.wait_for(failed.wait(), WAIT)
                    call.cancel()
                    return None

    # With the files on the envoy's disk (said in a warning), c.db works.
    assert await host(EngineStore(local_db_dir=tmp_path / "db"), "local") == [{"n": 1}]
    assert "not in the Rivet Engine" in caplog.text
    assert list((tmp_path / "db").glob("*.sqlite3"))
    # Without, the actor does not start, and the error says why and what to do.
    failed = asyncio.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and "--local-actor-db" in str(record.exc_info[1]):
                failed.set()

    watch = Watch()
    logging.getLogger("pyrivet.engine").addHandler(watch)
    try:
        await host(EngineStore(), "engine", failed)
    finally:
        logging.getLogger("pyrivet.engine").removeHandler(watch)
    assert failed.is_set()
