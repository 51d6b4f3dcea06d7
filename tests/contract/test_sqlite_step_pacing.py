"""When the SQLite driver's writer thread runs compaction steps: never ahead of queued
jobs (unless compaction falls behind), and a pause after the end of the last step."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from pyrivet.storage import (
    CommitRecord,
    HistoryEntry,
    SQLiteDriver,
    _sqlite_compaction as compaction,
)
from pyrivet.storage._sqlite_writer import Writer


def record(actor_id: str, seq: int) -> CommitRecord:
    state = b"s%d" % seq
    return CommitRecord(actor_id, seq, state=state, event=HistoryEntry(actor_id, seq, seq, "save"))


@pytest.mark.parametrize("behind", [False, True], ids=["keeping-up", "falling-behind"])
async def test_queued_jobs_go_before_the_next_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, behind: bool
) -> None:
    """While a round is in progress, the jobs queued behind a job run before the round's
    next step: a step after each would make the last of them wait for one step per job
    ahead of it. Once the log holds `COMPACT_AFTER_ROWS` rows (compaction is falling
    behind) a step follows every job."""
    monkeypatch.setattr(compaction, "COMPACT_ROUND_PAUSE", 0.0)
    monkeypatch.setattr(compaction, "COMPACT_IDLE_SECONDS", 1e9)
    monkeypatch.setattr(compaction, "COMPACT_STEP_ROWS", 1)  # a step per actor: long rounds
    monkeypatch.setattr(compaction, "COMPACT_AFTER_ROWS", 8 if behind else 1000)
    # No steps while the thread waits for a job: only those that follow a job.
    monkeypatch.setattr(compaction.CommitLog, "idle_wait", lambda self: None)
    events: list[str] = []
    compact_step = compaction.CommitLog.compact_step

    def step(self: compaction.CommitLog, conn: sqlite3.Cursor, *, paced: bool = True) -> bool:
        events.append("step")
        return compact_step(self, conn, paced=paced)

    monkeypatch.setattr(compaction.CommitLog, "compact_step", step)
    store = SQLiteDriver(tmp_path, synchronous="NORMAL", inline=False)
    await store.open()
    try:
        writer = store._w()
        await store.commit([record(f"a{i:02}", 1) for i in range(16)])
        await store._submit(lambda: writer.log.compact_step(writer.cur))  # starts a round
        release = threading.Event()

        def job(name: str) -> None:
            events.append(name)
            if name == "blocker":
                assert release.wait(10)

        blocker = store._submit(job, "blocker")
        queued = [store._submit(job, f"job{i}") for i in range(3)]  # behind the blocker
        release.set()
        await asyncio.gather(blocker, *queued)
        after = events[events.index("blocker") :]
        if behind:
            assert after[:6] == ["blocker", "step", "job0", "step", "job1", "step"]
        else:
            assert after[:4] == ["blocker", "job0", "job1", "job2"]
        assert writer.log._round is not None  # all of it within one round
    finally:
        await store.close()


class _SlowCursor:
    """A cursor whose transactions take ``seconds`` of the fake clock ``now``."""

    def __init__(self, cur: sqlite3.Cursor, now: list[float], seconds: float) -> None:
        self._cur = cur
        self._now = now
        self._seconds = seconds

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "BEGIN IMMEDIATE":
            self._now[0] += self._seconds
        return self._cur.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


def test_the_pause_between_steps_counts_from_the_end_of_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that took longer than `COMPACT_ROUND_PAUSE` is not followed by the next at
    once; and a queued job (``idle=False``) goes before it whatever the time."""
    now = [100.0]
    clock = SimpleNamespace(monotonic=lambda: now[0], perf_counter=time.perf_counter)
    monkeypatch.setattr(compaction, "time", clock)
    monkeypatch.setattr(compaction, "COMPACT_STEP_ROWS", 1)
    writer = Writer(tmp_path / "db.sqlite3", "NORMAL", {})
    writer.connect()
    try:
        writer.commit([record(f"a{i}", 1) for i in range(4)])
        log = writer.log
        assert log.compact_step(cast(sqlite3.Cursor, _SlowCursor(writer.cur, now, 1.0)))
        assert now[0] == 101.0 and log._round is not None  # 3 more steps to go
        pause = compaction.COMPACT_ROUND_PAUSE
        now[0] += pause / 2
        assert not log.due(idle=True)
        assert 0 < (log.idle_wait() or 0) <= pause / 2
        now[0] += pause
        assert log.due(idle=True)
        assert not log.due(idle=False)
    finally:
        writer.close()
