"""``c.kv``: the per-actor key/value space, committed with the state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from pyrivet import ActorOptions, Registry, actor
from pyrivet._codec.values import decode
from pyrivet.errors import EncodingError, KVError
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


# -- the whole API: batches, ranges, reverse and limit, text and binary, limits --------


def _plain(value: Any) -> Any:
    """Tuples as lists, so results compare the same before and after the wire."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _expand(value: Any) -> Any:
    """``{"$big": n}`` becomes a string of n characters (made in the actor, since call
    arguments are limited to 64 KiB)."""
    if isinstance(value, dict) and set(value) == {"$big"}:
        return "v" * value["$big"]
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def big(size: int) -> dict[str, int]:
    return {"$big": size}


def api_def(**options: Any) -> Any:
    store = actor("api", state={"n": 0}, options=ActorOptions(**options))

    @store.action
    async def run(c: Any, steps: list[Any]) -> list[Any]:
        """Run ``[method, args, kwargs]`` steps on ``c.kv``; the result of each."""
        out = []
        for method, args, kwargs in steps:
            result = await getattr(c.kv, method)(*_expand(args), **kwargs)
            out.append(_plain(result))
        return out

    @store.action
    async def fill(c: Any, prefix: str, count: int) -> None:
        items = [(f"{prefix}{i:06d}", i) for i in range(count)]
        for at in range(0, count, 128):
            await c.kv.put_batch(items[at : at + 128])

    @store.action
    async def range_then_unencodable_state(c: Any, start: str, end: str) -> None:
        await c.kv.delete_range(start, end)
        c.state = {"bad": object()}

    return store


def step(method: str, *args: Any, **kwargs: Any) -> list[Any]:
    return [method, list(args), kwargs]


async def test_batches(driver_factory: DriverFactory, clock: MockClock) -> None:
    async with run_actors(Registry([api_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        h = client.get_or_create("api", ["a"])
        await h.run([step("put_batch", [["a", 1], ["b", {"x": [1]}], [b"\x00c", b"raw"]])])
        # Values in the order asked, None for a missing key; a key may repeat.
        assert await h.run([step("get_batch", ["b", "missing", b"a", "\x00c", "a"])]) == [
            [{"x": [1]}, None, 1, b"raw", 1]
        ]
        assert await h.run([step("get_batch", [])]) == [[]]
        # Within one action: the batch reads its own staged writes mixed with storage.
        assert await h.run(
            [
                step("put_batch", [["b", 2], ["c", 3], ["b", 22]]),  # a later duplicate wins
                step("delete_batch", ["a", "nothing"]),
                step("get_batch", ["a", "b", "c", "\x00c"]),
            ]
        ) == [None, None, [None, 22, 3, b"raw"]]
        assert await h.run([step("get_batch", ["a", "b", "c"])]) == [[None, 22, 3]]
        await h.run([step("delete_batch", ["b", b"c"])])
        assert await h.run([step("list", "")]) == [[["\x00c", b"raw"]]]


async def test_batch_limits_change_nothing(driver_factory: DriverFactory, clock: MockClock) -> None:
    async with run_actors(Registry([api_def()]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        h = client.get_or_create("api", ["a"])
        await h.run([step("put_batch", [[f"k{i}", i] for i in range(3)])])
        actor_id = await h.resolve()
        before = await runtime.history(actor_id)
        bad_batches = [
            (step("put_batch", [[f"n{i}", i] for i in range(129)]), "batch_too_large"),
            (step("put_batch", [["n1", 1], ["n2", big(128 * 1024)]]), "value_too_large"),
            (step("put_batch", [["n1", 1], ["n" * 2049, 2]]), "key_too_large"),
            (step("put_batch", [["n1", 1], [7, 2]]), "invalid_key"),
            (step("put_batch", [["n1", 1], ["n2"]]), "invalid_argument"),
            # 8 values of 127 KiB are each allowed but 1016 KiB together are not.
            (
                step("put_batch", [[f"n{i}", big(127 * 1024)] for i in range(8)]),
                "payload_too_large",
            ),
            (step("get_batch", [f"k{i}" for i in range(129)]), "batch_too_large"),
            (step("get_batch", "k1"), "invalid_argument"),
            (step("delete_batch", [f"k{i}" for i in range(129)]), "batch_too_large"),
            (step("delete_batch", ["k0", "k" * 2049]), "key_too_large"),
            (step("delete_batch", b"k0"), "invalid_argument"),
            (step("delete_batch", 3), "invalid_argument"),
            (step("put_batch", 3), "invalid_argument"),
            (step("delete_range", "a", b"\x00" * 2049), "key_too_large"),
            (step("list_range", None, "z"), "invalid_key"),
            (step("list", "", limit=-1), "invalid_argument"),
            (step("list", "", limit="3"), "invalid_argument"),
            (step("list_range", "a", "z", key_type="utf8"), "invalid_argument"),
        ]
        for bad, code in bad_batches:
            with pytest.raises(KVError) as info:
                await h.run([bad])
            assert info.value.code == code, bad
            assert info.value.group == "kv"
            assert str(MAX_LIMITS.get(code, "")) in info.value.message
        assert await runtime.history(actor_id) == before
        assert await h.run([step("list", "")]) == [[["k0", 0], ["k1", 1], ["k2", 2]]]
        # At the limits exactly, batches are accepted.
        await h.run([step("put_batch", [[f"m{i:03d}", i] for i in range(128)])])
        assert len((await h.run([step("get_batch", [f"m{i:03d}" for i in range(128)])]))[0]) == 128
        await h.run([step("delete_batch", [f"m{i:03d}" for i in range(128)])])
        assert await h.run([step("list", "m")]) == [[]]


MAX_LIMITS = {
    "batch_too_large": 128,
    "value_too_large": 128 * 1024,
    "key_too_large": 2048,
    "payload_too_large": 976 * 1024,
}


async def test_list_range_reverse_limit_and_key_types(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([api_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        h = client.get_or_create("api", ["a"])
        keys = ["a", "ab", "b", "b/1", "b/2", "b/3", "c", "é"]
        await h.run([step("put_batch", [[k, k.upper()] for k in keys])])

        async def keys_of(method: str, *args: Any, **kwargs: Any) -> list[Any]:
            [result] = await h.run([step(method, *args, **kwargs)])
            return [k for k, _ in result]

        # Half-open: the start is in, the end is out; str bounds give str keys.
        assert await keys_of("list_range", "ab", "b/2") == ["ab", "b", "b/1"]
        assert await keys_of("list_range", "ab", "b/2", reverse=True) == ["b/1", "b", "ab"]
        assert await keys_of("list_range", "a", "z", limit=2) == ["a", "ab"]
        assert await keys_of("list_range", "a", "z", reverse=True, limit=2) == ["c", "b/3"]
        assert await keys_of("list_range", "b", "b") == []
        assert await keys_of("list_range", "c", "a") == []
        assert await keys_of("list_range", "a", "z", limit=0) == []
        # Bytes bounds give bytes keys; key_type overrides either way.
        assert await keys_of("list_range", b"c", b"\xff") == [b"c", "é".encode()]
        assert await keys_of("list_range", "c", "\U0010ffff", key_type="binary") == [
            b"c",
            "é".encode(),
        ]
        assert await keys_of("list", b"b/", key_type="text") == ["b/1", "b/2", "b/3"]
        # A prefix listing returns whole keys, reversed and limited on request.
        assert await h.run([step("list", "b/", reverse=True, limit=2)]) == [
            [["b/3", "B/3"], ["b/2", "B/2"]]
        ]
        assert await keys_of("list", "b/", limit=5) == ["b/1", "b/2", "b/3"]
        assert await keys_of("list", "", reverse=True) == list(reversed(keys))
        # Values come back as they were put: text as str, binary as bytes.
        await h.run(
            [step("put", b"\x01\xffbin", b"\x00\xff"), step("put", "text", "\u00e9t\u00e9")]
        )
        assert await h.run([step("get", b"\x01\xffbin"), step("get", "text")]) == [
            b"\x00\xff",
            "\u00e9t\u00e9",
        ]
        with pytest.raises(KVError) as info:
            await h.run([step("list_range", b"\x00", b"\x02", key_type="text")])
        assert info.value.code == "invalid_key"
        assert 'key_type="binary"' in info.value.message


async def test_list_default_limit(driver_factory: DriverFactory, clock: MockClock) -> None:
    async with run_actors(Registry([api_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        h = client.get_or_create("api", ["a"])
        await h.fill("k", 16_385)
        [listed, ranged, more] = await h.run(
            [
                step("list", "k"),
                step("list_range", "k", "l", reverse=True),
                step("list", "k", limit=20_000),
            ]
        )
        assert len(listed) == 16_384 and listed[-1][0] == "k016383"
        assert len(ranged) == 16_384 and ranged[-1][0] == "k000001"
        assert len(more) == 16_385


async def test_delete_range(driver_factory: DriverFactory, clock: MockClock) -> None:
    registry = Registry([api_def(sleep_timeout=5.0)])
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (runtime, client):
        h = client.get_or_create("api", ["a"])
        await h.run([step("put_batch", [[k, k] for k in ["a", "b", "b/1", "b/2", "c"]])])
        # Deleted in the same action: reads see it at once, a later put in the range
        # stands, and the start is in the range but the end is not.
        assert await h.run(
            [
                step("put", "b/0", "staged"),
                step("delete_range", "b", "c"),
                step("put", "b/9", "after"),
                step("get", "b/1"),
                step("get", "b/0"),
                step("get_batch", ["a", "b", "b/2", "b/9", "c"]),
                step("list", ""),
                step("list_range", "a", "z", reverse=True, limit=2),
                step("delete_range", "z", "a"),  # an empty range: nothing
            ]
        ) == [
            None,
            None,
            None,
            None,
            None,
            ["a", None, None, "after", "c"],
            [["a", "a"], ["b/9", "after"], ["c", "c"]],
            [["c", "c"], ["b/9", "after"]],
            None,
        ]
        actor_id = await h.resolve()
        last = (await runtime.history(actor_id))[-1]
        assert [op[0] for op in last.ops] == ["kv.delete_range", "kv.put"]
        assert last.ops[0] == ("kv.delete_range", b"b", b"c")
        # Durable: after a sleep and after a restart.
        await clock.advance(6)
        assert not runtime.is_awake(actor_id)
        assert await h.run([step("list", "")]) == [[["a", "a"], ["b/9", "after"], ["c", "c"]]]
    async with run_actors(registry, storage=driver_factory(), clock=MockClock()) as (_, client):
        h = client.get_or_create("api", ["a"])
        assert await h.run([step("list", "")]) == [[["a", "a"], ["b/9", "after"], ["c", "c"]]]
        await h.run([step("delete_range", "", "\U0010ffff")])
        assert await h.run([step("list", "")]) == [[]]


async def test_overlapping_range_deletes_before_durable(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([api_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        h = client.get_or_create("api", ["a"])
        keys = ["a", "a0", "a1", "b", "b5", "c", "c1", "c5", "d", "d5", "e", "f"]
        await h.run([step("put_batch", [[k, k] for k in keys])])
        survivors = ["0", "a1", "e", "f"]
        seen = await h.run(
            [
                step("delete_range", "b", "d"),
                step("delete_range", "c", "e"),  # overlaps the first: b..e is gone
                step("delete_range", "c1", "c2"),  # inside it
                step("delete_range", "a", "a1"),  # starts where the listing starts
                step("put", "c1", "back"),
                step("put", "0", "0"),  # outside the listed range
                step("list_range", "a", "z"),
                step("list_range", "a", "z", reverse=True, limit=3),
                step("list_range", "a0", "c5"),
                step("list", "c"),
            ]
        )
        assert seen[4:] == [
            None,
            None,
            [["a1", "a1"], ["c1", "back"], ["e", "e"], ["f", "f"]],
            [["f", "f"], ["e", "e"], ["c1", "back"]],
            [["a1", "a1"], ["c1", "back"]],
            [["c1", "back"]],
        ]
        assert await h.run([step("list", "")]) == [
            [[k, "back" if k == "c1" else k] for k in sorted([*survivors, "c1"])]
        ]


async def test_put_delete_put_of_one_key_in_one_action(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    registry = Registry([api_def()])
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (_, client):
        h = client.get_or_create("api", ["a"])
        await h.run([step("put", "k", 1), step("delete", "k"), step("put", "k", 2)])
        await h.run([step("put", "gone", 1), step("put", "gone", 2), step("delete", "gone")])
    async with run_actors(registry, storage=driver_factory(), clock=MockClock()) as (_, client):
        h = client.get_or_create("api", ["a"])
        assert await h.run([step("get", "k"), step("get", "gone")]) == [2, None]


async def test_range_delete_before_durable_orders_with_other_commits(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    store = GatedStore(driver_factory())
    async with run_actors(Registry([api_def()]), storage=store, clock=clock) as (_, client):
        h = client.get_or_create("api", ["a"])
        await h.run([step("put_batch", [["k1", "old"], ["k2", "old"], ["k3", "old"], ["z", 0]])])
        store.hold = True
        # Commit 1 (held in flight) writes k1 and k3; commit 2 (queued behind it)
        # deletes their range, then puts k1 again; reads after each see the latest.
        first = asyncio.ensure_future(h.run([step("put_batch", [["k1", "one"], ["k3", "one"]])]))
        await store.entered.wait()
        second = asyncio.ensure_future(
            h.run(
                [
                    step("get", "k1"),
                    step("delete_range", "k", "l"),
                    step("get_batch", ["k1", "k2", "k3"]),
                    step("put", "k1", "two"),
                    step("get_batch", ["k1", "k2", "k3"]),
                    step("list", "", reverse=True),
                ]
            )
        )
        for _ in range(20):
            await asyncio.sleep(0)
        third = asyncio.ensure_future(
            h.run([step("get_batch", ["k1", "k2", "k3", "z"]), step("list_range", "a", "z")])
        )
        for _ in range(20):
            await asyncio.sleep(0)
        assert not first.done() and not second.done() and not third.done()
        store.hold = False
        store.release.set()
        await first
        assert await second == [
            "one",
            None,
            [None, None, None],
            None,
            ["two", None, None],
            [["z", 0], ["k1", "two"]],
        ]
        assert await third == [["two", None, None, 0], [["k1", "two"]]]
        assert await h.run([step("list", "")]) == [[["k1", "two"], ["z", 0]]]


async def test_rolled_back_range_delete_changes_nothing(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([api_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        h = client.get_or_create("api", ["a"])
        await h.run([step("put_batch", [["a", 1], ["b", 2]])])
        with pytest.raises(EncodingError, match="state"):
            await h.range_then_unencodable_state("a", "z")
        # The state could not be saved, so the unit of work, range delete included,
        # was rolled back.
        assert await h.run([step("list", ""), step("get", "a")]) == [[["a", 1], ["b", 2]], 1]
