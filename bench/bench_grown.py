"""Does latency grow with stored data? A mixed load on a fresh and on a grown data directory.

    python bench/bench_grown.py                # ~4 min: 36,000 actors, 1.04 M history rows
    python bench/bench_grown.py --quick        # ~1 min, smaller
    python bench/bench_grown.py --profile /tmp/grown.prof    # cProfile of the grown run
    python bench/bench_grown.py --trace       # what overlapped the slow calls (grown_trace.py)

Two data directories hold the same actors (``--actors``, counters with keys ``k0``,
``k1``, ...): the *fresh* one has each actor's create commit only, the *grown* one also
``--history`` more commits per actor (an action's state snapshot and history entry
each), as a long soak leaves them. They are written directly through the SQLite driver
(`SQLiteDriver.commit` in large batches at ``synchronous=NORMAL``, then closed, which
compacts them), because growing them through actions would take an hour.

The measurement goes through the runtime: ``Registry.runtime(data_dir=...)`` with the
default driver (strict durability, ``synchronous=FULL``) and the in-process client, an
open-loop load at ``--rate`` calls per second for ``--seconds`` (after ``--warmup``
seconds that are not counted): each call picks a random actor, 3 in 4 calls are
``increment(1)`` (a durable write), the rest ``get()`` (a read). Actors are asleep at
the start, so most early calls wake one (``load_state``), as after a restart or in a
soak whose actors outnumber what stays awake. A call's latency runs from when it was
due (not when it started, so a stalled loop counts) to its reply.

Each directory is measured ``--runs`` times (3), alternating (fresh, grown, fresh, ...);
the table gives p50/p99 per run and the ratio of the medians, and the spread of the
per-run ratios (run k's grown p99 over its fresh p99) says how noisy the machine was.
Time is wall-clock.

Python's cyclic garbage collector is off during each run (``--gc`` keeps it on), after
a full collection before it: with 36,000 actors waking and the bench's own handles
(two objects per actor) its full collections took 100-350 ms on this VM, on both
directories alike, and those stalls, not the storage, made the p99 of most runs
(2026-12-07: 88-344 ms against 28.6 ms for the one run without one). The question is
what stored data does to latency; an application with that many live objects tunes
its collector (``gc.freeze()`` after start-up, thresholds) on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from grown_trace import Trace
from pyrivet import ActorOptions, Client, Registry, actor
from pyrivet.storage import ActorRecord, CommitRecord, HistoryEntry, SQLiteDriver
from pyrivet.storage._sqlite import DB_FILE

_encode = msgspec.msgpack.encode
#: Records per commit while growing a directory.
GROW_BATCH = 4096


def make_registry(history_limit: int | None) -> Registry:
    counter = actor(
        "counter",
        state={"count": 0, "owner": "", "tags": ["bench", "counter"]},
        options=ActorOptions(history_limit=history_limit),
    )

    @counter.action
    def increment(c: Any, amount: int = 1) -> int:
        c.state["count"] += amount
        return int(c.state["count"])

    @counter.action
    def get(c: Any) -> int:
        return int(c.state["count"])

    return Registry([counter])


def snapshot(key: str, count: int) -> bytes:
    """The counter's state as the runtime encodes it (msgpack of a small dict)."""
    return _encode({"count": count, "owner": key, "tags": ["bench", "counter"]})


async def grow(data_dir: Path, actors: int, history: int, history_limit: int | None) -> float:
    """Write ``actors`` counters with ``1 + history`` commits each; seconds taken."""
    started = time.perf_counter()
    store = SQLiteDriver(data_dir, synchronous="NORMAL")
    await store.open()
    try:
        ids = [f"bench-{i:08d}" for i in range(actors)]
        batch: list[CommitRecord] = []

        async def add(record: CommitRecord) -> None:
            batch.append(record)
            if len(batch) >= GROW_BATCH:
                await store.commit(batch)
                batch.clear()

        for i, actor_id in enumerate(ids):
            state = snapshot(f"k{i}", 0)
            created = ActorRecord(actor_id, "counter", (f"k{i}",), 1, initialized=True)
            record = CommitRecord(actor_id, 1, create=created, state=state, initialized=True)
            record.event = HistoryEntry(actor_id, 1, 1_000, "create", state=state)
            await add(record)
        # Round-robin over the actors, as a long mixed load interleaves them.
        for seq in range(2, history + 2):
            for i, actor_id in enumerate(ids):
                state = snapshot(f"k{i}", seq - 1)
                record = CommitRecord(actor_id, seq, state=state)
                record.event = HistoryEntry(
                    actor_id, seq, 1_000 + seq, "action", "increment", "conn-0a1b2c3d",
                    _encode([1]), state,
                )  # fmt: skip
                if history_limit is not None and seq > history_limit:
                    record.prune_history_before = seq - history_limit + 1
                await add(record)
        if batch:
            await store.commit(batch)
    finally:
        await store.close()
    return time.perf_counter() - started


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def mixed_load(
    data_dir: Path, actors: int, rate: float, warmup: float, seconds: float, seed: int,
    history_limit: int | None, trace: Trace | None = None,
) -> tuple[float, float, int, int]:  # fmt: skip
    """Run the load on ``data_dir`` through the runtime: (p50, p99, calls, late calls);
    with ``trace``, its `Trace.report` says what overlapped the slow calls."""
    rng = random.Random(seed)
    spans: list[tuple[float, float]] = []
    late = 0
    async with make_registry(history_limit).runtime(data_dir=data_dir) as runtime:
        if trace is not None:
            trace.begin()
        client = Client(runtime)
        handles: dict[int, Any] = {}
        clock = time.perf_counter

        async def call(index: int, write: bool, due: float, counted: bool) -> None:
            handle = handles.get(index)
            if handle is None:
                handle = handles[index] = client.get_or_create("counter", [f"k{index}"])
            if write:
                await handle.increment(1)
            else:
                await handle.get()
            if counted:
                spans.append((due, clock()))

        interval = 1.0 / rate
        total = int((warmup + seconds) * rate)
        first_counted = int(warmup * rate)
        async with asyncio.TaskGroup() as group:
            start = clock()
            for n in range(total):
                due = start + n * interval
                wait = due - clock()
                if wait > 0:
                    await asyncio.sleep(wait)
                elif wait < -0.001 and n >= first_counted:
                    late += 1
                group.create_task(
                    call(rng.randrange(actors), rng.random() < 0.75, due, n >= first_counted)
                )
        if trace is not None:
            trace.summarize(spans, start + first_counted * interval)
    samples = [done - due for due, done in spans]
    return percentile(samples, 0.5), percentile(samples, 0.99), len(samples), late


def size_mb(data_dir: Path) -> float:
    return sum(f.stat().st_size for f in data_dir.iterdir() if f.is_file()) / 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller directories, shorter runs")
    parser.add_argument("--actors", type=int, help="actors in both directories (36,000)")
    parser.add_argument("--history", type=int, help="extra commits per actor when grown (28)")
    parser.add_argument("--rate", type=float, default=1000.0, help="calls per second")
    parser.add_argument("--seconds", type=float, help="measured seconds per run (12)")
    parser.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds first")
    parser.add_argument(
        "--gc", action="store_true", help="keep the garbage collector on during the runs"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per directory, alternating")
    parser.add_argument(
        "--history-limit", type=int, default=100, help="the actors' history_limit (0: None)"
    )
    parser.add_argument("--profile", type=Path, help="write a cProfile of the grown runs here")
    parser.add_argument("--keep", type=Path, help="grow the directories here and keep them")
    parser.add_argument(
        "--trace", action="store_true", help="per run: what overlapped the slow calls"
    )
    args = parser.parse_args()
    actors = args.actors or (8_000 if args.quick else 36_000)
    history = args.history or (28 if not args.quick else 20)
    seconds = args.seconds or (6.0 if args.quick else 12.0)
    limit = args.history_limit or None

    print(
        f"# python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="pyrivet-bench-grown-") as tmp:
        root = args.keep or Path(tmp)
        dirs = {"fresh": root / "fresh", "grown": root / "grown"}
        for name, extra in (("fresh", 0), ("grown", history)):
            if (dirs[name] / DB_FILE).exists():
                print(f"{name}: reusing {dirs[name]} (no longer as generated if runs wrote to it)")
                continue
            took = await grow(dirs[name], actors, extra, limit)
            rows = actors * (1 + extra) if limit is None else actors * min(1 + extra, limit)
            print(
                f"{name}: {actors:,} actors, {rows:,} history rows, "
                f"{size_mb(dirs[name]):.0f} MB, written in {took:.1f} s"
            )
        results: dict[str, list[tuple[float, float, int, int]]] = {"fresh": [], "grown": []}
        profile = cProfile.Profile() if args.profile else None
        trace = Trace() if args.trace else None
        if trace is not None:
            trace.install()
        for run in range(args.runs):
            for name in ("fresh", "grown"):
                if profile is not None and name == "grown":
                    profile.enable()
                gc.collect()
                if not args.gc:
                    gc.disable()
                try:
                    result = await mixed_load(
                        dirs[name], actors, args.rate, args.warmup, seconds, run, limit, trace
                    )
                finally:
                    gc.enable()
                if profile is not None and name == "grown":
                    profile.disable()
                results[name].append(result)
                p50, p99, calls, late = result
                print(
                    f"  run {run + 1} {name}: p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms "
                    f"({calls:,} calls, {late} started late), {size_mb(dirs[name]):.0f} MB"
                )
                if trace is not None:
                    print("\n".join(trace.report))
        if profile is not None:
            profile.dump_stats(args.profile)

    def med(name: str, i: int) -> float:
        return statistics.median(r[i] for r in results[name])

    print()
    print(f"mixed load, {args.rate:.0f} calls/s, {actors:,} actors, 3/4 increment, 1/4 get")
    print("| directory | p50 | p99 |")
    print("|---|---|---|")
    for name in ("fresh", "grown"):
        print(f"| {name} | {med(name, 0) * 1e3:.2f} ms | {med(name, 1) * 1e3:.2f} ms |")
    print(
        f"| grown / fresh | {med('grown', 0) / med('fresh', 0):.2f}x | "
        f"{med('grown', 1) / med('fresh', 1):.2f}x |"
    )
    ratios = [g[1] / f[1] for f, g in zip(results["fresh"], results["grown"], strict=True)]
    print(
        f"# p99 ratio per run (grown run k / fresh run k): "
        f"{', '.join(f'{r:.2f}' for r in ratios)} (spread {min(ratios):.2f}-{max(ratios):.2f}x)"
    )
    print(f"# load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
