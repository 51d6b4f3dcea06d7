"""The `ActorStore` contract, run against every storage driver."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
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
    SQLiteDriver,
    StoredState,
)

SRC_DIR = Path(__file__).resolve().parents[2] / "src"
DRIVERS = ["memory", "sqlite"]

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
    assert await store.load_state("a1") == StoredState(2, b"two", False)
    assert await store.kv_get("a1", b"k") == b"3"

    await store.commit([CommitRecord("a1", 4, alarm_puts=[alarm("a1", "z", 9)])])
    assert await store.load_state("a1") == StoredState(2, b"two", False)
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


async def test_failed_commit_changes_nothing(driver: str, make_store: StoreFactory) -> None:
    # SQLite: max_page_count below the current size is clamped to it, so the file cannot
    # grow and a large value fails with "database or disk is full".
    store = make_store(pragmas={"max_page_count": 1}) if driver == "sqlite" else make_store()
    await store.open()
    try:
        await store.create_actor(actor("a1"))
        await store.commit([state_commit("a1", 1, b"old", kv_puts=[(b"k", b"old")])])
        if isinstance(store, MemoryDriver):
            store.fail_next_commit(OSError("No space left on device"))
        big = os.urandom(1 << 20)
        with pytest.raises(StorageError) as info:
            await store.commit(
                [
                    state_commit("a1", 2, b"new", kv_puts=[(b"k", b"new")], kv_deletes=[b"k"]),
                    state_commit("a2", 1, b"x", alarm_puts=[alarm("a2", "al", 1)]),
                    CommitRecord("a1", 3, state=big, kv_puts=[(b"big", big)]),
                ]
            )
        expected = "No space left" if driver == "memory" else "disk is full"
        assert expected in str(info.value)

        assert await store.load_state("a1") == StoredState(1, b"old", False)
        assert await store.kv_list("a1", b"") == [(b"k", b"old")]
        assert [e.seq for e in await store.read_history("a1")] == [1]
        assert await store.load_state("a2") == StoredState(0, None, False)
        assert await store.list_alarms("a2") == []

        await store.commit([state_commit("a1", 2, b"after", kv_puts=[(b"k", b"after")])])
        assert await store.load_state("a1") == StoredState(2, b"after", False)
        assert await store.kv_get("a1", b"k") == b"after"
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
