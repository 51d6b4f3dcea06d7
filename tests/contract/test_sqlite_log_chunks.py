"""The SQLite driver writes a batch's log rows in power-of-two multi-row INSERTs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyrivet.storage import CommitRecord, HistoryEntry, SQLiteDriver


def record(actor_id: str, seq: int) -> CommitRecord:
    state = b"s%d" % seq
    return CommitRecord(
        actor_id,
        seq,
        state=state,
        event=HistoryEntry(actor_id, seq, seq, "action", "inc", "conn", b"[1]", state),
    )


@pytest.mark.parametrize("size", [1, 2, 3, 63, 64, 65, 200])
async def test_every_row_of_a_batch_is_written_once(tmp_path: Path, size: int) -> None:
    store = SQLiteDriver(tmp_path / "data")
    await store.open()
    try:
        writer = store._writer
        assert writer is not None
        inserts: list[str] = []
        writer.conn.set_trace_callback(
            lambda sql: inserts.append(sql) if sql.startswith("INSERT INTO actor_log") else None
        )
        # Two actors interleaved, a few rows each; the batch after it continues the rowids.
        first = [record(f"a{i % 2}", i // 2 + 1) for i in range(size)]
        await store.commit(first)
        rows = [sql.count("),(") + 1 for sql in inserts]
        assert sum(rows) == size
        assert all(n & (n - 1) == 0 and n <= 64 for n in rows)  # powers of two up to 64
        assert rows == sorted(rows, reverse=True)
        assert len(rows) == bin(size).count("1") + size // 128  # 200: 64, 64, 64, 8
        await store.commit([record("a0", (size + 1) // 2 + 1)])
        for actor, count in (("a0", (size + 1) // 2 + 1), ("a1", size // 2)):
            if not count:
                continue
            state = await store.load_state(actor)
            assert (state.seq, state.snapshot) == (count, b"s%d" % count)
            history = await store.read_history(actor)
            assert [(e.seq, e.name, e.by, e.args) for e in history] == [
                (seq, "inc", "conn", b"[1]") for seq in range(1, count + 1)
            ]
    finally:
        await store.close()
