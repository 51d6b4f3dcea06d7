"""Where the tail of `bench_grown.py` comes from (``--trace``): what ran while the slow
calls waited.

`Trace.install` wraps three functions of the SQLite driver for the life of the process
(the bench's, never a library's): `Checkpointer.checkpoint` (one passive WAL
checkpoint, on the checkpointer thread), ``_sqlite._run_job`` (every driver job, inline
on the event loop or on the writer thread) and `Writer.maintain` (compaction steps), and
adds a `gc.callbacks` entry timing collections. Each records ``(start, end, ...)`` with
`time.perf_counter`, the clock the bench times calls with, so a slow call can be set
against what overlapped it. The wrappers cost a clock read and a list append per job.

`Trace.begin` clears the records and reads each driver thread's I/O counters
(``/proc/self/task/<tid>/io``: bytes passed to ``read``/``write``, i.e. SQLite pages
read and written, page cache hits included); `Trace.summarize` sets `Trace.report`, the
lines to print.
"""

from __future__ import annotations

import gc
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyrivet.storage import _sqlite, _sqlite_compaction, _sqlite_writer

#: A call, job or checkpoint "stalls" past this.
SLOW_S = 0.005
_PAGE = 4096

Span = tuple[float, float]


class Trace:
    """Timestamps of checkpoints, steps, driver jobs and collections; see the module."""

    def __init__(self) -> None:
        #: (start, end, frames in the WAL, frames copied back so far) per checkpoint.
        self.checkpoints: list[tuple[float, float, int, int]] = []
        #: (start, end, job name) per driver job.
        self.jobs: list[tuple[float, float, str]] = []
        self.steps: list[Span] = []
        #: (start, end, generation) per collection.
        self.collections: list[tuple[float, float, int]] = []
        self._gc_start = 0.0
        self._io: dict[str, tuple[int, int]] = {}
        #: The lines `summarize` wrote last.
        self.report: list[str] = []

    def install(self) -> None:
        """Wrap the driver's functions (once per process) and time collections."""
        clock = time.perf_counter
        trace = self
        checkpoint = _sqlite_compaction.Checkpointer.checkpoint
        run_job = _sqlite._run_job
        maintain = _sqlite_writer.Writer.maintain

        def timed_checkpoint(
            self: _sqlite_compaction.Checkpointer, cur: sqlite3.Cursor
        ) -> tuple[int, int, int]:
            start = clock()
            result = checkpoint(self, cur)
            trace.checkpoints.append((start, clock(), result[1], result[2]))
            return result

        def timed_job(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
            start = clock()
            result = run_job(fn, args)
            trace.jobs.append((start, clock(), fn.__name__))
            return result

        def timed_maintain(self: _sqlite_writer.Writer, idle: bool) -> None:
            start = clock()
            maintain(self, idle)
            trace.steps.append((start, clock()))

        _sqlite_compaction.Checkpointer.checkpoint = timed_checkpoint  # type: ignore[method-assign]
        _sqlite._run_job = timed_job
        _sqlite_writer.Writer.maintain = timed_maintain  # type: ignore[method-assign]
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.collections.append((self._gc_start, time.perf_counter(), info["generation"]))

    def begin(self) -> None:
        """Forget earlier records; called once the runtime is open (threads started)."""
        self.checkpoints.clear()
        self.jobs.clear()
        self.steps.clear()
        self.collections.clear()
        self._io = _thread_io()

    def summarize(self, calls: list[Span], counted_from: float) -> None:
        """Describe the run in `report`: ``calls`` are (due, replied) of the counted
        calls; call it before the runtime closes (the driver threads must be alive)."""
        io = {name: _minus(now, self._io.get(name, (0, 0))) for name, now in _thread_io().items()}
        after = [c for c in self.checkpoints if c[1] > counted_from]
        steps = [s for s in self.steps if s[1] > counted_from]
        jobs = [j for j in self.jobs if j[1] > counted_from]
        full = [c for c in self.collections if c[1] > counted_from and c[2] == 2]
        end = max((c[1] for c in calls), default=counted_from)
        covered = sum(min(c[1], end) - max(c[0], counted_from) for c in after)
        latencies = sorted(done - due for due, done in calls)
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if calls else 0.0
        slow = [c for c in calls if c[1] - c[0] >= p99]
        long_ckpt = [c[:2] for c in after if c[1] - c[0] > SLOW_S]
        long_jobs = [j[:2] for j in jobs if j[1] - j[0] > SLOW_S]
        causes = {
            "a checkpoint over 5 ms": long_ckpt,
            "a compaction step": steps,
            "a gen-2 collection": [c[:2] for c in full],
            "a driver job over 5 ms": long_jobs,
        }
        counts = {
            name: sum(1 for c in slow if _overlaps(spans, c)) for name, spans in causes.items()
        }
        unexplained = sum(1 for c in slow if not any(_overlaps(s, c) for s in causes.values()))
        commits = [j[:2] for j in jobs if j[2] == "commit"]
        slow_commits = [c for c in commits if c[1] - c[0] > SLOW_S]
        durations = sorted(c[1] - c[0] for c in after)
        step_times = sorted(s[1] - s[0] for s in steps)
        writer = io.get("pyrivet-sqlite-writer", (0, 0))
        checkpointer = io.get("pyrivet-sqlite-checkpointer", (0, 0))
        share = covered / max(end - counted_from, 1e-9)
        self.report = [
            f"    checkpoints: {len(after)}, {len(long_ckpt)} over 5 ms, max "
            f"{max(durations, default=0) * 1e3:.1f} ms, {share:.0%} of the run; "
            f"{_copied(after):,} WAL frames backfilled (the checkpointer thread wrote "
            f"{checkpointer[1]:,} pages)",
            f"    compaction steps: {len(steps)}, p50 "
            f"{statistics.median(step_times) * 1e3 if step_times else 0:.1f} ms, max "
            f"{max(step_times, default=0) * 1e3:.1f} ms; writer thread read {writer[0]:,} and "
            f"wrote {writer[1]:,} pages; gen-2 collections (ms): "
            f"{[round((c[1] - c[0]) * 1e3) for c in full]}",
            f"    commits: {len(commits):,}, {len(slow_commits)} over 5 ms, "
            f"{sum(1 for c in slow_commits if _overlaps(long_ckpt, c))} of them during a "
            f"checkpoint over 5 ms",
            f"    the {len(slow)} calls at or over p99 waited during: "
            + ", ".join(f"{name} {n}" for name, n in counts.items())
            + f"; none of these {unexplained}",
        ]


def _overlaps(spans: list[Span], span: Span) -> bool:
    start, end = span
    return any(s < end and e > start for s, e in spans)


def _copied(checkpoints: list[tuple[float, float, int, int]]) -> int:
    """Pages copied back by these checkpoints: SQLite reports a running total per WAL,
    which starts again when the writer restarts the WAL."""
    total = last_frames = last_copied = 0
    for _start, _end, frames, copied in checkpoints:
        if copied < 0:
            continue
        same_wal = frames >= last_frames and copied >= last_copied
        total += copied - last_copied if same_wal else copied
        last_frames, last_copied = frames, copied
    return total


def _minus(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] - b[0], a[1] - b[1]


def _thread_io() -> dict[str, tuple[int, int]]:
    """(pages read, pages written) through read/write calls, per live named thread;
    empty where ``/proc`` has no per-thread I/O counters."""
    out: dict[str, tuple[int, int]] = {}
    for thread in threading.enumerate():
        try:
            text = Path(f"/proc/self/task/{thread.native_id}/io").read_text()
        except OSError:
            continue
        fields = dict(line.split(": ") for line in text.splitlines() if ": " in line)
        out[thread.name] = (int(fields["rchar"]) // _PAGE, int(fields["wchar"]) // _PAGE)
    return out
