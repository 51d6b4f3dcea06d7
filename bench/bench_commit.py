"""Benchmark of the SQLite driver's commit path (no runtime on top).

    python bench/bench_commit.py                 # everything, prints a table
    python bench/bench_commit.py --quick         # smaller counts, for a smoke run

For each batch size (1, 64 and 256 records, every record of a batch for a different
actor) a fresh data directory with 1,000 actors (``--actors``) is written with
``synchronous=FULL``. Each record is what the runtime writes for an action: a small
state snapshot plus the history entry carrying it (kind "action", name, caller, args).
Commits are issued one after the other, as the runtime's committer does. Reported per
batch size:

* records per second over the whole run (compactions and checkpoints included);
* commit latency p50 / p99 / max;
* the read round trip right after the writes, for random actors: ``load_state``; a wake
  (``load_state`` + ``read_history`` after the stored seq, as the runtime does); and a
  read of the last 10 history entries;
* the size of the WAL file at the end (to show that it stays bounded).

Time is wall-clock (`perf_counter`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from pyrivet.storage import ActorRecord, CommitRecord, HistoryEntry, SQLiteDriver

#: Actors written round-robin (default of ``--actors``).
ACTORS = 1_000
#: Like the runtime's default: keep 1,000 history entries (every commit carries the bound).
HISTORY_LIMIT = 100

_encode = msgspec.msgpack.encode


@dataclass
class Result:
    batch: int
    records: int
    rate: float
    p50: float
    p99: float
    worst: float
    load_p50: float
    load_p99: float
    wake_p50: float
    wake_p99: float
    history_p50: float
    history_p99: float
    wal_mb: float


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def action_record(actor_id: str, seq: int, count: int, now_ms: int) -> CommitRecord:
    """One action's commit: the new snapshot and the history entry carrying it."""
    snapshot = _encode({"count": count, "owner": actor_id, "tags": ["bench", "counter"]})
    record = CommitRecord(actor_id, seq, state=snapshot)
    record.event = HistoryEntry(
        actor_id, seq, now_ms, "action", "increment", f"conn-{seq % 64}", _encode([1]), snapshot
    )
    if seq > HISTORY_LIMIT:
        record.prune_history_before = seq - HISTORY_LIMIT + 1
    return record


async def create_actors(store: SQLiteDriver, ids: list[str]) -> None:
    """Create every actor the way the runtime does: the create lands with the first commit."""
    for start in range(0, len(ids), 256):
        batch = []
        for actor_id in ids[start : start + 256]:
            created = ActorRecord(actor_id, "counter", (actor_id,), created_at_ms=1)
            record = action_record(actor_id, 1, 0, 1)
            record.create = created
            record.initialized = True
            record.event = HistoryEntry(actor_id, 1, 1, "create", state=record.state)
            batch.append(record)
        await store.commit(batch)


async def run_batch_size(batch_size: int, records: int, reads: int, actors: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="pyrivet-bench-commit-") as data_dir:
        store = SQLiteDriver(data_dir, synchronous="FULL")
        await store.open()
        try:
            ids = [f"actor-{i:05d}" for i in range(actors)]
            await create_actors(store, ids)
            seqs = dict.fromkeys(ids, 1)
            next_actor = 0
            commits = max(1, records // batch_size)
            latencies: list[float] = []
            clock = time.perf_counter
            started = clock()
            for _ in range(commits):
                batch = []
                for _ in range(batch_size):
                    actor_id = ids[next_actor]
                    next_actor = (next_actor + 1) % actors
                    seq = seqs[actor_id] = seqs[actor_id] + 1
                    batch.append(action_record(actor_id, seq, seq, 1_000 + seq))
                start = clock()
                await store.commit(batch)
                latencies.append(clock() - start)
            elapsed = clock() - started

            rng = random.Random(7)
            load: list[float] = []
            wake: list[float] = []
            history: list[float] = []
            for _ in range(reads):
                actor_id = rng.choice(ids)
                start = clock()
                stored = await store.load_state(actor_id)
                load.append(clock() - start)
                start = clock()
                stored = await store.load_state(actor_id)
                await store.read_history(actor_id, stored.seq)
                wake.append(clock() - start)
                actor_id = rng.choice(ids)
                start = clock()
                await store.read_history(actor_id, seqs[actor_id] - 10, limit=10)
                history.append(clock() - start)
            wal = Path(data_dir) / "pyrivet.sqlite3-wal"
            wal_mb = wal.stat().st_size / 1e6 if wal.exists() else 0.0
        finally:
            await store.close()
    return Result(
        batch=batch_size,
        records=commits * batch_size,
        rate=commits * batch_size / elapsed,
        p50=percentile(latencies, 0.5),
        p99=percentile(latencies, 0.99),
        worst=max(latencies),
        load_p50=percentile(load, 0.5),
        load_p99=percentile(load, 0.99),
        wake_p50=percentile(wake, 0.5),
        wake_p99=percentile(wake, 0.99),
        history_p50=percentile(history, 0.5),
        history_p99=percentile(history, 0.99),
        wal_mb=wal_mb,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    parser.add_argument(
        "--batches", type=int, nargs="+", default=[1, 64, 256], help="batch sizes to run"
    )
    parser.add_argument("--actors", type=int, default=ACTORS, help="actors written round-robin")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    reads = 2_000 // scale

    print(
        f"# pyrivet SQLite commit benchmark ({platform.python_implementation()} "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs, synchronous=FULL, {args.actors:,} actors)",
        flush=True,
    )
    header = (
        f"{'batch':>5} {'records':>8} {'records/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'load p50/p99 µs':>16} {'wake p50/p99 µs':>16} "
        f"{'history p50/p99 µs':>19} {'WAL MB':>7}"
    )
    print(header)
    print("-" * len(header), flush=True)
    for batch_size in args.batches:
        records = (3_000 if batch_size == 1 else 128_000) // scale
        r = asyncio.run(run_batch_size(batch_size, records, reads, args.actors))
        print(
            f"{r.batch:>5} {r.records:>8,} {r.rate:>10,.0f} {r.p50 * 1e3:>8.2f} "
            f"{r.p99 * 1e3:>8.2f} {r.worst * 1e3:>8.1f} "
            f"{f'{r.load_p50 * 1e6:.0f} / {r.load_p99 * 1e6:.0f}':>16} "
            f"{f'{r.wake_p50 * 1e6:.0f} / {r.wake_p99 * 1e6:.0f}':>16} "
            f"{f'{r.history_p50 * 1e6:.0f} / {r.history_p99 * 1e6:.0f}':>19} {r.wal_mb:>7.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
