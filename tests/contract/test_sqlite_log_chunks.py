"""The SQLite driver writes a batch's log rows in power-of-two multi-row INSERTs, lean
rows (no ``by``, ops or workflow records) with fewer columns bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyrivet.storage import CommitRecord, HistoryEntry, SQLiteDriver


def record(actor_id: str, seq: int, by: str | None) -> CommitRecord:
    state = b"s%d" % seq
    return CommitRecord(
        actor_id,
        seq,
        state=state,
        event=HistoryEntry(actor_id, seq, seq, "action", "inc", by, b"[1]", state),
    )


def who(i: int, shape: str) -> str | None:
    """The ``by`` of the batch's ``i``-th record: a full row, a lean one, or mixed."""
    return {"full": "conn", "lean": None}.get(shape, "conn" if i % 3 == 0 else None)


@pytest.mark.parametrize("shape", ["full", "lean", "mixed"])
@pytest.mark.parametrize("size", [1, 2, 3, 63, 64, 65, 200])
async def test_every_row_of_a_batch_is_written_once(tmp_path: Path, size: int, shape: str) -> None:
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
        batch = [record(f"a{i % 2}", i // 2 + 1, who(i, shape)) for i in range(size)]
        await store.commit(batch)
        rows = [sql.count("),(") + 1 for sql in inserts]
        assert sum(rows) == size
        assert all(n & (n - 1) == 0 and n <= 64 for n in rows)  # powers of two up to 64
        if shape != "mixed":
            assert rows == sorted(rows, reverse=True)
            assert len(rows) == bin(size).count("1") + size // 128  # 200: 64, 64, 64, 8
        await store.commit([record("a0", (size + 1) // 2 + 1, None)])
        for actor, count in (("a0", (size + 1) // 2 + 1), ("a1", size // 2)):
            if not count:
                continue
            state = await store.load_state(actor)
            assert (state.seq, state.snapshot) == (count, b"s%d" % count)
            history = await store.read_history(actor)
            assert [(e.seq, e.name, e.by, e.args, e.state, e.ops) for e in history] == [
                (b.seq, "inc", b.event.by, b"[1]", b.state, None)
                for b in [*batch, record("a0", (size + 1) // 2 + 1, None)]
                if b.actor_id == actor and b.event is not None
            ]
    finally:
        await store.close()


@pytest.mark.parametrize("by", [None, "conn"])
async def test_prune_bounds_of_lean_and_full_rows(tmp_path: Path, by: str | None) -> None:
    """A lean row carries its record's prune bound like a full one, across a reopen."""
    store = SQLiteDriver(tmp_path / "data")
    await store.open()
    try:
        batch = [record("p", seq, by) for seq in range(1, 11)]
        for rec in batch:
            rec.prune_history_before = rec.seq - 2 if rec.seq > 3 else None
        await store.commit(batch[:5])
        await store.commit(batch[5:])
    finally:
        await store.close()
    store = SQLiteDriver(tmp_path / "data")
    await store.open()
    try:
        assert [e.seq for e in await store.read_history("p")] == [8, 9, 10]
        assert (await store.load_state("p")).snapshot == b"s10"
    finally:
        await store.close()
