"""``c.kv``: the per-actor key/value space, committed with the state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from pyrivet import ActorOptions, Registry, actor
from pyrivet._codec.values import decode
from pyrivet.errors import KVError
from pyrivet.storage import ActorStore, CommitRecord
from pyrivet.testing import MockClock, run_actors

DriverFactory = Callable[[], ActorStore]


class GatedStore:
    """Wraps a driver: while ``hold`` is set, commits wait for ``release`` before writing."""

    def __init__(self, inner: ActorStore) -> None:
        self.inner = inner
        self.hold = False
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def commit(self, batch: Sequence[CommitRecord]) -> None:
        if self.hold:
            self.entered.set()
            await self.release.wait()
        await self.inner.commit(batch)


def kv_def(**options: Any) -> Any:
    store = actor("store", state={"writes": 0}, options=ActorOptions(**options))

    @store.action
    async def put(c: Any, key: Any, value: Any) -> None:
        await c.kv.put(key, value)

    @store.action
    async def put_many(c: Any, items: list[Any]) -> None:
        for key, value in items:
            await c.kv.put(key, value)

    @store.action
    async def put_sized(c: Any, key: Any, size: int) -> None:
        await c.kv.put(key, "v" * size)

    @store.action
    async def put_counted(c: Any, key: Any, value: Any) -> None:
        c.state["writes"] += 1
        await c.kv.put(key, value)

    @store.action
    async def get(c: Any, key: Any) -> Any:
        return await c.kv.get(key)

    @store.action
    async def delete(c: Any, key: Any) -> None:
        await c.kv.delete(key)

    @store.action
    async def listing(c: Any, prefix: Any, limit: int | None = None) -> list[Any]:
        return [[k, v] for k, v in await c.kv.list(prefix, limit=limit)]

    @store.action
    async def read_own_writes(c: Any) -> list[Any]:
        seen = []
        await c.kv.put("ryw/a", 1)
        seen.append(await c.kv.get("ryw/a"))
        await c.kv.put("ryw/a", 2)
        await c.kv.put("ryw/b", 3)
        seen.append(await c.kv.get("ryw/a"))
        seen.append([k for k, _ in await c.kv.list("ryw/")])
        await c.kv.delete("ryw/a")
        seen.append(await c.kv.get("ryw/a"))
        seen.append([k for k, _ in await c.kv.list("ryw/")])
        return seen

    @store.action
    async def put_then_fail(c: Any) -> None:
        await c.kv.put("never", 1)
        await c.kv.put("k" * 5000, 1)

    return store


async def test_put_get_delete(driver_factory: DriverFactory, clock: MockClock) -> None:
    async with run_actors(Registry([kv_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("store", ["a"])
        assert await handle.get("missing") is None
        await handle.put("name", {"first": "Ada", "tags": [1, 2]})
        assert await handle.get("name") == {"first": "Ada", "tags": [1, 2]}
        await handle.put("name", "Grace")
        assert await handle.get("name") == "Grace"
        # A str key is its UTF-8 bytes.
        assert await handle.get(b"name") == "Grace"
        await handle.delete("name")
        assert await handle.get("name") is None
        await handle.delete("name")  # deleting a missing key is fine
        # Other actors have their own space.
        other = client.get_or_create("store", ["b"])
        await handle.put("shared", 1)
        assert await other.get("shared") is None


async def test_list_by_prefix_in_byte_order(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([kv_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("store", ["a"])
        await handle.put_many(
            [["user/2", "b"], ["user/10", "c"], ["user/1", "a"], ["users", "x"], ["team/1", "t"]]
        )
        assert await handle.listing("user/") == [["user/1", "a"], ["user/10", "c"], ["user/2", "b"]]
        assert await handle.listing("user/", 2) == [["user/1", "a"], ["user/10", "c"]]
        assert [k for k, _ in await handle.listing("")] == [
            "team/1",
            "user/1",
            "user/10",
            "user/2",
            "users",
        ]
        assert await handle.listing("nothing/") == []
        # Non-ASCII keys sort by their UTF-8 bytes.
        await handle.put_many([["z", 1], ["é", 2], ["Z", 3]])
        assert [k for k, _ in await handle.listing("")][-3:] == ["users", "z", "é"]


async def test_bytes_keys(driver_factory: DriverFactory, clock: MockClock) -> None:
    async with run_actors(Registry([kv_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("store", ["a"])
        keys = [b"\xff", b"\x00", b"\x01\x02", b"\x01", b"\x80abc", b"\x7f"]
        await handle.put_many([[k, i] for i, k in enumerate(keys)])
        listed = await handle.listing(b"")
        assert [k for k, _ in listed] == sorted(keys)
        assert listed[0] == [b"\x00", 1]
        assert await handle.listing(b"\x01") == [[b"\x01", 3], [b"\x01\x02", 2]]
        assert await handle.listing(b"\x01", 1) == [[b"\x01", 3]]
        assert await handle.get(b"\xff") == 0
        # Listed as text, a key that is not UTF-8 is a clear error, not a crash.
        with pytest.raises(KVError) as info:
            await handle.listing("")
        assert info.value.code == "invalid_key"
        assert "bytes prefix" in info.value.message
        await handle.delete(b"\xff")
        await handle.delete(b"\x80abc")
        assert [k for k, _ in await handle.listing("")] == ["\x00", "\x01", "\x01\x02", "\x7f"]
        assert [k for k, _ in await handle.listing(b"")] == sorted(keys)[:-2]


async def test_list_merges_pending_and_stored_writes(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([kv_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("store", ["a"])
        await handle.put_many([["p/1", 1], ["p/3", 3], ["p/5", 5]])
        assert await handle.read_own_writes() == [1, 2, ["ryw/a", "ryw/b"], None, ["ryw/b"]]
        # Limit applies after pending writes are merged in.
        assert await handle.listing("p/", 2) == [["p/1", 1], ["p/3", 3]]


async def test_read_your_writes_before_durable(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    store = GatedStore(driver_factory())
    async with run_actors(Registry([kv_def()]), storage=store, clock=clock) as (runtime, client):
        handle = client.get_or_create("store", ["a"])
        await handle.put("k", "old")
        actor_id = await handle.resolve()
        store.hold = True
        write = asyncio.ensure_future(handle.put("k", "new"))
        await store.entered.wait()
        read = asyncio.ensure_future(handle.get("k"))
        listed = asyncio.ensure_future(handle.listing(""))
        for _ in range(20):
            await asyncio.sleep(0)
        # Storage still has the old value; the actor already reads the new one, but
        # its answers wait for the write to be durable.
        stored = await store.inner.kv_get(actor_id, b"k")
        assert stored is not None and decode(stored) == "old"
        assert not read.done() and not write.done()
        store.hold = False
        store.release.set()
        await write
        assert await read == "new"
        assert await listed == [["k", "new"]]
        stored = await store.inner.kv_get(actor_id, b"k")
        assert stored is not None and decode(stored) == "new"
        assert runtime.is_awake(actor_id)


async def test_kv_committed_with_state(driver_factory: DriverFactory, clock: MockClock) -> None:
    async with run_actors(Registry([kv_def()]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("store", ["a"])
        await handle.put_counted("k", [1, 2])
        await handle.put("only-kv", 7)
        await handle.delete("k")
        actor_id = await handle.resolve()
        entries = await runtime.history(actor_id)
        assert [e.kind for e in entries] == ["create", "action", "action", "action"]
        counted, only_kv, deleted = entries[1:]
        assert counted.state == {"writes": 1}
        assert [(op[0], op[1], decode(op[2])) for op in counted.ops] == [("kv.put", b"k", [1, 2])]
        # A KV-only change still commits (and gets a history entry), without a state.
        assert not only_kv.state_changed
        assert [(op[0], op[1]) for op in only_kv.ops] == [("kv.put", b"only-kv")]
        assert deleted.ops == [("kv.delete", b"k")]
        assert deleted.name == "delete"
        assert deleted.args == ["k"]


async def test_failed_action_still_commits_kv_writes_made_before(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([kv_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("store", ["a"])
        with pytest.raises(KVError):
            await handle.put_then_fail()
        # As with state, an action error does not undo what the action changed.
        assert await handle.get("never") == 1


async def test_kv_persists_across_sleep_and_restart(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    registry = Registry([kv_def(sleep_timeout=5.0)])
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (runtime, client):
        handle = client.get_or_create("store", ["a"])
        await handle.put_many([["a", 1], ["b", 2]])
        await handle.put("c", 3)
        await handle.delete("a")
        actor_id = await handle.resolve()
        await clock.advance(6)
        assert not runtime.is_awake(actor_id)
        assert await handle.listing("") == [["b", 2], ["c", 3]]
        # KV-only commits after the wake keep working (and keep a consistent history).
        await handle.put("d", 4)
    async with run_actors(registry, storage=driver_factory(), clock=MockClock()) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("store", ["a"])
        assert await handle.listing("") == [["b", 2], ["c", 3], ["d", 4]]
        await handle.put("e", 5)
        seqs = [e.seq for e in await runtime.history(actor_id)]
        assert seqs == sorted(set(seqs))
        assert await handle.get("e") == 5


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("k" * 2049, "key_too_large"),
        (b"\x00" * 2049, "key_too_large"),
        (12, "invalid_key"),
        (None, "invalid_key"),
    ],
)
async def test_key_limits(
    driver_factory: DriverFactory, clock: MockClock, key: Any, code: str
) -> None:
    async with run_actors(Registry([kv_def()]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("store", ["a"])
        await handle.get("warm-up")
        actor_id = await handle.resolve()
        before = await runtime.history(actor_id)
        for call in (handle.put(key, 1), handle.get(key), handle.delete(key)):
            with pytest.raises(KVError) as info:
                await call
            assert info.value.code == code
        with pytest.raises(KVError) as info:
            await handle.listing(key)
        assert info.value.code == code
        assert await runtime.history(actor_id) == before


async def test_value_limit(driver_factory: DriverFactory, clock: MockClock) -> None:
    async with run_actors(Registry([kv_def()]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("store", ["a"])
        await handle.get("warm-up")
        actor_id = await handle.resolve()
        before = await runtime.history(actor_id)
        with pytest.raises(KVError) as info:
            await handle.put_sized("big", 128 * 1024)
        assert info.value.code == "value_too_large"
        assert "limit" in info.value.message
        assert await runtime.history(actor_id) == before
        assert await handle.get("big") is None
        # Just under the limit (the encoded string has a small header) is accepted.
        await handle.put_sized("big", 128 * 1024 - 16)
        assert len(await handle.get("big")) == 128 * 1024 - 16


async def test_limits_at_the_boundary_are_accepted(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([kv_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("store", ["a"])
        key = "k" * 2048
        await handle.put(key, 1)
        assert await handle.get(key) == 1
