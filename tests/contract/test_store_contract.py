"""The `ActorStore` contract, run against every storage driver."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pyrivet.errors import DataDirLockedError, DuplicateKeyError, StorageError
from pyrivet.storage import (
    ActorRecord,
    ActorStore,
    AlarmRecord,
    CommitRecord,
    HistoryEntry,
    MemoryDriver,
    QueueMessageRecord,
    SQLiteDriver,
    StoredQueue,
    StoredState,
    _sqlite_compaction as compaction,
)
from pyrivet.storage._sqlite_schema import MIGRATIONS
from pyrivet.storage._sqlite_writer import Writer

SRC_DIR = Path(__file__).resolve().parents[2] / "src"
#: "sqlite-threaded" is the SQLite driver with its inline fast path off: every job runs
#: on the writer thread, as it does under load.
DRIVERS = ["memory", "sqlite", "sqlite-threaded"]

StoreFactory = Callable[..., ActorStore]


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(driver: str, tmp_path: Path) -> StoreFactory:
    """Build an unopened driver; for SQLite every store made here shares one data dir."""

    def make(**kwargs: Any) -> ActorStore:
        if driver == "memory":
            return MemoryDriver()
        if driver == "sqlite-threaded":
            kwargs.setdefault("inline", False)
        return SQLiteDriver(tmp_path / "data", **kwargs)

    return make


@pytest.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[ActorStore]:
    s = make_store()
    await s.open()
    yield s
    await s.close()


def actor(
    actor_id: str, name: str = "counter", key: tuple[str, ...] = ("k",), at: int = 1000
) -> ActorRecord:
    return ActorRecord(actor_id=actor_id, name=name, key=key, created_at_ms=at, input=b"in")


def alarm(actor_id: str, alarm_id: str, fire_at: int, **kw: Any) -> AlarmRecord:
    return AlarmRecord(
        actor_id=actor_id,
        alarm_id=alarm_id,
        fire_at_ms=fire_at,
        kind="cron" if "cron" in kw else "once",
        action="tick",
        args=b"\x90",
        created_at_ms=5,
        **kw,
    )


def event(actor_id: str, seq: int, **kw: Any) -> HistoryEntry:
    return HistoryEntry(actor_id=actor_id, seq=seq, at_ms=100 + seq, kind="action", **kw)


def state_commit(actor_id: str, seq: int, state: bytes, **kw: Any) -> CommitRecord:
    return CommitRecord(actor_id=actor_id, seq=seq, state=state, event=event(actor_id, seq), **kw)


async def reopened(store: ActorStore, driver: str, make_store: StoreFactory) -> ActorStore:
    """Close ``store`` and open it again (a new driver on the same data for SQLite)."""
    await store.close()
    again = store if driver == "memory" else make_store()
    await again.open()
    return again


# -- actors ------------------------------------------------------------------------------


async def test_create_find_get_and_list(store: ActorStore) -> None:
    a = actor("a1", key=("room", "1"), at=1)
    b = actor("b1", name="other", key=("room", "1"), at=2)
    c = actor("c1", key=("room", "2"), at=3)
    for rec in (c, a, b):
        await store.create_actor(rec)

    assert await store.find_actor("counter", ("room", "1")) == a
    assert await store.find_actor("other", ("room", "1")) == b
    assert await store.find_actor("counter", ("room", "3")) is None
    assert await store.get_actor("c1") == c
    assert await store.get_actor("nope") is None
    assert await store.list_actors() == [a, b, c]
    assert await store.list_actors("counter") == [a, c]
    assert await store.load_state("a1") == StoredState(0, None, False)
    assert await store.count_actors() == {"counter": 2, "other": 1}


async def test_list_actors_paged(store: ActorStore) -> None:
    # Two actors share a creation time: the id breaks the tie, so no page repeats or
    # skips one of them.
    records = [actor(f"a{i}", key=(str(i),), at=10 + i // 2) for i in range(7)]
    for rec in reversed(records):
        await store.create_actor(rec)
    pages: list[list[ActorRecord]] = []
    after: tuple[int, str] | None = None
    while True:
        page = await store.list_actors(after=after, limit=3)
        if not page:
            break
        pages.append(page)
        after = (page[-1].created_at_ms, page[-1].actor_id)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [r for p in pages for r in p] == records
    # Destroying the cursor's actor does not lose the next page.
    await store.destroy_actor("a2", 100)
    assert await store.list_actors(after=(records[2].created_at_ms, "a2"), limit=2) == records[3:5]
    assert await store.list_actors("counter", after=(11, "a2")) == records[3:]
    assert await store.list_actors("nobody", limit=5) == []
    assert await store.count_actors() == {"counter": 6}


async def test_create_duplicate_key_raises(store: ActorStore) -> None:
    await store.create_actor(actor("a1", key=("dup",)))
    with pytest.raises(DuplicateKeyError) as info:
        await store.create_actor(actor("a2", key=("dup",)))
    message = str(info.value)
    assert "counter" in message and "dup" in message and "get_or_create" in message
    assert await store.get_actor("a2") is None
    assert [r.actor_id for r in await store.list_actors()] == ["a1"]


async def test_create_reused_actor_id_raises(store: ActorStore) -> None:
    await store.create_actor(actor("a1", key=("x",)))
    with pytest.raises(StorageError):
        await store.create_actor(actor("a1", key=("y",)))
    assert await store.find_actor("counter", ("y",)) is None


async def test_get_or_create_returns_existing(store: ActorStore) -> None:
    first, created = await store.get_or_create_actor(actor("a1"))
    assert created is True and first == actor("a1")
    again, created = await store.get_or_create_actor(actor("a2"))
    assert created is False and again == first
    assert await store.get_actor("a2") is None


async def test_concurrent_get_or_create_creates_once(store: ActorStore) -> None:
    results = await asyncio.gather(
        *(store.get_or_create_actor(actor(f"id{i}", key=("hot",))) for i in range(100))
    )
    assert sum(created for _, created in results) == 1
    assert len({rec.actor_id for rec, _ in results}) == 1
    assert len(await store.list_actors()) == 1


async def test_keys_are_escaped_and_distinct(store: ActorStore) -> None:
    keys: list[tuple[str, ...]] = [
        ("a", "b"),
        ("a/b",),
        ("a", "", "b"),
        (),
        ("",),
        ("a\\", "b"),
        ("a\\/b",),
        ("/",),
    ]
    for i, key in enumerate(keys):
        await store.create_actor(actor(f"id{i}", key=key))
    for i, key in enumerate(keys):
        found = await store.find_actor("counter", key)
        assert found is not None
        assert (found.actor_id, found.key) == (f"id{i}", key)


# -- commits -----------------------------------------------------------------------------


async def test_commit_applies_records_in_order(store: ActorStore) -> None:
    await store.create_actor(actor("a1"))
    a1 = alarm("a1", "x", 50)
    a2 = alarm("a1", "y", 40, cron="*/5 * * * *", timezone="Europe/Paris")
    first = CommitRecord(
        actor_id="a1",
        seq=1,
        state=b"s1",
        initialized=True,
        kv_puts=[(b"k1", b"v1"), (b"k2", b"v2")],
        alarm_puts=[a1],
        event=event("a1", 1, name="inc", by="conn-1", args=b"a", state=b"s1", ops=b"o"),
    )
    second = CommitRecord(
        actor_id="a1",
        seq=2,
        state=b"s2",
        kv_puts=[(b"k2", b"v2b"), (b"k3", b"v3")],
        kv_deletes=[b"k1"],
        alarm_puts=[a2],
        alarm_deletes=["x"],
        event=event("a1", 2),
    )
    await store.commit([first, second])

    assert await store.load_state("a1") == StoredState(2, b"s2", True)
    got = await store.get_actor("a1")
    assert got is not None and got.initialized
    assert await store.kv_get("a1", b"k1") is None
    assert await store.kv_list("a1", b"") == [(b"k2", b"v2b"), (b"k3", b"v3")]
    assert await store.list_alarms("a1") == [a2]
    assert await store.read_history("a1") == [first.event, second.event]


async def test_last_op_wins_across_and_within_commits(store: ActorStore) -> None:
    await store.create_actor(actor("a1"))
    await store.commit(
        [
            CommitRecord("a1", 1, state=b"one", kv_puts=[(b"k", b"1")]),
            CommitRecord("a1", 2, state=b"two", kv_deletes=[b"k"]),
            CommitRecord("a1", 3, state=None, kv_puts=[(b"k", b"3")]),
        ]
    )
    # The seq is the last commit's, the snapshot the last one written.
    assert await store.load_state("a1") == StoredState(3, b"two", False)
    assert await store.kv_get("a1", b"k") == b"3"

    await store.commit([CommitRecord("a1", 4, alarm_puts=[alarm("a1", "z", 9)])])
    assert await store.load_state("a1") == StoredState(4, b"two", False)
    await store.commit(
        [
            CommitRecord("a1", 5, alarm_deletes=["z"]),
            CommitRecord("a1", 6, alarm_puts=[alarm("a1", "z", 99)]),
        ]
    )
    assert [a.fire_at_ms for a in await store.list_alarms("a1")] == [99]


async def test_commit_of_many_actors_keeps_them_apart(store: ActorStore) -> None:
    for i in range(3):
        await store.create_actor(actor(f"a{i}", key=(str(i),)))
    await store.commit(
        [state_commit(f"a{i}", 1, f"s{i}".encode(), kv_puts=[(b"k", bytes([i]))]) for i in range(3)]
    )
    for i in range(3):
        assert await store.load_state(f"a{i}") == StoredState(1, f"s{i}".encode(), False)
        assert await store.kv_list(f"a{i}", b"") == [(b"k", bytes([i]))]
        assert [e.seq for e in await store.read_history(f"a{i}")] == [1]


async def test_kv_list_prefix_byte_order_and_limit(store: ActorStore) -> None:
    keys = [b"b", b"ab\xff", b"a", b"ab", b"\xff\xff", b"ac", b"ab\x00", b"\xff", b"ab\xff\xff"]
    await store.commit(
        [
            CommitRecord("a1", 1, kv_puts=[(k, b"v" + k) for k in keys]),
            CommitRecord("other", 1, kv_puts=[(b"ab", b"not mine")]),
        ]
    )
    assert [k for k, _ in await store.kv_list("a1", b"")] == sorted(keys)
    assert await store.kv_list("a1", b"ab") == [
        (b"ab", b"vab"),
        (b"ab\x00", b"vab\x00"),
        (b"ab\xff", b"vab\xff"),
        (b"ab\xff\xff", b"vab\xff\xff"),
    ]
    assert [k for k, _ in await store.kv_list("a1", b"ab\xff")] == [b"ab\xff", b"ab\xff\xff"]
    assert [k for k, _ in await store.kv_list("a1", b"\xff")] == [b"\xff", b"\xff\xff"]
    assert [k for k, _ in await store.kv_list("a1", b"ab", limit=2)] == [b"ab", b"ab\x00"]
    assert await store.kv_list("a1", b"zz") == []
    assert await store.kv_get("other", b"ab") == b"not mine"


async def test_kv_get_batch_in_the_order_asked(store: ActorStore) -> None:
    await store.commit([CommitRecord("a1", 1, kv_puts=[(b"a", b"1"), (b"c", b"3")])])
    assert await store.kv_get_batch("a1", [b"c", b"missing", b"a", b"c"]) == [
        b"3",
        None,
        b"1",
        b"3",
    ]
    assert await store.kv_get_batch("a1", []) == []
    assert await store.kv_get_batch("nobody", [b"a"]) == [None]
    many = [bytes([i // 256, i % 256]) for i in range(1200)]
    await store.commit([CommitRecord("a1", 2, kv_puts=[(k, k) for k in many[::2]])])
    got = await store.kv_get_batch("a1", many)
    assert got == [k if i % 2 == 0 else None for i, k in enumerate(many)]


async def test_kv_list_range_half_open_reverse_and_limit(store: ActorStore) -> None:
    keys = [b"", b"a", b"ab", b"ab\x00", b"b", b"ba", b"c", b"\xff", b"\xff\xff"]
    await store.commit(
        [
            CommitRecord("a1", 1, kv_puts=[(k, b"v" + k) for k in keys]),
            CommitRecord("other", 1, kv_puts=[(b"ab", b"not mine")]),
        ]
    )

    async def listed(start: bytes, end: bytes | None, **kw: Any) -> list[bytes]:
        return [k for k, _ in await store.kv_list_range("a1", start, end, **kw)]

    assert await listed(b"a", b"b") == [b"a", b"ab", b"ab\x00"]
    assert await listed(b"ab", b"ba") == [b"ab", b"ab\x00", b"b"]
    assert await listed(b"a", b"b", reverse=True) == [b"ab\x00", b"ab", b"a"]
    assert await listed(b"a", b"c", limit=2) == [b"a", b"ab"]
    assert await listed(b"a", b"c", reverse=True, limit=2) == [b"ba", b"b"]
    assert await listed(b"", None) == keys
    assert await listed(b"c", None, reverse=True) == [b"\xff\xff", b"\xff", b"c"]
    assert await listed(b"b", b"b") == []
    assert await listed(b"c", b"a") == []
    assert await listed(b"a", b"c", limit=0) == []
    assert await store.kv_list_range("a1", b"ab", b"ab\x01") == [
        (b"ab", b"vab"),
        (b"ab\x00", b"vab\x00"),
    ]


async def test_kv_delete_ranges_apply_before_the_records_puts(store: ActorStore) -> None:
    keys = [b"a", b"b", b"b1", b"b2", b"c", b"d"]
    await store.commit(
        [
            CommitRecord("a1", 1, kv_puts=[(k, b"old") for k in keys]),
            CommitRecord("other", 1, kv_puts=[(b"b1", b"not mine")]),
        ]
    )
    # Within a record: the ranges, then the puts (b1 is put again), then the deletes.
    await store.commit(
        [
            CommitRecord(
                "a1",
                2,
                kv_puts=[(b"b1", b"new")],
                kv_deletes=[b"d"],
                kv_delete_ranges=((b"b", b"c"),),
            )
        ]
    )
    assert await store.kv_list("a1", b"") == [
        (b"a", b"old"),
        (b"b1", b"new"),
        (b"c", b"old"),
    ]
    # Across records of one batch, in record order: a put before a range is deleted
    # by it, a put after it stays; ranges may overlap, and another actor is untouched.
    await store.commit(
        [
            CommitRecord("a1", 3, kv_puts=[(b"x1", b"1"), (b"y", b"1")]),
            CommitRecord("a1", 4, kv_delete_ranges=((b"a", b"b2"), (b"b", b"x5"))),
            CommitRecord("a1", 5, kv_puts=[(b"x2", b"2")]),
        ]
    )
    assert await store.kv_list("a1", b"") == [(b"x2", b"2"), (b"y", b"1")]
    assert await store.kv_get("other", b"b1") == b"not mine"
    await store.commit([CommitRecord("empty", 1, kv_delete_ranges=((b"a", b"z"),))])
    assert await store.kv_list("empty", b"") == []
    # A lone record with nothing but a range delete (and its log row) still deletes.
    record = CommitRecord("a1", 6, kv_delete_ranges=((b"", b"\xff"),), event=event("a1", 6))
    assert record.writes_beyond_log()
    await store.commit([record])
    assert await store.kv_list("a1", b"") == []
    assert await store.load_state("a1") == StoredState(6, None, False)


async def test_read_history_after_seq_and_limit(store: ActorStore) -> None:
    await store.commit([state_commit("a1", seq, b"s") for seq in range(1, 11)])
    assert [e.seq for e in await store.read_history("a1")] == list(range(1, 11))
    assert [e.seq for e in await store.read_history("a1", after_seq=7)] == [8, 9, 10]
    assert [e.seq for e in await store.read_history("a1", after_seq=2, limit=3)] == [3, 4, 5]
    assert await store.read_history("a1", after_seq=10) == []
    assert await store.read_history("nobody") == []


async def test_prune_history(store: ActorStore) -> None:
    await store.commit([state_commit("a1", seq, b"s") for seq in range(1, 6)])
    await store.commit(
        [state_commit("a1", 6, b"s6", prune_history_before=3), state_commit("a2", 1, b"x")]
    )
    assert [e.seq for e in await store.read_history("a1")] == [3, 4, 5, 6]
    await store.commit([state_commit("a1", 7, b"s7", prune_history_before=7)])
    assert [e.seq for e in await store.read_history("a1")] == [7]
    assert [e.seq for e in await store.read_history("a2")] == [1]
    assert await store.load_state("a1") == StoredState(7, b"s7", False)


async def test_load_state_seq_counts_commits_that_left_state_unchanged(
    driver: str, make_store: StoreFactory
) -> None:
    store = make_store()
    await store.open()
    try:
        await store.create_actor(actor("a1"))
        await store.commit([state_commit("a1", 1, b"s1", initialized=True)])
        await store.commit([CommitRecord("a1", 2, kv_puts=[(b"k", b"v")], event=event("a1", 2))])
        # A woken actor continues after seq 2, not after the snapshot's seq 1.
        assert await store.load_state("a1") == StoredState(2, b"s1", True)
        await store.commit([CommitRecord("a1", 3, alarm_puts=[alarm("a1", "x", 5)])])
        assert await store.load_state("a1") == StoredState(3, b"s1", True)
        await store.commit([state_commit("a1", 4, b"s4"), CommitRecord("a1", 5)])
        assert await store.load_state("a1") == StoredState(5, b"s4", True)
        assert [e.seq for e in await store.read_history("a1")] == [1, 2, 4]
        assert await store.load_state("a1") == StoredState(5, b"s4", True)
        store = await reopened(store, driver, make_store)
        assert await store.load_state("a1") == StoredState(5, b"s4", True)
    finally:
        await store.close()


async def test_state_is_visible_right_after_commit_and_after_reopen(
    driver: str, make_store: StoreFactory
) -> None:
    store = make_store()
    await store.open()
    try:
        expected: dict[str, StoredState] = {}
        for seq in range(1, 40):
            batch = []
            for i in range(5):
                actor_id = f"a{i}"
                if (seq + i) % 3:
                    batch.append(state_commit(actor_id, seq, f"{actor_id}-{seq}".encode()))
                    expected[actor_id] = StoredState(seq, f"{actor_id}-{seq}".encode(), False)
                else:  # no new state: the seq moves, the snapshot stays
                    batch.append(CommitRecord(actor_id, seq, kv_puts=[(b"n", b"%d" % seq)]))
                    old = expected.get(actor_id, StoredState(0, None, False))
                    expected[actor_id] = StoredState(seq, old.snapshot, False)
            await store.commit(batch)
            for actor_id, state in expected.items():
                assert await store.load_state(actor_id) == state
        store = await reopened(store, driver, make_store)
        for actor_id, state in expected.items():
            assert await store.load_state(actor_id) == state
            assert await store.kv_get(actor_id, b"n") is not None
    finally:
        await store.close()


async def test_history_is_complete_across_compaction(store: ActorStore) -> None:
    await store.commit([state_commit("a1", seq, b"s%d" % seq) for seq in range(1, 6)])
    assert [e.seq for e in await store.read_history("a1")] == [1, 2, 3, 4, 5]
    # The SQLite driver moved seqs 1..5 out of its commit log; 6..8 are still in it.
    await store.commit([state_commit("a1", seq, b"s%d" % seq) for seq in range(6, 9)])
    assert await store.load_state("a1") == StoredState(8, b"s8", False)
    assert [e.seq for e in await store.read_history("a1", after_seq=3, limit=3)] == [4, 5, 6]
    await store.commit([state_commit("a1", 9, b"s9")])
    history = await store.read_history("a1")
    assert [e.seq for e in history] == list(range(1, 10))
    assert history[7] == event("a1", 8)
    assert await store.read_history("a1", after_seq=8) == [event("a1", 9)]


async def test_prune_is_honoured_across_compaction_and_reopen(
    driver: str, make_store: StoreFactory
) -> None:
    store = make_store()
    await store.open()
    try:
        await store.commit([state_commit("a1", seq, b"s") for seq in range(1, 6)])
        assert len(await store.read_history("a1")) == 5
        await store.commit([state_commit("a1", 6, b"s6", prune_history_before=3)])
        assert [e.seq for e in await store.read_history("a1")] == [3, 4, 5, 6]
        # A prune applies to the whole batch, records after it included.
        await store.commit(
            [
                state_commit("a1", 7, b"s7", prune_history_before=9),
                state_commit("a1", 8, b"s8"),
                state_commit("a1", 9, b"s9"),
                state_commit("a2", 1, b"x"),
            ]
        )
        # ... but not to later commits, even if their seq is below the bound.
        await store.commit([state_commit("a1", 10, b"s10", prune_history_before=12)])
        await store.commit([state_commit("a1", 11, b"s11")])
        assert [e.seq for e in await store.read_history("a1")] == [11]
        assert [e.seq for e in await store.read_history("a2")] == [1]
        await store.commit([state_commit("a1", 12, b"s12"), state_commit("a1", 13, b"s13")])
        await store.commit([state_commit("a1", 14, b"s14", prune_history_before=13)])
        store = await reopened(store, driver, make_store)
        assert [e.seq for e in await store.read_history("a1")] == [13, 14]
        assert await store.load_state("a1") == StoredState(14, b"s14", False)
    finally:
        await store.close()


async def test_history_keeps_the_entry_as_committed(store: ActorStore) -> None:
    # The entry's own state is kept even where it differs from the record's snapshot;
    # every column comes back as committed, set or None (the SQLite driver binds None as 0).
    records = [
        CommitRecord("a1", 1, state=b"snap", event=event("a1", 1, state=b"snap")),
        CommitRecord(
            "a1", 2, state=b"snap2", event=event("a1", 2, name="add", by="conn-1", args=b"\x81")
        ),
        CommitRecord("a1", 3, event=event("a1", 3, state=b"only-in-history")),
        CommitRecord("a1", 4, state=b"snap4", event=event("a1", 4, state=b"other", ops=b"o")),
        CommitRecord("a1", 5, state=b"snap5"),  # no history entry
    ]
    await store.commit(records)
    assert await store.load_state("a1") == StoredState(5, b"snap5", False)
    assert await store.read_history("a1") == [r.event for r in records[:4]]


async def test_a_long_batch_keeps_every_record_as_committed(
    store: ActorStore, driver: str, make_store: StoreFactory
) -> None:
    # 37 records: the SQLite driver writes its log rows 16 to a statement, then the
    # rest one by one; every column of every row must come back, before and after a
    # reopen (which compacts the log).
    records = []
    for i in range(37):
        actor_id, seq = f"a{i % 5}", i // 5 + 1
        shape = i % 4
        records.append(
            CommitRecord(
                actor_id,
                seq,
                state=None if shape == 2 else b"s%d" % i,
                event=None
                if shape == 3
                else event(
                    actor_id,
                    seq,
                    name=f"n{i}" if shape else None,
                    by=f"conn-{i}" if shape == 1 else None,
                    args=b"a%d" % i,
                    state=b"e%d" % i if shape == 1 else None,
                    ops=b"o" if shape == 2 else None,
                ),
                workflow_puts=(("w", b"%d" % i),) if shape == 1 else (),
            )
        )
    await store.commit(records)

    async def check(s: ActorStore) -> None:
        for a in range(5):
            mine = [r for r in records if r.actor_id == f"a{a}"]
            snapshot = [r.state for r in mine if r.state is not None][-1]
            assert await s.load_state(f"a{a}") == StoredState(mine[-1].seq, snapshot, False)
            assert await s.read_history(f"a{a}") == [r.event for r in mine if r.event]
            workflow = [r.workflow_puts[0][1] for r in mine if r.workflow_puts]
            assert await s.load_workflow(f"a{a}") == ({"w": workflow[-1]} if workflow else {})

    await check(store)
    await check(await reopened(store, driver, make_store))


async def test_failed_commit_changes_nothing(driver: str, make_store: StoreFactory) -> None:
    # SQLite: max_page_count below the current size is clamped to it, so the file cannot
    # grow and a large value fails with "database or disk is full".
    sqlite = driver != "memory"
    store = make_store(pragmas={"max_page_count": 1}) if sqlite else make_store()
    await store.open()
    try:
        await store.create_actor(actor("a1"))
        await store.commit(
            [
                state_commit(
                    "a1", 1, b"old", kv_puts=[(b"k", b"old")], workflow_puts=(("w", b"old"),)
                )
            ]
        )
        if isinstance(store, MemoryDriver):
            store.fail_next_commit(OSError("No space left on device"))
        big = os.urandom(1 << 20)
        with pytest.raises(StorageError) as info:
            await store.commit(
                [
                    state_commit(
                        "a1",
                        2,
                        b"new",
                        kv_puts=[(b"k", b"new")],
                        kv_deletes=[b"k"],
                        kv_delete_ranges=((b"a", b"z"),),
                    ),
                    state_commit("a2", 1, b"x", alarm_puts=[alarm("a2", "al", 1)]),
                    CommitRecord("a2", 2, workflow_puts=(("w", b"x"),)),
                    CommitRecord("a1", 3, state=big, workflow_puts=(("big", big),)),
                ]
            )
        expected = "No space left" if driver == "memory" else "disk is full"
        assert expected in str(info.value)

        assert await store.load_state("a1") == StoredState(1, b"old", False)
        assert await store.kv_list("a1", b"") == [(b"k", b"old")]
        assert [e.seq for e in await store.read_history("a1")] == [1]
        assert await store.load_state("a2") == StoredState(0, None, False)
        assert await store.list_alarms("a2") == []
        assert await store.load_workflow("a1") == {"w": b"old"}
        assert await store.load_workflow("a2") == {}

        await store.commit([state_commit("a1", 2, b"after", kv_puts=[(b"k", b"after")])])
        assert await store.load_state("a1") == StoredState(2, b"after", False)
        assert await store.kv_get("a1", b"k") == b"after"
    finally:
        await store.close()


async def test_failed_single_record_commit_changes_nothing(
    driver: str, make_store: StoreFactory
) -> None:
    # A batch of one state-only record is a single INSERT in SQLite (no BEGIN/COMMIT).
    sqlite = driver != "memory"
    store = make_store(pragmas={"max_page_count": 1}) if sqlite else make_store()
    await store.open()
    try:
        await store.commit([state_commit("a1", 1, b"old")])
        if isinstance(store, MemoryDriver):
            store.fail_next_commit(OSError("No space left on device"))
        with pytest.raises(StorageError, match=r"No space left|disk is full"):
            await store.commit([state_commit("a1", 2, os.urandom(1 << 20))])
        assert await store.load_state("a1") == StoredState(1, b"old", False)
        assert [e.seq for e in await store.read_history("a1")] == [1]

        await store.commit([state_commit("a1", 2, b"after")])
        assert await store.load_state("a1") == StoredState(2, b"after", False)
        assert [e.seq for e in await store.read_history("a1")] == [1, 2]
    finally:
        await store.close()


# -- destroy, alarms ---------------------------------------------------------------------


async def test_destroy_frees_key_and_deletes_data(store: ActorStore) -> None:
    await store.create_actor(actor("a1", key=("d",)))
    await store.create_actor(actor("keep", key=("other",)))
    await store.commit(
        [
            state_commit("a1", 1, b"s", initialized=True, kv_puts=[(b"k", b"v")]),
            CommitRecord("a1", 2, alarm_puts=[alarm("a1", "x", 7)]),
            state_commit("keep", 1, b"kept", alarm_puts=[alarm("keep", "y", 8)]),
        ]
    )
    await store.destroy_actor("a1", at_ms=9999)

    assert await store.get_actor("a1") is None
    assert await store.find_actor("counter", ("d",)) is None
    assert [r.actor_id for r in await store.list_actors()] == ["keep"]
    assert await store.load_state("a1") == StoredState(0, None, False)
    assert await store.kv_get("a1", b"k") is None
    assert await store.kv_list("a1", b"") == []
    assert await store.list_alarms("a1") == []
    assert await store.read_history("a1") == []
    assert [a.alarm_id for a in await store.list_alarms()] == ["y"]
    assert await store.load_state("keep") == StoredState(1, b"kept", False)

    await store.create_actor(actor("a2", key=("d",)))
    found = await store.find_actor("counter", ("d",))
    assert found is not None and found.actor_id == "a2"
    await store.destroy_actor("a1", at_ms=10_000)  # destroying twice is a no-op
    assert await store.get_actor("a2") is not None


async def test_list_alarms_of_all_live_actors_in_fire_order(store: ActorStore) -> None:
    for i, name in enumerate(("a", "b", "c")):
        await store.create_actor(actor(name, key=(name,), at=i))
    await store.commit(
        [
            CommitRecord("a", 1, alarm_puts=[alarm("a", "a-late", 300), alarm("a", "z", 100)]),
            CommitRecord("b", 1, alarm_puts=[alarm("b", "b1", 200), alarm("b", "m", 100)]),
            CommitRecord("c", 1, alarm_puts=[alarm("c", "c1", 50)]),
            # Never created: not a live actor, so not listed.
            CommitRecord("ghost", 1, alarm_puts=[alarm("ghost", "g", 1)]),
        ]
    )
    await store.destroy_actor("c", at_ms=1)
    # A commit that lands after the destroy must not make the actor's alarms fire.
    await store.commit([CommitRecord("c", 2, alarm_puts=[alarm("c", "late", 2)])])
    got = await store.list_alarms()
    assert [(a.actor_id, a.alarm_id) for a in got] == [
        ("b", "m"),
        ("a", "z"),
        ("b", "b1"),
        ("a", "a-late"),
    ]
    assert [a.alarm_id for a in await store.list_alarms("a")] == ["z", "a-late"]
    assert [a.alarm_id for a in await store.list_alarms("ghost")] == ["g"]


# -- lifecycle ---------------------------------------------------------------------------


async def test_close_is_idempotent_and_calls_after_close_fail(make_store: StoreFactory) -> None:
    s = make_store()
    await s.open()
    await s.create_actor(actor("a1"))
    await s.close()
    await s.close()
    with pytest.raises(StorageError):
        await s.get_actor("a1")
    with pytest.raises(StorageError):
        await s.commit([state_commit("a1", 1, b"s")])


async def test_reopen_in_same_process_keeps_data(make_store: StoreFactory, driver: str) -> None:
    s = make_store()
    await s.open()
    await s.create_actor(actor("a1"))
    await s.commit([state_commit("a1", 1, b"s", initialized=True, kv_puts=[(b"k", b"v")])])
    await s.close()

    again = s if driver == "memory" else make_store()
    await again.open()
    try:
        assert await again.get_actor("a1") == msgspec.structs.replace(actor("a1"), initialized=True)
        assert await again.load_state("a1") == StoredState(1, b"s", True)
        assert await again.kv_get("a1", b"k") == b"v"
        assert [e.seq for e in await again.read_history("a1")] == [1]
    finally:
        await again.close()


async def test_destroyed_actor_stays_gone_after_reopen(
    driver: str, make_store: StoreFactory
) -> None:
    store = make_store()
    await store.open()
    try:
        await store.create_actor(actor("a1"))
        await store.commit([state_commit("a1", 1, b"s", initialized=True)])
        assert len(await store.read_history("a1")) == 1
        await store.commit([state_commit("a1", seq, b"s%d" % seq) for seq in (2, 3)])
        await store.commit([state_commit("b1", 1, b"b")])
        await store.destroy_actor("a1", at_ms=5)
        assert await store.load_state("a1") == StoredState(0, None, False)
        store = await reopened(store, driver, make_store)
        assert await store.load_state("a1") == StoredState(0, None, False)
        assert await store.read_history("a1") == []
        assert await store.load_state("b1") == StoredState(1, b"b", False)
    finally:
        await store.close()


# -- SQLite only ---------------------------------------------------------------------------


async def test_sqlite_second_driver_in_process_is_refused(tmp_path: Path) -> None:
    first = SQLiteDriver(tmp_path)
    await first.open()
    try:
        with pytest.raises(DataDirLockedError) as info:
            await SQLiteDriver(tmp_path).open()
        assert str(tmp_path) in str(info.value)
    finally:
        await first.close()
    second = SQLiteDriver(tmp_path)
    await second.open()
    await second.close()


@pytest.mark.slow
async def test_sqlite_second_process_gets_data_dir_locked(tmp_path: Path) -> None:
    held = SQLiteDriver(tmp_path / "data")
    await held.open()
    script = textwrap.dedent(
        """
        import asyncio, sys
        from pyrivet.errors import DataDirLockedError
        from pyrivet.storage import SQLiteDriver

        async def main():
            try:
                await SQLiteDriver(sys.argv[1]).open()
            except DataDirLockedError as exc:
                print(exc)
                sys.exit(3)
            sys.exit(0)

        asyncio.run(main())
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SRC_DIR)}
    try:
        proc = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", script, str(tmp_path / "data")],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
    finally:
        await held.close()
    assert proc.returncode == 3, proc.stderr
    message = proc.stdout
    assert str(tmp_path / "data") in message
    assert f"pid {os.getpid()}" in message
    assert "stop that process or pass a different data directory" in message


async def test_sqlite_data_survives_reopen_with_new_driver(tmp_path: Path) -> None:
    first = SQLiteDriver(tmp_path, synchronous="NORMAL")
    await first.open()
    await first.create_actor(actor("a1", key=("a", "b")))
    await first.commit([state_commit("a1", 1, b"s", alarm_puts=[alarm("a1", "x", 3)])])
    await first.close()
    assert (tmp_path / "pyrivet.sqlite3").exists()

    second = SQLiteDriver(tmp_path)
    await second.open()
    try:
        assert await second.find_actor("counter", ("a", "b")) == actor("a1", key=("a", "b"))
        assert await second.load_state("a1") == StoredState(1, b"s", False)
        assert await second.list_alarms() == [alarm("a1", "x", 3)]
    finally:
        await second.close()


async def test_sqlite_rejects_bad_pragma(tmp_path: Path) -> None:
    bad = SQLiteDriver(tmp_path, pragmas={"journal_mode; DROP TABLE actors": 1})
    with pytest.raises(StorageError):
        await bad.open()
    ok = SQLiteDriver(tmp_path)  # the failed open released the lock
    await ok.open()
    assert await ok.list_actors() == []
    await ok.close()


# -- SQLite: the inline fast path -------------------------------------------------------------


async def test_sqlite_commit_on_an_idle_writer_is_done_on_return(tmp_path: Path) -> None:
    # A budget no job reaches: on a loaded machine the creation could overrun the
    # default 5 ms and pause the fast path, which is not what this test is about.
    store = SQLiteDriver(tmp_path, inline_budget=3600.0)
    await store.open()
    try:
        await store.create_actor(actor("a1"))
        written = store.commit([state_commit("a1", 1, b"s1")])
        assert isinstance(written, asyncio.Future) and written.done()
        await written
        assert await store.load_state("a1") == StoredState(1, b"s1", False)
    finally:
        await store.close()


async def test_sqlite_inline_commits_reuse_one_done_future_without_asking_for_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The done future of an inline commit is shared while its loop runs; later commits
    do not call `asyncio.get_running_loop` (a ``getpid`` in Python 3.11)."""
    store = SQLiteDriver(tmp_path, inline_budget=3600.0)
    await store.open()
    try:
        await store.create_actor(actor("a1"))
        first = store.commit([state_commit("a1", 1, b"s1")])

        def no_lookup() -> asyncio.AbstractEventLoop:
            raise AssertionError("asyncio.get_running_loop called (a getpid system call)")

        monkeypatch.setattr(asyncio, "get_running_loop", no_lookup)
        second = store.commit([state_commit("a1", 2, b"s2")])
        monkeypatch.undo()
        assert second is first and first.done()  # type: ignore[attr-defined]
        assert await store.load_state("a1") == StoredState(2, b"s2", False)
    finally:
        await store.close()


async def test_sqlite_inline_off_sends_commits_to_the_writer_thread(tmp_path: Path) -> None:
    store = SQLiteDriver(tmp_path, inline=False)
    await store.open()
    try:
        await store.create_actor(actor("a1"))
        written = store.commit([state_commit("a1", 1, b"s1")])
        assert not written.done()  # type: ignore[attr-defined]
        await written
        assert await store.load_state("a1") == StoredState(1, b"s1", False)
    finally:
        await store.close()


async def test_sqlite_commits_queue_behind_a_busy_writer_and_keep_their_order(
    tmp_path: Path,
) -> None:
    """While the connection is in use on the writer thread, commits queue for it (none
    runs inline ahead of a queued one) and land in submission order."""
    store = SQLiteDriver(tmp_path)
    await store.open()
    try:
        await store.create_actor(actor("a1"))
        writer = store._w()
        release = threading.Event()
        started = threading.Event()

        def hold_the_writer() -> None:
            started.set()
            release.wait(10)

        busy = store._submit(hold_the_writer)
        await asyncio.to_thread(started.wait, 10)
        assert writer.lock.locked()
        first = store.commit([state_commit("a1", 1, b"s1")])
        second = store.commit([state_commit("a1", 2, b"s2")])
        assert not first.done() and not second.done()  # type: ignore[attr-defined]
        release.set()
        await busy
        await first
        await second
        assert await store.load_state("a1") == StoredState(2, b"s2", False)
        assert [e.seq for e in await store.read_history("a1")] == [1, 2]
    finally:
        await store.close()


async def test_sqlite_inline_commit_error_fails_its_future_and_keeps_serving(
    tmp_path: Path,
) -> None:
    store = SQLiteDriver(tmp_path)
    await store.open()
    try:
        await store.create_actor(actor("a1"))
        with pytest.raises(DuplicateKeyError):
            await store.commit([CommitRecord("a2", 1, create=actor("a2"))])  # key of a1
        assert await store.get_actor("a2") is None
        await store.commit([state_commit("a1", 1, b"s1")])
        assert await store.load_state("a1") == StoredState(1, b"s1", False)
    finally:
        await store.close()


async def test_sqlite_a_slow_inline_job_pauses_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An inline job over ``inline_budget`` (a stalling disk) sends the next jobs to the
    writer thread until one of them finishes within the budget; then the fast path
    comes back."""
    from pyrivet.storage import _sqlite

    now = [100.0]
    step = [0.0]  # twice what each clock call adds

    def fake_clock() -> float:
        now[0] += step[0] / 2  # called once before and once after each job
        return now[0]

    monkeypatch.setattr(_sqlite, "_perf_counter", fake_clock)
    store = SQLiteDriver(tmp_path, inline_budget=0.005)
    await store.open()
    try:
        await store.create_actor(actor("a1"))
        step[0] = 0.020  # the disk stalls: 10 ms per job
        assert store.commit([state_commit("a1", 1, b"s1")]).done()  # type: ignore[attr-defined]
        paused = store.commit([state_commit("a1", 2, b"s2")])
        assert not paused.done()  # type: ignore[attr-defined]
        await paused  # 10 ms on the writer thread too: still paused
        step[0] = 0.0  # the disk keeps up again
        probe = store.commit([state_commit("a1", 3, b"s3")])
        assert not probe.done()  # type: ignore[attr-defined]
        await probe  # within the budget on the writer thread: the pause ends
        assert store.commit([state_commit("a1", 4, b"s4")]).done()  # type: ignore[attr-defined]
        assert await store.load_state("a1") == StoredState(4, b"s4", False)
    finally:
        await store.close()


async def test_sqlite_inline_commits_still_trigger_compaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inline commits never pass through the writer thread's loop, so crossing the
    compaction threshold must wake it: the log drains without any further job."""
    monkeypatch.setattr(compaction, "COMPACT_AFTER_ROWS", 8)
    store = SQLiteDriver(tmp_path)
    await store.open()
    try:
        await store.create_actor(actor("a1"))
        for seq in range(1, 10):
            await store.commit([state_commit("a1", seq, b"s%d" % seq)])
        writer = store._w()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while writer.log.rows and loop.time() < deadline:
            await asyncio.to_thread(threading.Event().wait, 0.01)
        assert writer.log.rows == 0
        assert await store.load_state("a1") == StoredState(9, b"s9", False)
    finally:
        await store.close()


async def test_sqlite_fast_path_resumes_once_the_thread_ran_its_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job runs inline as soon as the writer thread has run every job queued before it,
    without waiting for the loop to take in their answers: on a busy loop that lag kept
    jobs queueing on the thread long after it had nothing left to run."""
    ran = threading.Event()
    job_took = SQLiteDriver._job_took

    def took(self: SQLiteDriver, seconds: float) -> None:
        job_took(self, seconds)
        ran.set()

    monkeypatch.setattr(SQLiteDriver, "_job_took", took)
    store = SQLiteDriver(tmp_path)
    await store.open()
    try:
        writer = store._w()
        await store.create_actor(actor("a1"))
        ran.clear()
        queued = store._submit(writer.get_actor, "a1")
        assert ran.wait(10)  # the loop does not turn: the answer stays undelivered
        with writer.lock:  # the thread has let go of the connection
            pass
        assert not queued.done() and store._in_flight == 1
        inline = store.commit([state_commit("a1", 1, b"s1")])
        assert inline.done()  # type: ignore[attr-defined]
        assert (await queued) == actor("a1")
        assert await store.load_state("a1") == StoredState(1, b"s1", False)
    finally:
        await store.close()


async def test_sqlite_reopened_driver_runs_jobs_inline_again(tmp_path: Path) -> None:
    """The counts of submitted and run jobs start again at `open` (the thread of the
    last `close` ran a close job nobody submitted)."""
    store = SQLiteDriver(tmp_path)
    await store.open()
    await store.close()
    await store.open()
    try:
        assert store.commit([state_commit("a1", 1, b"s1")]).done()  # type: ignore[attr-defined]
    finally:
        await store.close()


# -- SQLite: the commit log ------------------------------------------------------------------


def log_rows(data_dir: Path) -> int:
    """Rows in the SQLite driver's commit log, read through a connection of our own."""
    conn = sqlite3.connect(f"file:{data_dir / 'pyrivet.sqlite3'}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM actor_log").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def small_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compact in tiny rounds and steps, so that a short test crosses many of them.

    (Tests using it open stores with ``synchronous="NORMAL"``: compaction does not depend
    on it, and it spares them thousands of fsyncs.)
    """
    monkeypatch.setattr(compaction, "COMPACT_AFTER_ROWS", 16)
    monkeypatch.setattr(compaction, "COMPACT_MAX_ROWS", 24)
    monkeypatch.setattr(compaction, "COMPACT_STEP_ROWS", 4)
    monkeypatch.setattr(compaction, "COMPACT_IDLE_SECONDS", 1e9)


class Op(msgspec.Struct):
    """One call of a generated workload (see `workload`)."""

    kind: str  # "commit", "read" (read_history) or "destroy"
    batch: list[CommitRecord] = msgspec.field(default_factory=list)
    actor_id: str = ""


def workload(seed: int, ops: int = 300, actors: int = 8) -> list[Op]:
    """Random commits (with and without state, event, KV, alarms, workflow records,
    prunes), history reads and destroys of a few actors; seqs only grow and nothing
    commits after a destroy. Odd seeds prune often, even seeds rarely (so wrongly kept
    entries stay visible)."""
    rng = random.Random(seed)
    prune_rate = 0.25 if seed % 2 else 0.04
    seqs: dict[str, int] = {}
    live = [f"a{i}" for i in range(actors)]
    result: list[Op] = []
    for _ in range(ops):
        roll = rng.random()
        if roll < 0.2:
            result.append(Op("read", actor_id=rng.choice(live)))
            continue
        if roll < 0.23 and len(live) > 2:
            victim = rng.choice(live)
            live.remove(victim)
            result.append(Op("destroy", actor_id=victim))
            continue
        batch = []
        for _ in range(rng.randint(1, 6)):
            actor_id = rng.choice(live)
            seq = seqs[actor_id] = seqs.get(actor_id, 0) + 1
            rec = CommitRecord(actor_id, seq)
            if seq == 1:
                rec.create = ActorRecord(actor_id, "w", (actor_id,), created_at_ms=seq)
                rec.initialized = True
            if rng.random() < 0.6:
                rec.state = b"%s@%d" % (actor_id.encode(), seq)
            if rng.random() < 0.85:
                event_state = rng.choice([rec.state, None, b"other-%d" % seq])
                rec.event = HistoryEntry(
                    actor_id, seq, seq, "action", "act", None, b"a", event_state
                )
            if rng.random() < 0.3:
                rec.kv_puts = [(b"k%d" % rng.randint(0, 3), b"v%d" % seq)]
            if rng.random() < 0.1:
                rec.kv_deletes = [b"k%d" % rng.randint(0, 3)]
            if rng.random() < 0.1:
                rec.alarm_puts = [alarm(actor_id, f"{actor_id}-{rng.randint(0, 1)}", seq)]
            if rng.random() < 0.2:
                rec.workflow_deletes = (f"w{rng.randint(0, 2)}",)
                rec.workflow_puts = ((f"w{rng.randint(0, 2)}", b"%d" % seq),)
            if rng.random() < prune_rate:
                rec.prune_history_before = seq + rng.randint(-6, 2)
            batch.append(rec)
        result.append(Op("commit", batch))
    return result


async def apply_op(store: ActorStore, op: Op) -> None:
    if op.kind == "commit":
        await store.commit(op.batch)
    elif op.kind == "read":
        await store.read_history(op.actor_id)
    else:
        await store.destroy_actor(op.actor_id, at_ms=1)


async def snapshot_of(store: ActorStore, actor_ids: list[str]) -> list[Any]:
    """Everything the store says about these actors."""
    return [
        (
            await store.get_actor(a),
            await store.load_state(a),
            await store.read_history(a),
            await store.kv_list(a, b""),
            await store.list_alarms(a),
            await store.load_workflow(a),
        )
        for a in actor_ids
    ] + [await store.list_actors(), await store.list_alarms()]


ACTOR_IDS = [f"a{i}" for i in range(8)]


async def crash_image(store: SQLiteDriver, into: Path) -> None:
    """Copy into ``into`` what a crash right now would leave: every committed transaction."""

    def copy() -> None:  # a job of the writer thread: it is between two transactions
        into.mkdir()
        target = sqlite3.connect(into / "pyrivet.sqlite3")
        try:
            store._w().conn.backup(target)
        finally:
            target.close()

    await store._call(copy)


@pytest.mark.usefixtures("small_rounds")
@pytest.mark.parametrize(
    ("seed", "pace"),
    [(7, "step-per-job"), (8, "step-per-job"), (7, "eager"), (8, "idle-always")],
)
async def test_sqlite_compaction_and_recovery_match_memory_driver(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    pace: str,
    seed: int,
) -> None:
    """Replay a random workload on both drivers; compare what they return, and what the
    SQLite driver recovers from crash images taken along the way (mid-round ones too).

    ``pace``: "step-per-job" runs one compaction step after each job only (no pause
    between steps), so rounds span several calls; "eager" also runs steps while the
    writer is idle (a round then mostly ends before the next call); "idle-always" starts
    rounds whenever idle too.
    """
    if pace == "step-per-job":
        monkeypatch.setattr(compaction.CommitLog, "idle_wait", lambda self: None)
        monkeypatch.setattr(compaction, "COMPACT_ROUND_PAUSE", 0.0)
    if pace == "idle-always":
        monkeypatch.setattr(compaction, "COMPACT_IDLE_SECONDS", 0.0)
    oracle, store = MemoryDriver(), SQLiteDriver(tmp_path / "data", synchronous="NORMAL")
    await oracle.open()
    await store.open()
    try:
        for i, op in enumerate(workload(seed)):
            await apply_op(oracle, op)
            await apply_op(store, op)
            for a in ACTOR_IDS:
                assert await store.load_state(a) == await oracle.load_state(a), (i, a)
            if i % 50 == 49:
                expected = await snapshot_of(oracle, ACTOR_IDS)
                assert await snapshot_of(store, ACTOR_IDS) == expected, i
            if op.kind == "destroy" or i % 8 == 0:
                await crash_image(store, tmp_path / f"crash{i}")
                recovered = SQLiteDriver(tmp_path / f"crash{i}", synchronous="NORMAL")
                await recovered.open()
                try:
                    expected = await snapshot_of(oracle, ACTOR_IDS)
                    assert await snapshot_of(recovered, ACTOR_IDS) == expected, i
                finally:
                    await recovered.close()
        assert await snapshot_of(store, ACTOR_IDS) == await snapshot_of(oracle, ACTOR_IDS)
        await store.close()
        assert log_rows(tmp_path / "data") == 0
        store = SQLiteDriver(tmp_path / "data", synchronous="NORMAL")
        await store.open()
        assert await snapshot_of(store, ACTOR_IDS) == await snapshot_of(oracle, ACTOR_IDS)
    finally:
        await store.close()
    assert "pyrivet.storage" not in {r.name for r in caplog.records}


@pytest.mark.slow
@pytest.mark.usefixtures("small_rounds")
@pytest.mark.parametrize("seed", [1, 2])
async def test_sqlite_recovers_the_commit_log_after_a_crash(tmp_path: Path, seed: int) -> None:
    """A process that dies without closing (mid-round, most likely) loses nothing."""
    ops = workload(seed)
    (tmp_path / "ops").write_bytes(msgspec.msgpack.encode(ops))
    script = textwrap.dedent(
        """
        import asyncio, os, sys
        import msgspec
        from pyrivet.storage import SQLiteDriver, _sqlite_compaction as c
        sys.path.insert(0, sys.argv[3])
        from test_store_contract import Op, apply_op

        c.COMPACT_AFTER_ROWS, c.COMPACT_MAX_ROWS, c.COMPACT_STEP_ROWS = 16, 24, 4
        c.COMPACT_IDLE_SECONDS = 1e9

        async def main():
            store = SQLiteDriver(sys.argv[1], synchronous="NORMAL")
            await store.open()
            for op in msgspec.msgpack.decode(open(sys.argv[2], "rb").read(), type=list[Op]):
                await apply_op(store, op)
            os._exit(0)  # a crash: no close, no final compaction

        asyncio.run(main())
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SRC_DIR)}
    proc = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-c",
            script,
            str(tmp_path / "data"),
            str(tmp_path / "ops"),
            str(Path(__file__).parent),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert log_rows(tmp_path / "data") > 0  # there is something to recover

    oracle = MemoryDriver()
    await oracle.open()
    for op in ops:
        await apply_op(oracle, op)
    store = SQLiteDriver(tmp_path / "data", synchronous="NORMAL")
    await store.open()
    try:
        assert log_rows(tmp_path / "data") == 0
        assert await snapshot_of(store, ACTOR_IDS) == await snapshot_of(oracle, ACTOR_IDS)
    finally:
        await store.close()


@pytest.mark.usefixtures("small_rounds")
async def test_sqlite_calls_in_the_middle_of_a_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads and destroys of actors a compaction round already moved (their rows stay in
    the log until the round ends), and a crash right then."""
    monkeypatch.setattr(compaction, "COMPACT_AFTER_ROWS", 24)
    monkeypatch.setattr(compaction.CommitLog, "idle_wait", lambda self: None)  # 1 step a job
    monkeypatch.setattr(compaction, "COMPACT_ROUND_PAUSE", 0.0)
    ids = [f"{c}1" for c in "abcdefghijkl"]  # 12 actors x 2 rows: a round of 6 steps
    ops = [
        Op("commit", [state_commit(a, 1, b"s1") for a in ids]),
        # The round starts after this job, its first step moves a1 and b1.
        Op(
            "commit",
            [state_commit(a, 2, b"s2", prune_history_before=2 if a == "a1" else None) for a in ids],
        ),
        Op(
            "commit",
            [state_commit("a1", 3, b"s3"), state_commit("b1", 3, b"s3", prune_history_before=3)],
        ),
        Op("read", actor_id="a1"),  # must not move a1's seq 1 again: it was pruned
        Op("read", actor_id="b1"),  # must delete b1's moved rows with its new ones
        Op("destroy", actor_id="c1"),  # moved by the round's 2nd step, must go anyway
    ]
    oracle, store = MemoryDriver(), SQLiteDriver(tmp_path / "data", synchronous="NORMAL")
    await oracle.open()
    await store.open()
    try:
        for op in ops:
            await apply_op(oracle, op)
            await apply_op(store, op)
        await crash_image(store, tmp_path / "crash")  # the round's 6th step is still to come
        expected = await snapshot_of(oracle, ids)
        assert [e.seq for e in expected[0][2]] == [2, 3]
        assert [e.seq for e in expected[1][2]] == [3]
        assert expected[2][1] == StoredState(0, None, False)
        recovered = SQLiteDriver(tmp_path / "crash", synchronous="NORMAL")
        await recovered.open()
        try:
            assert await snapshot_of(recovered, ids) == expected
        finally:
            await recovered.close()
        assert await snapshot_of(store, ids) == expected
    finally:
        await store.close()


def test_sqlite_compaction_leaves_out_entries_a_later_commit_pruned(tmp_path: Path) -> None:
    """A history entry below its actor's prune bound never reaches ``actor_events``
    (the step would delete it again at once); the entries at or above the bound do, and
    so do the entries of an actor with no prune."""
    writer = Writer(tmp_path / "db.sqlite3", "NORMAL", {})
    writer.connect()
    try:
        for actor_id in ("a1", "a2"):
            writer.insert_actor(actor(actor_id, key=(actor_id,)), False)
        for seq in range(1, 31):  # a1 keeps 5 entries (bound seq - 4), a2 all of them
            writer.commit(
                [
                    state_commit("a1", seq, b"s", prune_history_before=max(1, seq - 4)),
                    state_commit("a2", seq, b"s"),
                ]
            )
        conn = writer.conn
        conn.execute("CREATE TEMP TABLE moved (actor_id TEXT, seq INTEGER)")
        conn.execute(
            "CREATE TEMP TRIGGER count_moved AFTER INSERT ON main.actor_events "
            "BEGIN INSERT INTO moved VALUES (new.actor_id, new.seq); END"
        )
        writer.log.compact_all(writer.cur)
        moved = conn.execute("SELECT actor_id, seq FROM moved ORDER BY 1, 2").fetchall()
        assert moved == [("a1", s) for s in range(26, 31)] + [("a2", s) for s in range(1, 31)]
        assert [e.seq for e in writer.read_history("a1", 0, None)] == list(range(26, 31))
        assert len(writer.read_history("a2", 0, None)) == 30
    finally:
        writer.close()


def test_sqlite_compaction_looks_up_no_bound_where_nothing_is_below_it(tmp_path: Path) -> None:
    """An actor whose prune bound is not above its oldest entry in the log (a few rows
    per actor, as with many actors) is moved without a bound to look up."""
    writer = Writer(tmp_path / "db.sqlite3", "NORMAL", {})
    writer.connect()
    try:
        writer.insert_actor(actor("a1"), False)
        writer.commit([state_commit("a1", 1, b"s")])
        writer.log.compact_all(writer.cur)
        for seq in range(2, 6):  # each prunes seq 1 alone, already out of the log
            writer.commit([state_commit("a1", seq, b"s", prune_history_before=2)])
        assert writer.log.latest["a1"].first_seq == 2
        writer.log.compact_all(writer.cur)
        assert writer.cur.execute("SELECT count(*) FROM temp.compact_bounds").fetchone() == (0,)
        assert [e.seq for e in writer.read_history("a1", 0, None)] == [2, 3, 4, 5]
    finally:
        writer.close()


async def test_sqlite_reads_the_log_before_compaction(tmp_path: Path) -> None:
    store = SQLiteDriver(tmp_path)
    await store.open()
    try:
        await store.create_actor(actor("a1"))
        await store.commit([state_commit("a1", 1, b"s1", initialized=True)])
        await store.commit([CommitRecord("a1", 2, kv_puts=[(b"k", b"v")])])
        assert log_rows(tmp_path) == 2  # nothing compacted yet
        assert await store.load_state("a1") == StoredState(2, b"s1", True)
        assert await store.kv_get("a1", b"k") == b"v"
        # Nothing can be newer than the latest seq: answered without compacting.
        assert await store.read_history("a1", after_seq=2) == []
        assert log_rows(tmp_path) == 2
        assert [e.seq for e in await store.read_history("a1")] == [1]
        assert log_rows(tmp_path) == 0  # read_history moved the actor's rows
        assert await store.load_state("a1") == StoredState(2, b"s1", True)
    finally:
        await store.close()


async def test_sqlite_checkpointer_thread_stops_with_the_driver(tmp_path: Path) -> None:
    def checkpointers() -> int:
        return sum(t.name == "pyrivet-sqlite-checkpointer" for t in threading.enumerate())

    before = checkpointers()
    store = SQLiteDriver(tmp_path)
    await store.open()
    assert checkpointers() == before + 1
    await store.commit([state_commit("a1", 1, b"s")])
    await store.close()
    assert checkpointers() == before


async def test_sqlite_compacts_when_idle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compaction, "COMPACT_IDLE_SECONDS", 0.05)
    store = SQLiteDriver(tmp_path)
    await store.open()
    try:
        await store.commit([state_commit(f"a{i}", 1, b"s") for i in range(10)])
        for _ in range(100):
            if log_rows(tmp_path) == 0:
                break
            await asyncio.sleep(0.02)
        assert log_rows(tmp_path) == 0
        assert await store.load_state("a3") == StoredState(1, b"s", False)
    finally:
        await store.close()


async def test_sqlite_failed_compaction_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteDriver(tmp_path)
    await store.open()
    await store.commit([state_commit("a1", seq, b"s%d" % seq) for seq in (1, 2)])
    monkeypatch.setattr(compaction, "_UPSERT_STATE", "INSERT INTO no_such_table VALUES (?, ?, ?)")
    with pytest.raises(StorageError, match="no_such_table"):
        await store.read_history("a1")
    await store.commit([state_commit("a1", 3, b"s3")])
    assert await store.load_state("a1") == StoredState(3, b"s3", False)
    await store.close()  # its compaction fails too: the rows stay in the log
    assert "close: compacting the commit log failed" in caplog.text
    assert log_rows(tmp_path) == 3

    monkeypatch.undo()
    store = SQLiteDriver(tmp_path)
    await store.open()
    try:
        assert log_rows(tmp_path) == 0
        assert await store.load_state("a1") == StoredState(3, b"s3", False)
        assert [e.seq for e in await store.read_history("a1")] == [1, 2, 3]
    finally:
        await store.close()


def old_database(data_dir: Path, version: int, *statements: str) -> None:
    """A database of schema ``version`` in ``data_dir`` holding what ``statements`` write."""
    conn = sqlite3.connect(data_dir / "pyrivet.sqlite3", isolation_level=None)
    for migration in MIGRATIONS[:version]:
        for statement in migration:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    for statement in statements:
        conn.execute(statement)
    conn.close()


async def test_sqlite_upgrades_a_version_1_database(tmp_path: Path) -> None:
    old_database(
        tmp_path,
        1,
        "INSERT INTO actor_state VALUES ('a1', 4, x'01')",
        "INSERT INTO actor_events VALUES ('a1', 4, 1, 'action', NULL, NULL, NULL, NULL, NULL)",
    )
    store = SQLiteDriver(tmp_path)
    await store.open()
    try:
        assert await store.load_state("a1") == StoredState(4, b"\x01", False)
        await store.commit([CommitRecord("a1", 5, event=event("a1", 5))])
        assert await store.load_state("a1") == StoredState(5, b"\x01", False)
        assert [e.seq for e in await store.read_history("a1")] == [4, 5]
        # The upgrade added the queue tables (version 3).
        await store.commit([CommitRecord("a1", 6, queue_puts=(message(1),))])
        assert await store.load_queue("a1") == StoredQueue(1, [message(1)])
    finally:
        await store.close()


# -- queues ------------------------------------------------------------------------------


def message(message_id: int, name: str = "jobs", body: bytes = b"b") -> QueueMessageRecord:
    return QueueMessageRecord(message_id, name, body, 1000 + message_id)


async def test_queue_puts_and_deletes_keep_id_order_and_the_high_water_mark(
    store: ActorStore, driver: str, make_store: StoreFactory
) -> None:
    assert await store.load_queue("a1") == StoredQueue(0, [])
    await store.create_actor(actor("a1"))
    await store.commit(
        [
            CommitRecord(
                "a1",
                1,
                queue_puts=(
                    message(1),
                    message(2, "other"),
                ),
            ),
            CommitRecord("a1", 2, queue_puts=(message(3),), queue_deletes=(1,)),
        ]
    )
    assert await store.load_queue("a1") == StoredQueue(3, [message(2, "other"), message(3)])
    # Deleting every message keeps the highest id: a later message never reuses one.
    await store.commit(
        [
            CommitRecord(
                "a1",
                3,
                queue_deletes=(
                    2,
                    3,
                ),
            )
        ]
    )
    assert await store.load_queue("a1") == StoredQueue(3, [])
    store = await reopened(store, driver, make_store)
    try:
        assert await store.load_queue("a1") == StoredQueue(3, [])
        assert await store.load_queue("other") == StoredQueue(0, [])
    finally:
        await store.close()


async def test_queue_put_and_delete_in_one_batch_leaves_nothing(store: ActorStore) -> None:
    await store.create_actor(actor("a1"))
    await store.commit(
        [
            CommitRecord("a1", 1, queue_puts=(message(1),)),
            CommitRecord("a1", 2, queue_deletes=(1,)),
        ]
    )
    assert await store.load_queue("a1") == StoredQueue(1, [])


async def test_queue_put_and_delete_in_one_record_keeps_only_the_high_water_mark(
    store: ActorStore, driver: str, make_store: StoreFactory
) -> None:
    # A waiting sender's round trip: the message is sent, received and completed before
    # the commit is written, so one record puts and deletes it (beside other changes).
    await store.create_actor(actor("a1"))
    await store.create_actor(actor("b1", key=("b",)))
    await store.commit([CommitRecord("a1", 1, queue_puts=(message(1),))])
    await store.commit(
        [
            CommitRecord(
                "a1", 2, queue_puts=(message(2), message(3), message(4)), queue_deletes=(1, 3)
            ),
            CommitRecord("b1", 1, queue_puts=(message(1),), queue_deletes=(1,)),
        ]
    )
    assert await store.load_queue("a1") == StoredQueue(4, [message(2), message(4)])
    assert await store.load_queue("b1") == StoredQueue(1, [])
    store = await reopened(store, driver, make_store)
    try:
        assert await store.load_queue("a1") == StoredQueue(4, [message(2), message(4)])
        assert await store.load_queue("b1") == StoredQueue(1, [])
    finally:
        await store.close()


async def test_failed_commit_writes_no_queue_change(store: ActorStore) -> None:
    await store.create_actor(actor("a1"))
    await store.commit([CommitRecord("a1", 1, queue_puts=(message(1),))])
    await store.create_actor(actor("b1", key=("b",)))
    with pytest.raises(DuplicateKeyError):
        await store.commit(
            [
                CommitRecord("a1", 2, queue_puts=(message(2),), queue_deletes=(1,)),
                CommitRecord("c1", 1, create=actor("c1", key=("b",))),
            ]
        )
    assert await store.load_queue("a1") == StoredQueue(1, [message(1)])


async def test_destroy_deletes_the_queue(store: ActorStore) -> None:
    await store.create_actor(actor("a1"))
    await store.commit([CommitRecord("a1", 1, queue_puts=(message(1),))])
    await store.destroy_actor("a1", 5)
    assert await store.load_queue("a1") == StoredQueue(0, [])


# -- workflow records ----------------------------------------------------------------------


async def test_workflow_records_land_with_the_state_and_survive_reopen(
    store: ActorStore, driver: str, make_store: StoreFactory
) -> None:
    assert await store.load_workflow("a1") == {}
    await store.create_actor(actor("a1"))
    # A lone record: on SQLite its log row alone, the records inside it.
    await store.commit(
        [state_commit("a1", 1, b"s1", workflow_puts=(("meta", b"m"), ("e/1", b"x")))]
    )
    assert await store.load_state("a1") == StoredState(1, b"s1", False)
    assert await store.load_workflow("a1") == {"meta": b"m", "e/1": b"x"}
    await store.commit(
        [
            state_commit("a1", 2, b"s2", workflow_puts=(("e/2", b"y"),), workflow_deletes=("e/1",)),
            CommitRecord("b1", 1, workflow_puts=(("meta", b"other"),)),
        ]
    )
    store = await reopened(store, driver, make_store)
    try:
        assert await store.load_state("a1") == StoredState(2, b"s2", False)
        assert await store.load_workflow("a1") == {"meta": b"m", "e/2": b"y"}
        assert await store.load_workflow("b1") == {"meta": b"other"}
        assert await store.load_workflow("unknown") == {}
    finally:
        await store.close()


async def test_workflow_deletes_apply_before_puts_of_a_record(store: ActorStore) -> None:
    await store.commit([CommitRecord("a1", 1, workflow_puts=(("k", b"1"), ("gone", b"g")))])
    await store.commit(
        [CommitRecord("a1", 2, workflow_puts=(("k", b"2"),), workflow_deletes=("k", "gone"))]
    )
    assert await store.load_workflow("a1") == {"k": b"2"}
    # Across records of one batch, record order decides: the later delete wins.
    await store.commit(
        [
            CommitRecord("a1", 3, workflow_puts=(("n", b"n"),)),
            CommitRecord("a1", 4, workflow_deletes=("n", "k")),
        ]
    )
    assert await store.load_workflow("a1") == {}


async def test_failed_commit_writes_no_workflow_change(store: ActorStore) -> None:
    await store.create_actor(actor("a1"))
    await store.commit([CommitRecord("a1", 1, workflow_puts=(("k", b"old"),))])
    await store.create_actor(actor("b1", key=("b",)))
    with pytest.raises(DuplicateKeyError):
        await store.commit(
            [
                CommitRecord(
                    "a1", 2, state=b"s", workflow_puts=(("new", b"n"),), workflow_deletes=("k",)
                ),
                CommitRecord("c1", 1, create=actor("c1", key=("b",)), workflow_puts=(("c", b"c"),)),
            ]
        )
    assert await store.load_workflow("a1") == {"k": b"old"}
    assert await store.load_workflow("c1") == {}
    assert await store.load_state("a1") == StoredState(1, None, False)


async def test_destroy_deletes_the_workflow_records(
    store: ActorStore, driver: str, make_store: StoreFactory
) -> None:
    await store.create_actor(actor("a1"))
    await store.create_actor(actor("keep", key=("other",)))
    await store.commit(
        [
            CommitRecord("a1", 1, workflow_puts=(("k", b"v"),)),
            CommitRecord("keep", 1, workflow_puts=(("k", b"kept"),)),
        ]
    )
    await store.destroy_actor("a1", 5)
    assert await store.load_workflow("a1") == {}
    store = await reopened(store, driver, make_store)
    try:
        assert await store.load_workflow("a1") == {}
        assert await store.load_workflow("keep") == {"k": b"kept"}
    finally:
        await store.close()


def test_workflow_writes_ride_in_the_log_row() -> None:
    assert not CommitRecord("a1", 1, state=b"s", event=event("a1", 1)).writes_beyond_log()
    step = CommitRecord("a1", 1, workflow_puts=(("k", b"v"),), workflow_deletes=("j",))
    assert not step.writes_beyond_log()
    assert CommitRecord("a1", 1, kv_puts=[(b"k", b"v")]).writes_beyond_log()


async def test_sqlite_reads_workflow_records_from_the_log_and_after_compaction(
    tmp_path: Path,
) -> None:
    """Workflow records wait in the commit log (a lone step is one log row) and are read
    from there, over what compaction already moved, in commit order."""
    store = SQLiteDriver(tmp_path)
    await store.open()
    try:
        await store.commit([state_commit("a1", 1, b"s1", workflow_puts=(("k", b"1"),))])
        await store.read_history("a1")  # moves a1's rows: "k" is in actor_workflow now
        assert log_rows(tmp_path) == 0
        await store.commit(
            [state_commit("a1", 2, b"s2", workflow_puts=(("k", b"2"), ("gone", b"g")))]
        )
        await store.commit(
            [
                state_commit("a1", 3, b"s3", workflow_deletes=("gone",)),
                CommitRecord("b1", 1, workflow_puts=(("k", b"b"),)),
                CommitRecord("a1", 4, workflow_puts=(("n", b"4"),)),
            ]
        )
        assert log_rows(tmp_path) == 4
        assert await store.load_workflow("a1") == {"k": b"2", "n": b"4"}
        assert await store.load_workflow("b1") == {"k": b"b"}
        assert log_rows(tmp_path) == 4  # read without compacting
        await store.read_history("a1")
        assert log_rows(tmp_path) == 1
        assert await store.load_workflow("a1") == {"k": b"2", "n": b"4"}
    finally:
        await store.close()
    assert log_rows(tmp_path) == 0
    store = SQLiteDriver(tmp_path)
    await store.open()
    try:
        assert await store.load_workflow("a1") == {"k": b"2", "n": b"4"}
        assert await store.load_workflow("b1") == {"k": b"b"}
    finally:
        await store.close()


async def test_sqlite_upgrades_a_version_4_database_with_rows_in_its_log(
    tmp_path: Path,
) -> None:
    """A crash left log rows of version 4 (no workflow column) beside records in
    ``actor_workflow``: both survive the upgrade to 5."""
    old_database(
        tmp_path,
        4,
        "INSERT INTO actor_workflow VALUES ('a1', 'k', x'01')",
        "INSERT INTO actor_log (rowid, actor_id, seq, at_ms, kind, state, flags) "
        "VALUES (1, 'a1', 1, 7, 'action', x'73', 3)",
    )
    store = SQLiteDriver(tmp_path)
    await store.open()
    try:
        assert await store.load_state("a1") == StoredState(1, b"s", False)
        assert await store.load_workflow("a1") == {"k": b"\x01"}
        await store.commit([state_commit("a1", 2, b"t", workflow_puts=(("k", b"2"),))])
        assert await store.load_workflow("a1") == {"k": b"2"}
        assert [e.seq for e in await store.read_history("a1")] == [1, 2]
    finally:
        await store.close()


async def test_sqlite_upgrades_a_version_3_database(tmp_path: Path) -> None:
    old_database(
        tmp_path,
        3,
        "INSERT INTO actor_state VALUES ('a1', 4, x'01')",
        "INSERT INTO actor_kv VALUES ('a1', x'6b', x'76')",
        "INSERT INTO actor_queue VALUES ('a1', 1, 'jobs', x'62', 1001)",
        "INSERT INTO actor_queue_ids VALUES ('a1', 1)",
    )
    store = SQLiteDriver(tmp_path)
    await store.open()
    try:
        assert await store.load_state("a1") == StoredState(4, b"\x01", False)
        assert await store.kv_get("a1", b"k") == b"v"
        assert await store.load_queue("a1") == StoredQueue(1, [message(1)])
        assert await store.load_workflow("a1") == {}
        await store.commit([CommitRecord("a1", 5, workflow_puts=(("k", b"w"),))])
        assert await store.load_workflow("a1") == {"k": b"w"}
    finally:
        await store.close()
    conn = sqlite3.connect(tmp_path / "pyrivet.sqlite3")
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 5
    finally:
        conn.close()
