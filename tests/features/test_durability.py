"""Durability: the output gate, group commit, relaxed mode, history, failed commits."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import pytest

from pyrivet import ActorOptions, CommitError, Registry, actor
from pyrivet._runtime.committer import MAX_INLINE_STREAK
from pyrivet.storage import ActorStore, CommitRecord, MemoryDriver, SQLiteDriver
from pyrivet.storage._sqlite import DB_FILE
from pyrivet.testing import MockClock, run_actors

DriverFactory = Callable[[], ActorStore]


class GatedStore:
    """Wraps a driver: while ``hold`` is set, commits wait for ``release`` before writing.

    ``fail_next`` makes the next commit raise without writing (on any driver).
    """

    def __init__(self, inner: ActorStore) -> None:
        self.inner = inner
        self.hold = False
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.fail_next: Exception | None = None
        self.commits = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def commit(self, batch: Sequence[CommitRecord]) -> None:
        if self.hold:
            self.entered.set()
            await self.release.wait()
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        await self.inner.commit(batch)
        self.commits += 1


async def spin(rounds: int = 50) -> None:
    """Let the event loop run a while (no wall-clock time passes in the test)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def counter_def(name: str = "counter", **options: Any) -> Any:
    counter = actor(name, state={"count": 0}, options=ActorOptions(**options))

    @counter.action
    def increment(c: Any, amount: int = 1) -> int:
        c.state["count"] += amount
        c.broadcast("count", c.state["count"])
        return int(c.state["count"])

    @counter.action
    def get(c: Any) -> int:
        return int(c.state["count"])

    @counter.action
    def big(c: Any, size: int) -> int:
        c.state["blob"] = "x" * size
        c.broadcast("count", -1)
        return size

    return counter


# -- the output gate ------------------------------------------------------------------


async def test_reply_and_event_wait_until_commit_is_durable(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    store = GatedStore(driver_factory())
    counter = counter_def()
    async with run_actors(Registry([counter]), storage=store, clock=clock) as (runtime, client):
        handle = client.get_or_create("counter", ["a"])
        assert await handle.increment() == 1
        seen: list[int] = []
        async with handle.connect() as conn:
            conn.on("count", seen.append)
            store.hold = True
            call = asyncio.ensure_future(handle.increment(5))
            await store.entered.wait()
            await spin()
            assert not call.done(), "the reply left before the commit was durable"
            assert seen == [], "the event left before the commit was durable"
            # Storage still holds the state before this change.
            stored = await store.inner.load_state(await handle.resolve())
            assert stored.seq == 2
            store.hold = False
            store.release.set()
            assert await call == 6
            assert seen == [6]
        entries = await runtime.history(await handle.resolve())
        assert [e.state for e in entries if e.kind == "action"][-1] == {"count": 6}


async def test_later_reply_without_change_waits_for_earlier_change(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    store = GatedStore(driver_factory())
    counter = counter_def()
    async with run_actors(Registry([counter]), storage=store, clock=clock) as (_, client):
        handle = client.get_or_create("counter", ["a"])
        await handle.get()
        store.hold = True
        write = asyncio.ensure_future(handle.increment())
        await store.entered.wait()
        read = asyncio.ensure_future(handle.get())
        await spin()
        # The read saw the new value, so it must not be released before that value is durable.
        assert not write.done()
        assert not read.done()
        store.hold = False
        store.release.set()
        assert await write == 1
        assert await read == 1


async def test_group_commit_batches_many_actors(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    counter = counter_def()
    async with run_actors(Registry([counter]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handles = [client.get_or_create("counter", [f"k{i}"]) for i in range(64)]
        await asyncio.gather(*(h.get() for h in handles))
        batches0, records0 = runtime.committer_stats()
        results = await asyncio.gather(*(h.increment(i + 1) for i, h in enumerate(handles)))
        assert results == list(range(1, 65))
        batches, records = runtime.committer_stats()
        assert records - records0 == 64
        assert 1 <= batches - batches0 < records - records0


async def test_read_only_action_writes_nothing(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    counter = counter_def()
    async with run_actors(Registry([counter]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("counter", ["a"])
        await handle.increment(2)
        actor_id = await handle.resolve()
        before = await runtime.history(actor_id)
        stats = runtime.committer_stats()
        for _ in range(5):
            assert await handle.get() == 2
        assert runtime.committer_stats() == stats
        assert await runtime.history(actor_id) == before
        # A write that leaves the state as it was is not a change either.
        await handle.increment(0)
        assert runtime.committer_stats() == stats


# -- relaxed durability ----------------------------------------------------------------


async def test_relaxed_reply_is_not_gated(driver_factory: DriverFactory, clock: MockClock) -> None:
    store = GatedStore(driver_factory())
    counter = counter_def(durability="relaxed", state_save_interval=1.0)
    async with run_actors(Registry([counter]), storage=store, clock=clock) as (_, client):
        handle = client.get_or_create("counter", ["a"])
        await handle.get()
        seen: list[int] = []
        async with handle.connect() as conn:
            conn.on("count", seen.append)
            store.hold = True
            # Nothing is durable while the store is held, yet replies and events flow.
            assert await handle.increment() == 1
            assert await handle.increment() == 2
            assert seen == [1, 2]
            store.hold = False
            store.release.set()


async def test_relaxed_saves_after_interval(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    counter = counter_def(durability="relaxed", state_save_interval=2.0)
    async with run_actors(Registry([counter]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("counter", ["a"])
        assert await handle.increment(3) == 3
        actor_id = await handle.resolve()

        def saved(entries: list[Any]) -> list[Any]:
            return [e.state for e in entries if e.kind == "save"]

        assert saved(await runtime.history(actor_id)) == []
        await clock.advance(1.9)
        assert saved(await runtime.history(actor_id)) == []
        await clock.advance(0.2)
        assert saved(await runtime.history(actor_id)) == [{"count": 3}]
        # Two more changes in one interval coalesce into one save.
        await handle.increment()
        await handle.increment()
        await clock.advance(1.0)
        assert saved(await runtime.history(actor_id)) == [{"count": 3}]
        await clock.advance(1.1)
        assert saved(await runtime.history(actor_id)) == [{"count": 3}, {"count": 5}]


async def test_relaxed_saves_on_sleep(driver_factory: DriverFactory, clock: MockClock) -> None:
    counter = counter_def(durability="relaxed", state_save_interval=1000.0, sleep_timeout=5.0)
    async with run_actors(Registry([counter]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("counter", ["a"])
        await handle.increment(7)
        actor_id = await handle.resolve()
        await clock.advance(4.9)
        assert [e.kind for e in await runtime.history(actor_id)] == ["create"]
        await clock.advance(0.2)
        assert not runtime.is_awake(actor_id)
        entries = await runtime.history(actor_id)
        assert [e.kind for e in entries] == ["create", "sleep"]
        assert entries[-1].state == {"count": 7}
        assert await handle.get() == 7
        # The cancelled save timer does not write anything later.
        await clock.advance(2000)
        assert len(await runtime.history(actor_id)) == 2


# -- history ---------------------------------------------------------------------------


async def test_history_records_each_change(driver_factory: DriverFactory, clock: MockClock) -> None:
    counter = counter_def()
    async with run_actors(Registry([counter]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("counter", ["a"])
        await handle.increment(5)
        await clock.advance(10)
        await handle.get()
        async with handle.connect() as conn:
            await conn.increment(2)
            conn_id = conn.connection_id
        actor_id = await handle.resolve()
        entries = await runtime.history(actor_id)
        assert [(e.seq, e.kind, e.name, e.args, e.state) for e in entries] == [
            (1, "create", None, None, {"count": 0}),
            (2, "action", "increment", [5], {"count": 5}),
            (3, "action", "increment", [2], {"count": 7}),
        ]
        assert all(e.state_changed for e in entries)
        assert entries[1].by is None
        assert entries[2].by == conn_id
        assert entries[1].at == pytest.approx(clock.now() - 10)
        assert entries[2].at == pytest.approx(clock.now())
        assert await runtime.state_at(actor_id, 1) == {"count": 0}
        assert await runtime.state_at(actor_id, 2) == {"count": 5}
        assert await runtime.state_at(actor_id, 3) == {"count": 7}
        assert await runtime.state_at(actor_id, 99) == {"count": 7}
        assert [e.seq for e in await runtime.history(actor_id, after_seq=1, limit=1)] == [2]


async def test_history_retention_prunes_old_entries(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    counter = counter_def(history_limit=10)
    async with run_actors(Registry([counter]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("counter", ["a"])
        for _ in range(9):
            await handle.increment()
        actor_id = await handle.resolve()
        # seq 10 so far (the create and 9 actions): nothing to drop yet.
        assert [e.seq for e in await runtime.history(actor_id)] == list(range(1, 11))
        for _ in range(60):
            await handle.increment()
        # Every commit past the limit prunes: the last 10 entries, no more.
        assert [e.seq for e in await runtime.history(actor_id)] == list(range(61, 71))
        assert await runtime.state_at(actor_id, 61) == {"count": 60}
        with pytest.raises(LookupError):
            await runtime.state_at(actor_id, 60)


async def test_history_limit_is_exact_as_seen_and_as_stored(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    counter = counter_def(history_limit=3)
    async with run_actors(Registry([counter]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("counter", ["a"])
        other = client.get_or_create("counter", ["b"])
        actor_id = await handle.resolve()
        seen: list[list[int]] = []
        for _ in range(40):
            await asyncio.gather(handle.increment(), other.increment())
            seen.append([e.seq for e in await runtime.history(actor_id)])
        # After each action, exactly the last three entries (fewer only at the start).
        assert seen == [list(range(max(1, n - 1), n + 2)) for n in range(1, 41)]
        other_id = await other.resolve()
        assert [e.seq for e in await runtime.history(other_id)] == [39, 40, 41]
    # What the driver keeps after a restart is exactly that, too.
    store = driver_factory()
    await store.open()
    try:
        assert [e.seq for e in await store.read_history(actor_id)] == [39, 40, 41]
        assert [e.seq for e in await store.read_history(other_id)] == [39, 40, 41]
    finally:
        await store.close()
    if isinstance(store, SQLiteDriver):
        with closing(sqlite3.connect(store.data_dir / DB_FILE)) as db:
            rows = db.execute("SELECT count(*) FROM actor_events").fetchone()[0]
            logged = db.execute("SELECT count(*) FROM actor_log").fetchone()[0]
        assert (rows, logged) == (6, 0)


# -- failed commits --------------------------------------------------------------------


async def check_rolled_back(runtime: Any, handle: Any, seen: list[int], value: int) -> None:
    assert await handle.get() == value
    assert seen == []
    assert await handle.increment() == value + 1
    assert seen == [value + 1]


async def test_failed_commit_fails_reply_and_rolls_back(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    store = GatedStore(driver_factory())
    counter = counter_def()
    async with run_actors(Registry([counter]), storage=store, clock=clock) as (runtime, client):
        handle = client.get_or_create("counter", ["a"])
        assert await handle.increment(4) == 4
        seen: list[int] = []
        async with handle.connect() as conn:
            conn.on("count", seen.append)
            store.fail_next = OSError("disk full")
            with pytest.raises(CommitError) as info:
                await handle.increment(10)
            assert info.value.code == "commit_failed"
            assert "rolled back" in info.value.message
            await check_rolled_back(runtime, handle, seen, 4)
        entries = await runtime.history(await handle.resolve())
        assert [e.state["count"] for e in entries] == [0, 4, 5]


async def test_memory_driver_fail_next_commit(clock: MockClock) -> None:
    store = MemoryDriver()
    counter = counter_def()
    async with run_actors(Registry([counter]), storage=store, clock=clock) as (runtime, client):
        handle = client.get_or_create("counter", ["a"])
        assert await handle.increment(4) == 4
        seen: list[int] = []
        async with handle.connect() as conn:
            conn.on("count", seen.append)
            store.fail_next_commit(RuntimeError("simulated"))
            with pytest.raises(CommitError):
                await handle.increment(10)
            await check_rolled_back(runtime, handle, seen, 4)


async def test_sqlite_full_disk_fails_commit(tmp_path: Path, clock: MockClock) -> None:
    store = SQLiteDriver(tmp_path / "data", pragmas={"max_page_count": 1})
    counter = counter_def()
    async with run_actors(Registry([counter]), storage=store, clock=clock) as (runtime, client):
        handle = client.get_or_create("counter", ["a"])
        assert await handle.increment(4) == 4
        seen: list[int] = []
        async with handle.connect() as conn:
            conn.on("count", seen.append)
            with pytest.raises(CommitError) as info:
                await handle.big(1_000_000)
            assert "could not be saved" in info.value.message
            assert seen == []
            await check_rolled_back(runtime, handle, seen, 4)
            assert await handle.big(10) == 10


async def test_failed_commit_of_concurrent_changes_rolls_all_back(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    store = GatedStore(driver_factory())
    counter = counter_def()
    async with run_actors(Registry([counter]), storage=store, clock=clock) as (_, client):
        handle = client.get_or_create("counter", ["a"])
        assert await handle.increment(1) == 1
        store.hold = True
        first = asyncio.ensure_future(handle.increment(10))
        await store.entered.wait()
        second = asyncio.ensure_future(handle.increment(100))
        await spin()
        store.fail_next = OSError("disk full")
        store.hold = False
        store.release.set()
        results = await asyncio.gather(first, second, return_exceptions=True)
        assert all(isinstance(r, CommitError) for r in results), results
        assert await handle.get() == 1
        assert await handle.increment() == 2


# -- restarts ----------------------------------------------------------------------------


async def test_state_survives_restart(driver_factory: DriverFactory) -> None:
    counter = counter_def()
    registry = Registry([counter])
    async with run_actors(registry, storage=driver_factory(), clock=MockClock()) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("counter", ["a"])
        assert await handle.increment(41) == 41
        actor_id = await handle.resolve()
    async with run_actors(registry, storage=driver_factory(), clock=MockClock()) as (
        runtime,
        client,
    ):
        assert not runtime.is_awake(actor_id)
        handle = client.get_or_create("counter", ["a"])
        assert await handle.resolve() == actor_id
        assert await handle.get() == 41
        assert await handle.increment() == 42
        entries = await runtime.history(actor_id)
        assert [e.state for e in entries][-2:] == [{"count": 41}, {"count": 42}]


# -- when the group commit's flush runs --------------------------------------------------


class SelectCounter:
    """Counts the event loop's iterations (one ``select`` each) while installed."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.selector = loop._selector  # type: ignore[attr-defined]
        self.select = self.selector.select
        self.calls = 0

    def __enter__(self) -> SelectCounter:
        def counted(timeout: float | None = None) -> Any:
            self.calls += 1
            return self.select(timeout)

        self.selector.select = counted
        return self

    def __exit__(self, *exc: object) -> None:
        self.selector.select = self.select


def without_stall_fallback(storage: ActorStore) -> ActorStore:
    """``storage``, with a SQLite inline budget no disk stall overruns.

    A commit over the default 5 ms budget (a busy disk) sends the next ones to the
    writer thread, which a test counting loop iterations must not see: that fallback
    has tests of its own.
    """
    if isinstance(storage, SQLiteDriver):
        return SQLiteDriver(storage.data_dir, inline_budget=3600.0)
    return storage


async def test_a_lone_strict_call_commits_in_its_own_iteration(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    """With nothing else queued, the caller's task writes the batch itself: the reply
    needs no further turn of the event loop (what a sequential caller waits for)."""
    counter = counter_def()
    storage = without_stall_fallback(driver_factory())
    async with run_actors(Registry([counter]), storage=storage, clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("counter", ["a"])
        assert await handle.increment() == 1
        batches0, _ = runtime.committer_stats()
        await spin()
        with SelectCounter(asyncio.get_running_loop()) as turns:
            assert await handle.increment(2) == 3
        assert turns.calls == 0
        assert runtime.committer_stats()[0] == batches0 + 1
        stored = await runtime.storage.load_state(await handle.resolve())
        assert stored.seq >= 2


@asynccontextmanager
async def warm_counter(driver_factory: DriverFactory, clock: MockClock) -> AsyncIterator[Any]:
    """A handle of a strict counter that committed once, the loop quiet again after it."""
    storage = without_stall_fallback(driver_factory())
    async with run_actors(Registry([counter_def()]), storage=storage, clock=clock) as (_, client):
        handle = client.get_or_create("counter", ["a"])
        assert await handle.increment() == 1
        await spin()
        yield handle


async def test_a_lone_strict_call_queues_no_callback_for_its_write(
    driver_factory: DriverFactory, clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The action's commit is submitted lazily and written by its own task: no flush
    callback is queued (and cancelled) for it, nor a save for the event it broadcasts
    (a synchronous action's end commits before the next loop iteration)."""
    async with warm_counter(driver_factory, clock) as handle:
        loop = asyncio.get_running_loop()
        queued: list[Any] = []
        real_call_soon = loop.call_soon

        def call_soon(callback: Any, *args: Any, **kwargs: Any) -> asyncio.Handle:
            queued.append(callback)
            return real_call_soon(callback, *args, **kwargs)

        monkeypatch.setattr(loop, "call_soon", call_soon)
        assert await handle.increment(2) == 3
        monkeypatch.undo()
        assert queued == []


async def test_an_async_actions_event_leaves_before_the_action_ends(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    """Only a synchronous action's events wait for its end's commit: an async action's
    event is committed and released at the next loop iteration while it still runs."""
    go_on = asyncio.Event()
    slow = actor("slow", state={"count": 0})

    @slow.action
    async def bump(c: Any) -> int:
        c.state["count"] += 1
        c.broadcast("count", c.state["count"])
        await go_on.wait()
        return int(c.state["count"])

    async with run_actors(Registry([slow]), storage=driver_factory(), clock=clock) as (_, client):
        handle = client.get_or_create("slow", ["a"])
        seen: list[int] = []
        arrived = asyncio.Event()

        def on_count(count: int) -> None:
            seen.append(count)
            arrived.set()

        async with handle.connect() as conn:
            conn.on("count", on_count)
            call = asyncio.ensure_future(handle.bump())
            async with asyncio.timeout(10):
                await arrived.wait()
            assert seen == [1] and not call.done()
            go_on.set()
            assert await call == 1


async def test_a_tight_loop_of_strict_calls_still_lets_the_loop_turn(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    """Sequential strict calls written inline never suspend their caller; after
    `MAX_INLINE_STREAK` inline writes in a row the next waits for the loop's turn, so
    timers and I/O are still served."""
    async with warm_counter(driver_factory, clock) as handle:
        fired: list[int] = []
        asyncio.get_running_loop().call_later(0, fired.append, 1)
        calls = 3 * (MAX_INLINE_STREAK + 1)
        with SelectCounter(asyncio.get_running_loop()) as turns:
            for i in range(calls):
                assert await handle.increment() == i + 2
        assert turns.calls >= 3 and fired == [1]


async def test_callers_of_one_iteration_still_share_a_batch(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    """The flush is written early only when it is the last thing queued: callers that
    run in the same iteration all land in the one batch."""
    counter = counter_def()
    async with run_actors(Registry([counter]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handles = [client.get_or_create("counter", [f"k{i}"]) for i in range(8)]
        await asyncio.gather(*(h.get() for h in handles))
        await spin()
        batches0, records0 = runtime.committer_stats()
        assert await asyncio.gather(*(h.increment(i + 1) for i, h in enumerate(handles))) == list(
            range(1, 9)
        )
        batches, records = runtime.committer_stats()
        assert (batches - batches0, records - records0) == (1, 8)
