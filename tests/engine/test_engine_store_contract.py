"""The commit-and-read half of the `ActorStore` contract, against `EngineStore` and a
real engine.

The contract suite (tests/contract) cannot run against the engine store as it is: its
directory half (create, get-or-create, list, uniqueness across many made-up ids) is the
engine's in envoy mode, and the engine stalls after a few actor creations. These tests
check the rest of the contract on one actor the engine placed on a module-wide envoy,
its KV emptied (``KvDrop``) before each test: ordering, last write wins, range deletes
before puts, tombstones never seen, history bounds and pruning, queue ids, workflow
records, alarms, values over the engine's value limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from pyrivet import Client, Registry, actor
from pyrivet.engine._envoy import EnvoyConfig
from pyrivet.engine._host import EnvoyHost
from pyrivet.engine._store import EngineStore
from pyrivet.server import create_app
from pyrivet.storage import (
    AlarmRecord,
    CommitRecord,
    HistoryEntry,
    QueueMessageRecord,
    StoredState,
)

from .conftest import Engine

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
WAIT = 30.0
POOL = "py-store-contract"


@pytest.fixture(scope="module")
def engine(module_engine: Engine) -> Engine:
    return module_engine


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hosted(engine: Engine) -> AsyncIterator[tuple[EngineStore, str]]:
    """A module-wide envoy and the id of one actor the engine placed on it."""
    namespace = engine.create_namespace()
    plain = actor("plain", state={"n": 0})

    @plain.action
    def ping(c: Any) -> int:
        return 1

    store = EngineStore()
    async with Registry([plain]).runtime(storage=store) as runtime:
        config = EnvoyConfig(engine.endpoint, namespace=namespace, pool=POOL, token=engine.token)
        async with EnvoyHost(runtime, create_app(runtime), config) as host:
            await asyncio.wait_for(host.envoy.wait_ready(), WAIT)
            async with Client(
                engine.endpoint, namespace=namespace, pool_name=POOL, token=engine.token
            ) as c:
                handle = c.get_or_create("plain", ["contract"])
                await asyncio.wait_for(handle.ping(), WAIT)
                actor_id = await asyncio.wait_for(handle.resolve(), WAIT)
            # The runtime's actor sleeps: from here on only the tests write its KV.
            await runtime.sleep(actor_id)
            yield store, actor_id


@pytest_asyncio.fixture(loop_scope="module")
async def store(hosted: tuple[EngineStore, str]) -> AsyncIterator[tuple[EngineStore, str]]:
    engine_store, actor_id = hosted
    assert engine_store._kv is not None
    await engine_store._kv.drop(actor_id)
    engine_store._forget(actor_id)
    engine_store.adopt(actor_id)
    yield engine_store, actor_id


def event(actor_id: str, seq: int) -> HistoryEntry:
    return HistoryEntry(actor_id=actor_id, seq=seq, at_ms=100 + seq, kind="action", name="a")


async def test_kv_order_prefix_range_reverse_limit_and_tombstones(
    store: tuple[EngineStore, str],
) -> None:
    s, a = store
    keys = [b"a", b"a\x00", b"a\x01", b"ab", b"b", b"b\xff", b"c"]
    await s.commit([CommitRecord(a, 1, kv_puts=[(k, b"v" + k) for k in reversed(keys)])])
    # Deleted in the next commit: tombstones until the commit after that.
    await s.commit([CommitRecord(a, 2, kv_deletes=[b"a\x01", b"b"])])
    live = [k for k in keys if k not in (b"a\x01", b"b")]
    assert [k for k, _ in await s.kv_list(a, b"")] == live
    assert [k for k, _ in await s.kv_list(a, b"a")] == [b"a", b"a\x00", b"ab"]
    assert await s.kv_list(a, b"a", limit=2) == [(b"a", b"va"), (b"a\x00", b"va\x00")]
    assert [k for k, _ in await s.kv_list_range(a, b"a\x00", b"b\xff")] == [b"a\x00", b"ab"]
    assert [k for k, _ in await s.kv_list_range(a, b"a", None, reverse=True, limit=3)] == [
        b"c",
        b"b\xff",
        b"ab",
    ]
    assert await s.kv_get_batch(a, [b"c", b"b", b"zz", b"a"]) == [b"vc", None, None, b"va"]
    # The next commit deletes the tombstones; reads are unchanged.
    await s.commit([CommitRecord(a, 3, kv_puts=[(b"d", b"vd")])])
    assert [k for k, _ in await s.kv_list(a, b"")] == [*live, b"d"]
    assert s._kv is not None
    raw = await s._kv.list(a, prefix=b"\x02")
    assert len(raw) == len(live) + 1, "the tombstones were deleted"


async def test_last_write_wins_and_ranges_apply_before_puts(store: tuple[EngineStore, str]) -> None:
    s, a = store
    await s.commit([CommitRecord(a, 1, kv_puts=[(b"k1", b"1"), (b"k2", b"2"), (b"x", b"x")])])
    await s.commit(
        [
            CommitRecord(a, 2, kv_puts=[(b"k1", b"first")], kv_deletes=[b"x"]),
            CommitRecord(
                a,
                3,
                kv_delete_ranges=((b"k", b"l"),),
                kv_puts=[(b"k2", b"again"), (b"x", b"back")],
            ),
        ]
    )
    assert await s.kv_list(a, b"") == [(b"k2", b"again"), (b"x", b"back")]
    assert (await s.load_state(a)).seq == 3


async def test_history_bounds_and_pruning(store: tuple[EngineStore, str]) -> None:
    s, a = store
    for seq in range(1, 8):
        await s.commit([CommitRecord(a, seq, state=b"\x80", event=event(a, seq))])
    assert [e.seq for e in await s.read_history(a)] == list(range(1, 8))
    assert [e.seq for e in await s.read_history(a, after_seq=3, limit=2)] == [4, 5]
    await s.commit([CommitRecord(a, 8, event=event(a, 8), prune_history_before=6)])
    assert [e.seq for e in await s.read_history(a)] == [6, 7, 8]
    # A fresh store (another envoy) sees the same floor.
    again = EngineStore()
    await again.open()
    assert s._envoy is not None
    again.bind(s._envoy)
    again.adopt(a)
    assert [e.seq for e in await again.read_history(a, after_seq=0)] == [6, 7, 8]
    assert await again.load_state(a) == StoredState(8, b"\x80", False)


async def test_queue_ids_and_workflow_records(store: tuple[EngineStore, str]) -> None:
    s, a = store

    def message(i: int) -> QueueMessageRecord:
        return QueueMessageRecord(i, "jobs", b"\x01", 5)

    await s.commit([CommitRecord(a, 1, queue_puts=(message(1), message(2), message(3)))])
    await s.commit([CommitRecord(a, 2, queue_deletes=(1, 3))])
    queue = await s.load_queue(a)
    assert (queue.last_id, [m.id for m in queue.messages]) == (3, [2])
    await s.commit([CommitRecord(a, 3, queue_puts=(message(4),), queue_deletes=(2, 4))])
    assert (await s.load_queue(a)).last_id == 4
    assert (await s.load_queue(a)).messages == []

    await s.commit([CommitRecord(a, 4, workflow_puts=(("w1", b"1"), ("w2", b"2")))])
    await s.commit(
        [CommitRecord(a, 5, workflow_deletes=("w1", "w2"), workflow_puts=(("w2", b"new"),))]
    )
    assert await s.load_workflow(a) == {"w2": b"new"}


async def test_alarms_in_fire_order_and_deleted(store: tuple[EngineStore, str]) -> None:
    s, a = store

    def alarm(alarm_id: str, fire_at: int) -> AlarmRecord:
        return AlarmRecord(a, alarm_id, fire_at, "once", "tick", b"\x90", 1)

    await s.commit([CommitRecord(a, 1, alarm_puts=[alarm("b", 20), alarm("a", 20), alarm("c", 5)])])
    await s.commit([CommitRecord(a, 2, alarm_deletes=["b"])])
    assert [x.alarm_id for x in await s.list_alarms(a)] == ["c", "a"]
    assert [x.alarm_id for x in await s.list_alarms()] == ["c", "a"]


async def test_values_over_the_engine_limit_are_split_and_replaced(
    store: tuple[EngineStore, str],
) -> None:
    s, a = store
    big = bytes(range(256)) * 1200  # 300 KiB
    await s.commit([CommitRecord(a, 1, state=big, kv_puts=[(b"big", big)])])
    assert (await s.load_state(a)).snapshot == big
    assert await s.kv_get(a, b"big") == big
    assert await s.kv_list(a, b"b") == [(b"big", big)]
    await s.commit([CommitRecord(a, 2, state=b"small", kv_puts=[(b"big", b"small")])])
    assert (await s.load_state(a)).snapshot == b"small"
    assert await s.kv_get(a, b"big") == b"small"
