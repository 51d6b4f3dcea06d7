"""Instruction counts of the in-process strict path, for callgrind (issue 8's targets).

    # instructions of the loop thread per strict action: run at two sizes, take the
    # difference (the start-up and shut-down cancel out)
    PYTHONHASHSEED=0 valgrind --tool=callgrind --separate-threads=yes \\
        --callgrind-out-file=/tmp/cg.seq.3000 python bench/count_strict.py seq 3000
    PYTHONHASHSEED=0 valgrind ... python bench/count_strict.py seq 1000
    python bench/count_strict.py diff /tmp/cg.seq.3000-01 /tmp/cg.seq.1000-01 2000

    # the same for 64 callers over 64 actors (N actions in all, a multiple of 64)
    ... python bench/count_strict.py par 19200      # and 6400; diff over 12800

    # the same loads on the memory driver (the yardstick), and relaxed actions;
    # par-thread: 64 x 64 with every commit sent to the writer thread
    ... python bench/count_strict.py seq-memory 3000
    ... python bench/count_strict.py seq-relaxed 3000

    # 64 x 64 with background compaction on (the inline budget's clock still held):
    # compare the writer thread's file (-02) between the sizes for compaction's cost
    ... python bench/count_strict.py par-compacting 19200

    # 64 x 64 as users run it (compaction on, its time constants scaled by
    # VALGRIND_SCALE, see `scale_storage_clock`), every thread counted: `count` then
    # prints each thread's instructions per action and their sum
    python bench/count_strict.py count par-all 6400 19200

    # the same with compaction on a fixed rhythm instead of the clock's: a step of up to
    # COMPACT_STEP_ROWS after every STEADY_BATCHES batches, rounds from COMPACT_AFTER_ROWS
    # rows (what a quiet machine does at ~25k actions/s), so counts repeat under load
    python bench/count_strict.py count par-steady 6400 19200

    # wall clock, not under valgrind: how the 64 x 64 batches split between inline
    # commits and the writer thread, and what compaction steps cost there
    python bench/count_strict.py split 3

Or both sizes at once (``count MODES N1 N2 [OUT]``, modes comma-separated):

    python bench/count_strict.py count seq,seq-memory 1000 3000
    python bench/count_strict.py count par,par-memory 6400 19200

Counted runs turn background compaction off (the log never holds more than the run's
rows, a few MB) and hold the inline budget's clock still: under valgrind every inline
commit overruns the 5 ms budget, which would send the following commits to the writer
thread for a second and make the counts move by ±10 % from run to run. With both off
every commit of a counted run is inline, as on a quiet machine, and the counts repeat
to ~0.3 %. ``split`` runs with everything as shipped.

The file named by ``diff`` is the loop thread's: ``--separate-threads=yes`` writes one
file per thread, ``-01`` being the main thread (the event loop's here).
"""

from __future__ import annotations

import asyncio
import glob
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from typing import Any

from bench_core import make_registry  # this folder is sys.path[0] as a script
from pyrivet import Client
from pyrivet.storage import (
    MemoryDriver,
    SQLiteDriver,
    _sqlite,
    _sqlite_compaction,
    _sqlite_writer,
)
from pyrivet.storage._sqlite_compaction import CommitLog

WARM_UP = 200
#: How much slower the interpreter runs under callgrind (the factor `par-all` scales
#: compaction's time constants by).
VALGRIND_SCALE = 50


def quiet_storage(*, clock: bool = True, compaction: bool = False) -> None:
    """No background compaction (unless ``compaction``), and (``clock``) an inline
    budget never overrun."""
    if not compaction:
        CommitLog.due = lambda self, idle: False  # type: ignore[method-assign]
        CommitLog.idle_wait = lambda self: None  # type: ignore[method-assign]
        CommitLog.compact_all = lambda self, conn: None  # type: ignore[method-assign]
    if clock:
        _sqlite._perf_counter = lambda: 0.0


def scale_storage_clock(factor: float) -> None:
    """Stretch the compaction and checkpoint time constants by ``factor``: under valgrind
    everything runs ~`VALGRIND_SCALE` times slower, so steps sized to take 5 ms would
    shrink to their minimum (each rereading its round), and pauses of 20 ms would come
    50 times as often per action as on real hardware. Rounds still start at
    `COMPACT_AFTER_ROWS` rows, as under a real 64 x 64 load."""
    for name in ("COMPACT_STEP_SECONDS", "COMPACT_ROUND_PAUSE", "COMPACT_IDLE_SECONDS",
                 "CHECKPOINT_PAUSE_SECONDS"):  # fmt: skip
        setattr(_sqlite_compaction, name, getattr(_sqlite_compaction, name) * factor)


#: `par-steady` runs a compaction step after this many commits (512 actions: ~20 ms,
#: `COMPACT_ROUND_PAUSE`, at 25k actions/s, the wall-clock rhythm of a quiet machine).
STEADY_BATCHES = 8


def steady_compaction() -> None:
    """Compaction steps on a fixed rhythm of commits, run by the committing thread: one
    unpaced step (`COMPACT_STEP_ROWS`) after every `STEADY_BATCHES` commits while a
    round is in progress or the log holds `COMPACT_AFTER_ROWS` rows; none on the clock.
    Counts of all threads then repeat whatever the machine's load."""
    quiet_storage()
    commit = _sqlite_writer.Writer.commit
    commits = [0]

    def stepping(self: _sqlite_writer.Writer, batch: Any) -> None:
        commit(self, batch)
        commits[0] += 1
        log = self.log
        if commits[0] % STEADY_BATCHES == 0 and (
            log._round is not None or log.rows >= _sqlite_compaction.COMPACT_AFTER_ROWS
        ):
            log.compact_step(self.cur, paced=False)

    _sqlite_writer.Writer.commit = stepping  # type: ignore[method-assign]


async def sequential(name: str, n: int, memory: bool, data_dir: str) -> None:
    storage = MemoryDriver() if memory else SQLiteDriver(data_dir)
    async with make_registry().runtime(storage=storage) as runtime:
        handle = Client(runtime).get_or_create(name, ["bench"])
        for _ in range(WARM_UP):
            await handle.increment(1)
        for _ in range(n):
            await handle.increment(1)


async def parallel(
    n: int, memory: bool, data_dir: str, actors: int = 64, *, inline: bool = True
) -> None:
    storage = MemoryDriver() if memory else SQLiteDriver(data_dir, inline=inline)
    async with make_registry().runtime(storage=storage) as runtime:
        client = Client(runtime)
        handles = [client.get_or_create("counter", [f"a{i}"]) for i in range(actors)]
        for _ in range(3):
            await asyncio.gather(*(h.increment(1) for h in handles))
        per_caller = n // actors

        async def caller(i: int) -> None:
            handle = handles[i]
            for _ in range(per_caller):
                await handle.increment(1)

        await asyncio.gather(*(caller(i) for i in range(actors)))


def events(path: str) -> int:
    """The total Ir of a callgrind output file."""
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise ValueError(f"no totals in {path}")


def thread_files(prefix: str) -> list[str]:
    """The per-thread output files of one ``--separate-threads=yes`` run, in thread order."""
    return sorted(glob.glob(f"{prefix}-[0-9][0-9]"))


async def split(
    seconds: float, pragmas: dict[str, int | str], *, inline: bool = True, budget: float = 0.005
) -> None:
    """The 64 x 64 load as shipped: inline vs writer-thread commits, compaction steps."""
    counts: Counter[str] = Counter()
    step_time = [0.0]
    inline_time = [0.0]
    run, submit = SQLiteDriver._run, SQLiteDriver._submit
    maintain = _sqlite_writer.Writer.maintain
    commit = _sqlite_writer.Writer.commit

    def counted_run(self: SQLiteDriver, fn: Any, *args: Any) -> Any:
        counts["jobs"] += 1
        if getattr(fn, "__name__", "") in ("commit", "timed_commit"):
            counts["commits"] += 1
            if self._in_flight:
                counts["commits queued: a job in flight"] += 1
            elif self._inline_paused:
                counts["commits queued: inline paused (budget overrun)"] += 1
            elif self._writer is not None and self._writer.lock.locked():
                counts["commits queued: lock held (compaction step)"] += 1
        start = time.perf_counter()
        fut = run(self, fn, *args)
        took = time.perf_counter() - start
        if fut.done() and took > self._inline_budget:
            overruns.append(took)
        return fut

    def counted_submit(self: SQLiteDriver, fn: Any, *args: Any) -> Any:
        counts["submitted to the writer thread"] += 1
        return submit(self, fn, *args)

    def timed_maintain(self: Any, idle: bool) -> None:
        start = time.perf_counter()
        rows = self.log.rows
        maintain(self, idle)
        if self.log.rows != rows or self.log._round is not None:
            counts["compaction steps"] += 1
        step_time[0] += time.perf_counter() - start

    def timed_commit(self: Any, batch: Any) -> None:
        start = time.perf_counter()
        commit(self, batch)
        if threading_is_main():
            inline_time[0] += time.perf_counter() - start

    SQLiteDriver._run = counted_run  # type: ignore[method-assign,assignment]
    SQLiteDriver._submit = counted_submit  # type: ignore[method-assign,assignment]
    _sqlite_writer.Writer.maintain = timed_maintain  # type: ignore[method-assign]
    _sqlite_writer.Writer.commit = timed_commit  # type: ignore[method-assign]
    overruns: list[float] = []
    with tempfile.TemporaryDirectory(prefix="pyrivet-count-") as data_dir:
        storage = SQLiteDriver(data_dir, pragmas=pragmas, inline=inline, inline_budget=budget)
        async with make_registry().runtime(storage=storage) as runtime:
            client = Client(runtime)
            handles = [client.get_or_create("counter", [f"a{i}"]) for i in range(64)]
            await asyncio.gather(*(h.increment(1) for h in handles))
            counts.clear()
            step_time[0] = inline_time[0] = 0.0
            done = 0
            stop = time.perf_counter() + seconds
            b0, r0 = runtime.committer_stats()

            async def caller(i: int) -> None:
                nonlocal done
                while time.perf_counter() < stop:
                    await handles[i].increment(1)
                    done += 1

            start = time.perf_counter()
            await asyncio.gather(*(caller(i) for i in range(64)))
            elapsed = time.perf_counter() - start
            batches, records = runtime.committer_stats()
    print(f"{done / elapsed:,.0f} actions/s, {done} actions, {batches - b0} batches "
          f"({(records - r0) / max(1, batches - b0):.1f} records each)")  # fmt: skip
    for what, count in sorted(counts.items()):
        print(f"  {what}: {count}")
    longest = ", ".join(f"{o * 1e3:.1f}" for o in sorted(overruns)[-8:])
    print(f"  inline jobs over the budget: {len(overruns)}; the longest {longest} ms")
    print(f"  inline commit time: {inline_time[0] * 1e6 / max(1, done):.1f} µs per action")
    print(
        f"  maintain() time (writer thread): {step_time[0] * 1e6 / max(1, done):.1f} µs per action"
    )


def threading_is_main() -> bool:
    return threading.current_thread() is threading.main_thread()


def count(mode: str, small: int, big: int, out: str) -> None:
    """Run ``mode`` under callgrind at both sizes; print the loop thread's Ir per action."""
    totals = []
    threads: list[list[int]] = []
    for n in (small, big):
        prefix = f"{out}.{mode}.{n}"
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--separate-threads=yes",
             f"--callgrind-out-file={prefix}", sys.executable, __file__, mode, str(n)],
            check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        totals.append(events(f"{prefix}-01"))
        threads.append([events(path) for path in thread_files(prefix)])
    per = (totals[1] - totals[0]) / (big - small)
    print(f"{mode}: {per:,.0f} instructions per action (loop thread; {out}.{mode}.{big}-01)")
    if len(threads[0]) == len(threads[1]):
        each = [(b - a) / (big - small) for a, b in zip(*threads, strict=True)]
        split = ", ".join(f"-{i:02d} {v:,.0f}" for i, v in enumerate(each, 1))
        print(f"  all threads: {sum(each):,.0f} per action ({split})")


def main() -> None:
    mode = sys.argv[1]
    if mode == "diff":
        ops = int(sys.argv[4])
        print(f"{(events(sys.argv[2]) - events(sys.argv[3])) / ops:,.0f} instructions per action")
        return
    if mode == "count":
        small, big = int(sys.argv[3]), int(sys.argv[4])
        out = sys.argv[5] if len(sys.argv) > 5 else "/tmp/cg"
        for what in sys.argv[2].split(","):
            count(what, small, big, out)
        return
    if mode == "split":
        if "--no-compaction" in sys.argv:
            quiet_storage(clock=False)
        pragmas: dict[str, int | str] = {}
        for arg in sys.argv[3:]:
            if arg.startswith("--pragma="):
                key, value = arg.removeprefix("--pragma=").split("=")
                pragmas[key] = int(value) if value.isdigit() else value
        budget = 0.005
        for arg in sys.argv[3:]:
            if arg.startswith("--budget="):
                budget = float(arg.removeprefix("--budget="))
        inline = "--no-inline" not in sys.argv
        asyncio.run(split(float(sys.argv[2]), pragmas, inline=inline, budget=budget))
        return
    n = int(sys.argv[2])
    if mode == "par-steady":
        steady_compaction()
    else:
        quiet_storage(compaction=mode in ("par-compacting", "par-all"))
    if mode == "par-all":
        scale_storage_clock(VALGRIND_SCALE)
    with tempfile.TemporaryDirectory(prefix="pyrivet-count-") as data_dir:
        if mode == "seq":
            asyncio.run(sequential("counter", n, False, data_dir))
        elif mode == "seq-relaxed":
            asyncio.run(sequential("relaxed_counter", n, False, data_dir))
        elif mode == "seq-memory":
            asyncio.run(sequential("counter", n, True, data_dir))
        elif mode in ("par", "par-compacting", "par-all", "par-steady"):
            asyncio.run(parallel(n, False, data_dir))
        elif mode == "par-thread":  # every commit on the writer thread
            asyncio.run(parallel(n, False, data_dir, inline=False))
        elif mode == "par-memory":
            asyncio.run(parallel(n, True, data_dir))
        else:
            raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
