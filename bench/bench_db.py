"""Benchmarks of ``c.db`` (each actor's own SQL database) on the embedded SQLite default.

    python bench/bench_db.py            # everything, prints a table
    python bench/bench_db.py --quick    # smaller counts, one run (smoke run)

Figures (medians over --runs runs; strict durability unless said otherwise):

* the one-commit floor (a bare SQLite WAL commit with synchronous=FULL, from
  ``bench_core.commit_floor``), and the raw cost of three designs for "one SQL row and
  the state, atomically": one file per actor (the actor's file, then the store: two
  commits), one shared file (one commit, but no isolation between actors), and ATTACH
  (one transaction over two files, which SQLite makes atomic only in rollback-journal
  mode, with a super-journal);
* sequential p50/p99 of a state-only action and of an action that inserts one row and
  updates the state, on one actor;
* calls/s with 64 actors and 64 concurrent callers, both actions;
* a 1,000-row query through ``c.db`` (an action returning the rows) and the same query on
  a bare sqlite3 connection;
* wake (first call after sleep) of an actor whose database holds 10 MB, beside the wake
  of a state-only actor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench_core import commit_floor, percentile
from pyrivet import Client, Registry, Runtime, actor


def make_registry() -> Registry:
    counter = actor("counter", state={"count": 0})

    @counter.action
    def increment(c: Any) -> int:
        c.state["count"] += 1
        return int(c.state["count"])

    ledger = actor("ledger", state={"count": 0})

    @ledger.on_migrate
    async def migrate(c: Any, db: Any) -> None:
        await db.execute(
            "CREATE TABLE IF NOT EXISTS entries (id INTEGER PRIMARY KEY, amount INTEGER, note TEXT)"
        )

    @ledger.action
    async def insert(c: Any) -> int:
        await c.db.execute("INSERT INTO entries (amount, note) VALUES (?, ?)", 1, "entry")
        c.state["count"] += 1
        return int(c.state["count"])

    @ledger.action
    async def fill(c: Any, rows: int, size: int) -> None:
        for _ in range(rows):
            await c.db.execute("INSERT INTO entries (amount, note) VALUES (1, ?)", "x" * size)

    @ledger.action
    async def first_rows(c: Any, count: int) -> int:
        rows = await c.db.execute("SELECT id, amount, note FROM entries LIMIT ?", count)
        return len(rows)

    @ledger.action
    def ping(c: Any) -> int:
        return int(c.state["count"])

    return Registry([counter, ledger])


async def with_runtime(fn: Callable[[Runtime, Client], Any], **driver: Any) -> Any:
    with tempfile.TemporaryDirectory(prefix="pyrivet-bench-") as data_dir:
        async with make_registry().runtime(data_dir=data_dir) as runtime:
            if driver.get("actor_db_synchronous"):
                runtime.storage.actor_databases().synchronous = driver["actor_db_synchronous"]  # type: ignore[attr-defined]
            return await fn(runtime, Client(runtime))


async def sequential(calls: int, **driver: Any) -> tuple[float, ...]:
    """p50/p99 of a bare commit, a state-only action and an insert action, measured in
    turn (one of each per round), so that the machine's noise hits all three alike."""

    async def run(runtime: Runtime, client: Client) -> tuple[float, ...]:
        counter = client.get_or_create("counter", ["bench"])
        ledger = client.get_or_create("ledger", ["bench"])
        data_dir = runtime.storage.data_dir  # type: ignore[attr-defined]
        bare = sqlite3.connect(data_dir / "floor.sqlite3", isolation_level=None)
        bare.execute("PRAGMA journal_mode = WAL")
        bare.execute("PRAGMA synchronous = FULL")
        bare.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
        bare.execute("INSERT INTO t VALUES (1, x'00')")
        for _ in range(200):
            await counter.increment()
            await ledger.insert()
            bare.execute("UPDATE t SET v = ? WHERE k = 1", (os.urandom(64),))
        floor, state, insert = [], [], []
        clock = time.perf_counter
        for _ in range(calls):
            start = clock()
            bare.execute("UPDATE t SET v = ? WHERE k = 1", (os.urandom(64),))
            floor.append(clock() - start)
            start = clock()
            await counter.increment()
            state.append(clock() - start)
            start = clock()
            await ledger.insert()
            insert.append(clock() - start)
        bare.close()
        return tuple(percentile(x, q) for x in (floor, state, insert) for q in (0.5, 0.99))

    result: tuple[float, ...] = await with_runtime(run, **driver)
    return result


async def throughput(name: str, action: str, seconds: float, **driver: Any) -> float:
    async def run(runtime: Runtime, client: Client) -> float:
        handles = [client.get_or_create(name, [f"a{i}"]) for i in range(64)]
        await asyncio.gather(*(h.action(action) for h in handles))
        done = 0
        stop = time.perf_counter() + seconds

        async def caller(i: int) -> None:
            nonlocal done
            while time.perf_counter() < stop:
                await handles[i].action(action)
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(caller(i) for i in range(64)))
        return done / (time.perf_counter() - start)

    result: float = await with_runtime(run, **driver)
    return result


async def query_1000(samples: int) -> tuple[float, float]:
    async def run(runtime: Runtime, client: Client) -> tuple[float, float]:
        handle = client.get_or_create("ledger", ["q"])
        await handle.fill(1000, 40)
        times = []
        for _ in range(samples):
            start = time.perf_counter()
            assert await handle.first_rows(1000) == 1000
            times.append(time.perf_counter() - start)
        actor_id = await handle.resolve()
        # The actor's own sqlite3 connection (the file is locked while the actor is awake).
        conn = runtime._svc.dbs.get(actor_id).conn  # type: ignore[union-attr]
        assert conn is not None
        raw = []
        for _ in range(samples):
            start = time.perf_counter()
            cursor = conn.execute("SELECT id, amount, note FROM entries LIMIT 1000")
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
            raw.append(time.perf_counter() - start)
        assert len(rows) == 1000
        return statistics.median(times), statistics.median(raw)

    result: tuple[float, float] = await with_runtime(run)
    return result


async def wake_times(samples: int, megabytes: int) -> tuple[float, float]:
    async def run(runtime: Runtime, client: Client) -> tuple[float, float]:
        big = client.get_or_create("ledger", ["big"])
        for _ in range(megabytes):
            await big.fill(1024, 1000)  # ~1 MB per call
        small = client.get_or_create("counter", ["small"])
        await small.increment()
        out = []
        for handle, action in ((big, "ping"), (small, "increment")):
            actor_id = await handle.resolve()
            times = []
            for _ in range(samples):
                await runtime.sleep(actor_id)
                start = time.perf_counter()
                await handle.action(action)
                times.append(time.perf_counter() - start)
            out.append(statistics.median(times))
        return out[0], out[1]

    result: tuple[float, float] = await with_runtime(run)
    return result


def design_floors(samples: int) -> dict[str, float]:
    """p50 of one unit (a row and the state, atomically) in each design, bare sqlite3."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="pyrivet-bench-") as d:

        def connect(name: str, mode: str = "WAL") -> sqlite3.Connection:
            conn = sqlite3.connect(os.path.join(d, name), isolation_level=None)
            conn.execute(f"PRAGMA journal_mode = {mode}")
            conn.execute("PRAGMA synchronous = FULL")
            return conn

        main = connect("main.sqlite3")
        main.execute("CREATE TABLE state (id INTEGER PRIMARY KEY, v BLOB)")
        main.execute("INSERT INTO state VALUES (1, x'00')")
        main.execute("CREATE TABLE rows_shared (actor TEXT, id INTEGER, note TEXT)")
        own = connect("actor.sqlite3")
        own.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY, note TEXT)")
        own.execute("CREATE TABLE log (seq INTEGER PRIMARY KEY, record BLOB)")

        def per_actor_file(i: int) -> None:
            own.execute("BEGIN")
            own.execute("INSERT INTO entries (note) VALUES ('x')")
            own.execute("INSERT OR REPLACE INTO log VALUES (?, ?)", (i % 4, os.urandom(200)))
            own.execute("COMMIT")
            main.execute("UPDATE state SET v = ? WHERE id = 1", (os.urandom(64),))

        def shared_file(i: int) -> None:
            main.execute("BEGIN")
            main.execute("INSERT INTO rows_shared VALUES ('a', ?, 'x')", (i,))
            main.execute("UPDATE state SET v = ? WHERE id = 1", (os.urandom(64),))
            main.execute("COMMIT")

        for name, fn in (("per-actor file", per_actor_file), ("shared file", shared_file)):
            times = []
            for i in range(samples):
                start = time.perf_counter()
                fn(i)
                times.append(time.perf_counter() - start)
            out[name] = statistics.median(times)
        main.close()
        own.close()

        rollback = connect("main-rj.sqlite3", "DELETE")
        rollback.execute("CREATE TABLE state (id INTEGER PRIMARY KEY, v BLOB)")
        rollback.execute("INSERT INTO state VALUES (1, x'00')")
        other = connect("actor-rj.sqlite3", "DELETE")
        other.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY, note TEXT)")
        other.close()
        rollback.execute(f"ATTACH DATABASE '{os.path.join(d, 'actor-rj.sqlite3')}' AS a")
        times = []
        for _ in range(samples):
            start = time.perf_counter()
            rollback.execute("BEGIN")
            rollback.execute("INSERT INTO a.entries (note) VALUES ('x')")
            rollback.execute("UPDATE main.state SET v = ? WHERE id = 1", (os.urandom(64),))
            rollback.execute("COMMIT")
            times.append(time.perf_counter() - start)
        out["ATTACH (rollback journal)"] = statistics.median(times)
        rollback.close()
    return out


def median_of(runs: int, fn: Callable[[], Any]) -> Any:
    results = [fn() for _ in range(runs)]
    if isinstance(results[0], tuple):
        return tuple(statistics.median(r[i] for r in results) for i in range(len(results[0])))
    if isinstance(results[0], dict):
        return {k: statistics.median(r[k] for r in results) for k in results[0]}
    return statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, one run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    calls = 1_000 if args.quick else 5_000
    seconds = 2.0 if args.quick else 5.0
    print(
        f"# pyrivet c.db benchmark ({platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, runs={runs}, "
        f"load {os.getloadavg()[0]:.1f})",
        flush=True,
    )

    def row(measure: str, value: str, note: str = "") -> None:
        print(f"{measure:<62} {value:>16}   {note}", flush=True)

    us = 1e6
    floor = median_of(runs, lambda: commit_floor(500 if args.quick else 2_000)[0])
    row("one-commit floor (bare SQLite WAL commit, FULL), p50", f"{floor * us:.0f} µs")
    designs = median_of(runs, lambda: design_floors(300 if args.quick else 1_000))
    for name, value in designs.items():
        row(f"design floor: row + state, {name}, p50", f"{value * us:.0f} µs")

    f50, f99, s50, s99, i50, i99 = median_of(runs, lambda: asyncio.run(sequential(calls)))
    row(
        "  bare commit in the same rounds as the two actions, p50 / p99",
        f"{f50 * us:.0f} / {f99 * us:.0f} µs",
    )
    row("state-only action, sequential p50 / p99", f"{s50 * us:.0f} / {s99 * us:.0f} µs")
    row(
        "insert-1-row + state action, sequential p50 / p99",
        f"{i50 * us:.0f} / {i99 * us:.0f} µs",
        f"target ≤ floor + 60 µs: floor + {(i50 - f50) * us:.0f} µs (state-only: floor + "
        f"{(s50 - f50) * us:.0f})",
    )
    _, _, _, _, n50, _ = median_of(
        runs, lambda: asyncio.run(sequential(calls, actor_db_synchronous="NORMAL"))
    )
    row(
        "  same, actor file never synced (not power-safe), p50",
        f"{n50 * us:.0f} µs",
        "variant, for comparison",
    )

    state_tput = median_of(runs, lambda: asyncio.run(throughput("counter", "increment", seconds)))
    row("state-only action, 64 actors x 64 callers", f"{state_tput:,.0f}/s")
    insert_tput = median_of(runs, lambda: asyncio.run(throughput("ledger", "insert", seconds)))
    row(
        "insert action, 64 actors x 64 callers",
        f"{insert_tput:,.0f}/s",
        f"target ≥ 50 % of state-only ({insert_tput / state_tput:.0%})",
    )
    normal_tput = median_of(
        runs,
        lambda: asyncio.run(throughput("ledger", "insert", seconds, actor_db_synchronous="NORMAL")),
    )
    row(
        "  same, actor files never synced (not power-safe)",
        f"{normal_tput:,.0f}/s",
        f"variant ({normal_tput / state_tput:.0%} of state-only)",
    )

    query, raw = median_of(runs, lambda: asyncio.run(query_1000(20 if args.quick else 100)))
    row(
        "1,000-row query through c.db (action), p50",
        f"{query * us:.0f} µs",
        f"bare sqlite3 {raw * us:.0f} µs",
    )
    megabytes = 10
    big, small = median_of(
        runs, lambda: asyncio.run(wake_times(5 if args.quick else 20, megabytes))
    )
    row(
        f"wake + first call, actor with a {megabytes} MB database, p50",
        f"{big * us:.0f} µs",
        f"state-only actor {small * us:.0f} µs",
    )


if __name__ == "__main__":
    main()
