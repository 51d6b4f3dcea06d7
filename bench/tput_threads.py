"""CPU time per action of each thread under bench_core's 64 x 64 throughput load.

    python bench/tput_threads.py [SECONDS] [ROUNDS] [--no-compaction]

Runs the load on the memory driver, then on SQLite (strict), ROUNDS times alternately
(default 3 rounds of 3 s), and prints per run: actions/s, group-commit batches, how
many jobs went to the writer thread, and each thread's CPU time (user + system, from
``/proc/self/task/*/stat``) per action in µs. Thread CPU time holds up on a loaded
machine, where wall-clock rates do not. ``--no-compaction`` turns background
compaction off (as `count_strict.quiet_storage`). Linux only.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import threading
import time
from typing import Any

import bench_core  # this folder is sys.path[0] as a script
from pyrivet import Client, Runtime
from pyrivet.storage import SQLiteDriver

TICK = os.sysconf("SC_CLK_TCK")


def thread_times() -> dict[int, float]:
    """Thread id -> CPU seconds (user + system) for every thread of this process."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / TICK
    return out


async def run(seconds: float, memory: bool) -> tuple[float, dict[str, float]]:
    """Actions/s, and per thread name the CPU µs per action (plus the counts)."""

    async def body(runtime: Runtime, client: Client) -> tuple[float, dict[str, float]]:
        handles = [client.get_or_create("counter", [f"a{i}"]) for i in range(64)]
        await asyncio.gather(*(h.increment(1) for h in handles))
        done = 0
        submitted = 0
        original = SQLiteDriver._submit

        def counted(self: SQLiteDriver, fn: Any, *args: Any) -> Any:
            nonlocal submitted
            submitted += 1
            return original(self, fn, *args)

        SQLiteDriver._submit = counted  # type: ignore[method-assign,assignment]
        try:
            stop = time.perf_counter() + seconds

            async def caller(i: int) -> None:
                nonlocal done
                while time.perf_counter() < stop:
                    await handles[i].increment(1)
                    done += 1

            batches0 = runtime.committer_stats()[0]
            before = thread_times()
            start = time.perf_counter()
            await asyncio.gather(*(caller(i) for i in range(64)))
            elapsed = time.perf_counter() - start
            after = thread_times()
        finally:
            SQLiteDriver._submit = original  # type: ignore[method-assign]
        names = {t.native_id: t.name for t in threading.enumerate()}
        per: dict[str, float] = {}
        for tid, cpu in after.items():
            name = "loop" if tid == os.getpid() else names.get(tid, str(tid))
            per[name] = per.get(name, 0.0) + (cpu - before.get(tid, 0.0)) * 1e6 / done
        per["batches"] = runtime.committer_stats()[0] - batches0
        per["to the writer thread"] = submitted
        return done / elapsed, per

    result: tuple[float, dict[str, float]] = await bench_core.with_runtime(
        body, storage="memory" if memory else "sqlite"
    )
    return result


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if "--no-compaction" in sys.argv:
        import count_strict

        count_strict.quiet_storage(clock=False)
    seconds = float(args[0]) if args else 3.0
    rounds = int(args[1]) if len(args) > 1 else 3
    rates: dict[bool, list[float]] = {True: [], False: []}
    loops: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(rounds):
        for memory in (True, False):
            rate, per = asyncio.run(run(seconds, memory))
            rates[memory].append(rate)
            loops[memory].append(per.get("loop", 0.0))
            counts = f"{per.pop('batches'):.0f} batches, {per.pop('to the writer thread'):.0f} jobs"
            cpu = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items()) if v >= 0.01)
            print(f"{'memory' if memory else 'strict'}: {rate:,.0f}/s ({counts} to the "
                  f"writer thread); CPU µs per action: {cpu}", flush=True)  # fmt: skip
    m, s = statistics.median(rates[True]), statistics.median(rates[False])
    print(f"medians: strict {s:,.0f} / memory {m:,.0f} actions/s = {s / m:.2f} x; loop "
          f"thread CPU µs per action: strict {statistics.median(loops[False]):.2f}, "
          f"memory {statistics.median(loops[True]):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
