"""The SQLite driver's compaction steps skip the fsync; durable commits never do."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from pyrivet.storage import (
    CommitRecord,
    HistoryEntry,
    SQLiteDriver,
    _sqlite_compaction as compaction,
)

# PRAGMA synchronous reads back as a number.
_LEVEL = {"NORMAL": 1, "FULL": 2}


def record(actor_id: str, seq: int) -> CommitRecord:
    state = b"s%d" % seq
    return CommitRecord(actor_id, seq, state=state, event=HistoryEntry(actor_id, seq, seq, "save"))


def traced(store: SQLiteDriver) -> list[str]:
    """Every statement the writer's connection runs from now on (first word + pragma)."""
    writer = store._writer
    assert writer is not None
    seen: list[str] = []
    writer.conn.set_trace_callback(
        lambda sql: seen.append(sql if sql.startswith("PRAGMA") else sql.split()[0])
    )
    return seen


def synchronous(store: SQLiteDriver) -> int:
    writer = store._writer
    assert writer is not None
    return int(writer.cur.execute("PRAGMA synchronous").fetchone()[0])


@pytest.mark.parametrize("mode", ["FULL", "NORMAL"])
async def test_only_steps_commit_unsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: Literal["FULL", "NORMAL"]
) -> None:
    store = SQLiteDriver(tmp_path / "data", synchronous=mode)
    await store.open()
    try:
        seen = traced(store)
        await store.commit([record("a1", 1), record("a1", 2)])
        assert not [s for s in seen if s.startswith("PRAGMA")]  # a commit runs at `mode`
        seen.clear()
        # read_history first moves the actor's rows: one step.
        assert [e.seq for e in await store.read_history("a1")] == [1, 2]
        step = seen[: seen.index("COMMIT") + 1]
        if mode == "FULL":
            assert step[0] == "PRAGMA synchronous = NORMAL" and step[1] == "BEGIN"
            assert seen[len(step)] == "PRAGMA synchronous = FULL"
        else:
            assert step[0] == "BEGIN"
        assert synchronous(store) == _LEVEL[mode]

        # A step that fails restores the level too, and moves nothing.
        await store.commit([record("a1", 3)])
        monkeypatch.setattr(compaction, "_MOVE_EVENTS", "SELECT no_such_column FROM actor_log")
        with pytest.raises(Exception, match="no_such_column"):
            await store.read_history("a1")
        assert synchronous(store) == _LEVEL[mode]
        monkeypatch.undo()
        assert [e.seq for e in await store.read_history("a1")] == [1, 2, 3]
    finally:
        await store.close()


async def test_records_synced_elsewhere_commit_unsynced_and_stay_durable(tmp_path: Path) -> None:
    """A batch whose every record is ``synced_elsewhere`` (an actor database's redo log
    holds it) commits at NORMAL; a mixed batch at FULL; both are read back after reopen."""
    store = SQLiteDriver(tmp_path / "data")
    await store.open()
    try:
        seen = traced(store)
        relaxed = record("a1", 1)
        relaxed.synced_elsewhere = True
        await store.commit([relaxed])
        assert seen[0] == "PRAGMA synchronous = NORMAL"
        assert seen[-1] == "PRAGMA synchronous = FULL"
        seen.clear()
        other = record("a1", 2)
        other.synced_elsewhere = True
        await store.commit([other, record("a2", 1)])
        assert not [s for s in seen if s.startswith("PRAGMA")]
        assert synchronous(store) == _LEVEL["FULL"]
    finally:
        await store.close()
    reopened = SQLiteDriver(tmp_path / "data")
    await reopened.open()
    try:
        assert (await reopened.load_state("a1")).seq == 2
    finally:
        await reopened.close()
