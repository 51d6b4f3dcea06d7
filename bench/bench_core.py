"""In-process benchmarks of the actor runtime on the embedded SQLite default.

    python bench/bench_core.py                 # everything, prints a table
    python bench/bench_core.py --quick         # smaller counts, for a smoke run
    python bench/bench_core.py --only memory   # one group: latency, throughput, create, memory

Figures (medians over --runs runs):

* sequential action latency on one actor, p50/p99, strict and relaxed durability,
  beside two floors: a bare SQLite commit, and that commit followed by a relaxed action
  (`commit_then_relaxed`: the action's own work, run on a CPU that waited in fsync),
  both measured in each run just before the strict figure; the gaps printed are the
  medians of each run's own gap (`paired_gap`);
* throughput: 64 actors, 64 concurrent callers, strict (durable actions per second),
  the same load on the memory driver (what the client and runtime cost alone), and on
  the memory driver behind one bare SQLite commit per batch (`DiskFloorDriver`: group
  commit on this disk with nothing else; its ratio to the memory driver is the disk's
  share of the strict ratio);
* create + first action for N new actors (sequential, and 64 at a time);
* RSS per awake idle actor with a small state after waking 100,000 actors, RSS after
  they all went back to sleep (compared with the baseline before waking), and how much
  waking them all a second time adds above the first wake (memory kept by the
  allocator is reused, not lost, if this is ~0).

Each scenario runs in a fresh data directory. Time is wall-clock (`perf_counter`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Literal

from pyrivet import ActorOptions, Client, Registry, Runtime, actor
from pyrivet.storage import CommitRecord, MemoryDriver


def make_registry() -> Registry:
    strict = actor("counter", state={"count": 0})
    relaxed = actor(
        "relaxed_counter", state={"count": 0}, options=ActorOptions(durability="relaxed")
    )

    @strict.action
    def increment(c: Any, amount: int = 1) -> int:
        c.state["count"] += amount
        return int(c.state["count"])

    @strict.action
    def read(c: Any) -> int:
        return int(c.state["count"])

    @relaxed.action(name="increment")
    def increment_relaxed(c: Any, amount: int = 1) -> int:
        c.state["count"] += amount
        return int(c.state["count"])

    return Registry([strict, relaxed])


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class DiskFloorDriver(MemoryDriver):
    """The memory driver, with one bare SQLite commit (`bare_commit`) before each batch.

    `commit` runs on the event loop (the committer calls it there): it first commits
    one row of a database of `open_floor_db` at ``floor_path``, blocking the loop until
    the fsync returns, then applies the batch in memory as `MemoryDriver` does. So a
    load on it costs the runtime's work plus one disk commit per group commit and
    nothing else: the disk's share of the strict throughput, with no SQL, encoding or
    writer thread of pyrivet's own. A failed floor commit raises `sqlite3.Error` out of
    `commit` (a bench has no use for anything subtler). A bench tool, not a driver.
    """

    def __init__(self, floor_path: str) -> None:
        super().__init__()
        self._floor = open_floor_db(floor_path)

    def commit(self, batch: Sequence[CommitRecord]) -> Awaitable[None]:
        bare_commit(self._floor)
        return super().commit(batch)

    async def close(self) -> None:
        await super().close()
        self._floor.close()


Storage = Literal["sqlite", "memory", "disk_floor"]


async def with_runtime(
    fn: Callable[[Runtime, Client], Awaitable[Any]], *, storage: Storage = "sqlite"
) -> Any:
    """Run ``fn`` on a fresh runtime: SQLite in a new data directory, in memory, or
    in memory behind one bare SQLite commit per batch (`DiskFloorDriver`)."""
    if storage == "memory":
        async with make_registry().runtime(storage=MemoryDriver()) as runtime:
            return await fn(runtime, Client(runtime))
    with tempfile.TemporaryDirectory(prefix="pyrivet-bench-") as data_dir:
        if storage == "disk_floor":
            driver = DiskFloorDriver(os.path.join(data_dir, "floor.sqlite3"))
            async with make_registry().runtime(storage=driver) as runtime:
                return await fn(runtime, Client(runtime))
        async with make_registry().runtime(data_dir=data_dir) as runtime:
            return await fn(runtime, Client(runtime))


async def sequential_latency(name: str, calls: int) -> tuple[float, float]:
    async def run(runtime: Runtime, client: Client) -> tuple[float, float]:
        handle = client.get_or_create(name, ["bench"])
        for _ in range(200):
            await handle.increment(1)
        samples = []
        clock = time.perf_counter
        for _ in range(calls):
            start = clock()
            await handle.increment(1)
            samples.append(clock() - start)
        return percentile(samples, 0.5), percentile(samples, 0.99)

    result: tuple[float, float] = await with_runtime(run)
    return result


async def commit_then_relaxed(calls: int) -> tuple[float, float]:
    """(p50, p99) of a bare SQLite commit (as `commit_floor`) followed by a relaxed
    action on one actor, timed together: the least a strict call can cost here.

    A strict reply waits for its commit, and the thread that waited in ``fdatasync``
    then runs the reply's Python on a CPU whose caches went cold meanwhile (on this
    virtual machine the same relaxed action takes several times longer right after an
    fsync than back to back). This floor pays both, so the gap between it and the
    strict p50 is the strict path's own work.
    """

    async def run(runtime: Runtime, client: Client) -> tuple[float, float]:
        handle = client.get_or_create("relaxed_counter", ["floor"])
        with tempfile.TemporaryDirectory(prefix="pyrivet-bench-") as data_dir:
            conn = open_floor_db(os.path.join(data_dir, "floor.sqlite3"))
            try:
                for _ in range(200):
                    await handle.increment(1)
                samples = []
                clock = time.perf_counter
                for _ in range(calls):
                    value = os.urandom(64)
                    start = clock()
                    bare_commit(conn, value)
                    await handle.increment(1)
                    samples.append(clock() - start)
            finally:
                conn.close()
        return percentile(samples, 0.5), percentile(samples, 0.99)

    result: tuple[float, float] = await with_runtime(run)
    return result


async def throughput(
    actors: int, callers: int, seconds: float, *, storage: Storage = "sqlite"
) -> tuple[float, float]:
    async def run(runtime: Runtime, client: Client) -> tuple[float, float]:
        handles = [client.get_or_create("counter", [f"a{i}"]) for i in range(actors)]
        await asyncio.gather(*(h.increment(1) for h in handles))
        done = 0
        stop = time.perf_counter() + seconds
        batches0, records0 = runtime.committer_stats()

        async def caller(i: int) -> None:
            nonlocal done
            handle = handles[i % actors]
            while time.perf_counter() < stop:
                await handle.increment(1)
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(caller(i) for i in range(callers)))
        elapsed = time.perf_counter() - start
        batches, records = runtime.committer_stats()
        return done / elapsed, (records - records0) / max(1, batches - batches0)

    result: tuple[float, float] = await with_runtime(run, storage=storage)
    return result


async def create_and_first_call(count: int, concurrency: int) -> float:
    async def run(runtime: Runtime, client: Client) -> float:
        next_index = 0

        async def worker() -> None:
            nonlocal next_index
            while next_index < count:
                i = next_index
                next_index += 1
                await client.get_or_create("counter", [f"new-{i}"]).increment(1)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return (time.perf_counter() - start) / count

    result: float = await with_runtime(run)
    return result


async def memory_per_actor(count: int) -> tuple[float, float, float, float]:
    """(bytes per awake idle actor, bytes per actor left after sleep, bytes per actor
    a second wake of all of them adds above the first wake's peak, baseline MB)."""

    async def run(runtime: Runtime, client: Client) -> tuple[float, float, float, float]:
        ids = []
        for start in range(0, count, 1000):
            handles = [
                client.get_or_create("counter", [f"m{i}"]) for i in range(start, start + 1000)
            ]
            await asyncio.gather(*(h.increment(1) for h in handles))
            ids.extend([await h.resolve() for h in handles])
            await asyncio.gather(*(runtime.sleep(i) for i in ids[start:]))
        handles = [client.get_for_id("counter", i) for i in ids]
        gc.collect()
        baseline = rss_bytes()
        for start in range(0, count, 1000):
            await asyncio.gather(*(h.read() for h in handles[start : start + 1000]))
        assert runtime.awake_count == count
        gc.collect()
        awake = rss_bytes()
        for start in range(0, count, 1000):
            await asyncio.gather(*(runtime.sleep(i) for i in ids[start : start + 1000]))
        assert runtime.awake_count == 0
        gc.collect()
        asleep = rss_bytes()
        # Is what stays after the sleep reused (the allocator's high-water mark) or lost?
        for start in range(0, count, 1000):
            await asyncio.gather(*(h.read() for h in handles[start : start + 1000]))
        gc.collect()
        again = rss_bytes()
        return (
            (awake - baseline) / count,
            (asleep - baseline) / count,
            (again - awake) / count,
            baseline / 1e6,
        )

    result: tuple[float, float, float, float] = await with_runtime(run)
    return result


def open_floor_db(path: str) -> sqlite3.Connection:
    """A SQLite database at ``path`` (created) ready for `bare_commit`: WAL,
    synchronous=FULL, autocommit, a one-row table already updated past its first
    auto-checkpoint (so the WAL is reused, not grown, as in a long-running server).

    The one preparation of every one-commit floor of the benches; the caller closes
    the connection. Raises `sqlite3.Error` if the file cannot be created.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
        conn.execute("INSERT INTO t VALUES (1, x'00')")
        for _ in range(1_500):
            bare_commit(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def bare_commit(conn: sqlite3.Connection, value: bytes | None = None) -> None:
    """One durable commit on a connection of `open_floor_db`, in the calling thread:
    the row's 64 bytes overwritten with ``value`` (default: fresh random bytes; SQLite
    skips a write that changes nothing), returning after the WAL's fsync."""
    conn.execute("UPDATE t SET v = ? WHERE k = 1", (os.urandom(64) if value is None else value,))


def commit_floor(samples: int = 2_000) -> tuple[float, float]:
    """(p50 of a bare SQLite one-row WAL commit with synchronous=FULL, p50 of a 4 KiB
    overwrite + fdatasync), in seconds, on the disk the benchmark writes to.

    No strict commit can be faster than the first: it is what the disk gives SQLite.
    """
    with tempfile.TemporaryDirectory(prefix="pyrivet-bench-") as data_dir:
        conn = open_floor_db(os.path.join(data_dir, "floor.sqlite3"))
        commits = []
        for _ in range(samples):
            value = os.urandom(64)
            start = time.perf_counter()
            bare_commit(conn, value)
            commits.append(time.perf_counter() - start)
        conn.close()
        fd = os.open(os.path.join(data_dir, "floor.bin"), os.O_RDWR | os.O_CREAT)
        try:
            os.pwrite(fd, bytes(4096 * 64), 0)
            os.fsync(fd)
            syncs = []
            for i in range(samples):
                start = time.perf_counter()
                os.pwrite(fd, os.urandom(4096), 4096 * (i % 64))
                os.fdatasync(fd)
                syncs.append(time.perf_counter() - start)
        finally:
            os.close(fd)
    return percentile(commits, 0.5), percentile(syncs, 0.5)


def paired_gap(figures: list[float], floors: list[float]) -> float:
    """The median of ``figures[i] - floors[i]``: the gap to a floor measured in the same
    run as each figure, steadier than the gap of the medians when the disk's speed
    drifts between runs. The lists are as long as each other (one entry per run)."""
    return statistics.median(f - floor for f, floor in zip(figures, floors, strict=True))


def median_of(runs: int, fn: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    results: list[Any] = [asyncio.run(fn()) for _ in range(runs)]
    if isinstance(results[0], tuple):
        return tuple(statistics.median(r[i] for r in results) for i in range(len(results[0])))
    return statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, one run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--only",
        choices=["latency", "throughput", "create", "memory"],
        help="run only this group of figures",
    )
    args = parser.parse_args()
    wanted = {args.only} if args.only else {"latency", "throughput", "create", "memory"}
    runs = 1 if args.quick else args.runs
    calls = 2_000 if args.quick else 20_000
    new_actors = 1_000 if args.quick else 10_000
    mem_actors = 10_000 if args.quick else 100_000

    print(
        f"# pyrivet core benchmark ({platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}, "
        f"runs={runs})",
        flush=True,
    )
    rows: list[tuple[str, str, str]] = []

    def row(measure: str, value: str, target: str) -> None:
        rows.append((measure, value, target))
        print(f"{measure:<58} {value:>22}   target {target}", flush=True)

    if "latency" in wanted:
        # Run by run, each figure right after its floors: the disk's speed drifts (on a
        # shared machine ~10x within a minute), so the gaps are taken within each run
        # and their median printed (`paired_gap`), not the gap of the medians.
        floors, afters, stricts = [], [], []
        for _ in range(runs):
            floors.append(commit_floor(500 if args.quick else 2_000))
            afters.append(asyncio.run(commit_then_relaxed(calls // 4))[0])
            stricts.append(asyncio.run(sequential_latency("counter", calls)))
        commits = [f[0] for f in floors]
        sqlite_floor = statistics.median(commits)
        sync_floor = statistics.median(f[1] for f in floors)
        row(
            "floor: bare SQLite WAL commit (FULL) / 4 KiB fdatasync, p50",
            f"{sqlite_floor * 1e6:.0f} / {sync_floor * 1e6:.0f} µs",
            "- (the disk)",
        )
        after_p50 = statistics.median(afters)
        row(
            "floor: bare commit, then a relaxed action, p50",
            f"{after_p50 * 1e6:.0f} µs",
            f"- (floor + {paired_gap(afters, commits) * 1e6:.0f}: the action after an fsync)",
        )
        p50s = [s[0] for s in stricts]
        p50, p99 = statistics.median(p50s), statistics.median(s[1] for s in stricts)
        row(
            "sequential action, one actor, strict: p50 / p99",
            f"{p50 * 1e6:.0f} / {p99 * 1e6:.0f} µs",
            f"p50 ≤ floor + 40 = {(sqlite_floor * 1e6) + 40:.0f} µs "
            f"(floor + {paired_gap(p50s, commits) * 1e6:.0f}; "
            f"the floor above + {paired_gap(p50s, afters) * 1e6:.0f})",
        )
        p50, p99 = median_of(runs, lambda: sequential_latency("relaxed_counter", calls))
        row(
            "sequential action, one actor, relaxed: p50 / p99",
            f"{p50 * 1e6:.1f} / {p99 * 1e6:.1f} µs",
            "p50 ≤ 20 µs",
        )
    if "throughput" in wanted:
        seconds = 2.0 if args.quick else 5.0
        # The same load with storage taken out (what the client and runtime cost alone)
        # is the yardstick, measured first and printed after.
        memory_rate, _ = median_of(runs, lambda: throughput(64, 64, seconds, storage="memory"))
        disk_rate, disk_batch = median_of(
            runs, lambda: throughput(64, 64, seconds, storage="disk_floor")
        )
        rate, per_batch = median_of(runs, lambda: throughput(64, 64, seconds))
        disk_ratio = disk_rate / memory_rate
        row(
            "throughput, 64 actors x 64 callers, strict",
            f"{rate:,.0f} actions/s",
            f"≥ 0.7 x memory driver ({rate / memory_rate:.2f} x; "
            f"the disk's share alone: {disk_ratio:.2f} x)",
        )
        row("  records per group commit (mean)", f"{per_batch:.1f}", "-")
        row(
            "  the same on the memory driver (no disk, no SQL)",
            f"{memory_rate:,.0f} actions/s",
            "-",
        )
        row(
            "floor: memory driver + one bare SQLite commit per batch",
            f"{disk_rate:,.0f} actions/s",
            f"- ({disk_ratio:.2f} x memory driver: the disk's share; "
            f"{disk_batch:.1f} records per batch)",
        )
    if "create" in wanted:
        per = median_of(runs, lambda: create_and_first_call(new_actors, 1))
        row(
            f"create + first action, {new_actors:,} actors, sequential",
            f"{per * 1e3:.3f} ms/actor",
            "≤ 0.3 ms",
        )
        per = median_of(runs, lambda: create_and_first_call(new_actors, 64))
        row(
            f"create + first action, {new_actors:,} actors, 64 at a time",
            f"{per * 1e3:.3f} ms/actor",
            "≤ 0.3 ms",
        )
    if "memory" not in wanted:
        return
    awake, asleep, again, base = median_of(1, lambda: memory_per_actor(mem_actors))
    row(f"RSS per awake idle actor ({mem_actors:,} woken)", f"{awake / 1024:.2f} KB", "≤ 0.6 KB")
    row(
        "RSS per actor after they all slept (vs baseline)",
        f"{asleep / 1024:.2f} KB",
        f"≈ 0 (baseline {base:.0f} MB)",
    )
    row("  waking them all again: RSS above the first wake", f"{again / 1024:.2f} KB", "-")


if __name__ == "__main__":
    main()
