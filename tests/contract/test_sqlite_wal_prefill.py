"""The SQLite driver writes the WAL's first lap in advance; SQLite reads past the zeros."""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from pyrivet.storage import CommitRecord, HistoryEntry, SQLiteDriver
from pyrivet.storage._sqlite import DB_FILE
from pyrivet.storage._sqlite_wal import lap_size, prefill_wal


def record(actor_id: str, seq: int) -> CommitRecord:
    state = b"s%d" % seq
    return CommitRecord(actor_id, seq, state=state, event=HistoryEntry(actor_id, seq, seq, "save"))


def wal_size(data_dir: Path, db: str = DB_FILE) -> int:
    return os.path.getsize(data_dir / f"{db}-wal")


async def test_commits_of_the_first_lap_do_not_grow_the_wal(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = SQLiteDriver(data, wal_prefill=True)
    await store.open()
    try:
        writer = store._writer
        assert writer is not None
        lap = lap_size(writer.cur)
        assert lap > 1000 * 4096  # the default: 1,000 pages of 4 KiB and their headers
        assert wal_size(data) == lap
        for seq in range(1, 101):
            await store.commit([record("a1", seq)])
        assert wal_size(data) == lap  # overwritten in place
    finally:
        await store.close()
    store = SQLiteDriver(data)
    await store.open()
    try:
        assert (await store.load_state("a1")).snapshot == b"s100"
    finally:
        await store.close()


async def test_off_by_default(tmp_path: Path) -> None:
    store = SQLiteDriver(tmp_path / "data")
    await store.open()
    try:
        writer = store._writer
        assert writer is not None
        assert wal_size(tmp_path / "data") < lap_size(writer.cur) // 2
    finally:
        await store.close()


def count(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT count(*) FROM t").fetchone()[0])


def crash_image(path: Path, into: Path) -> Path:
    """Copies of the database and its WAL as a crash would leave them (no checkpoint)."""
    into.mkdir()
    for suffix in ("", "-wal"):
        shutil.copyfile(f"{path}{suffix}", into / f"{path.name}{suffix}")
    return into / path.name


def test_frames_before_and_after_the_zeros_are_recovered(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA wal_autocheckpoint = 0")  # every commit stays in the WAL
        db.execute("CREATE TABLE t (v BLOB)")
        for _ in range(20):
            db.execute("INSERT INTO t VALUES (randomblob(3000))")
        end = wal_size(tmp_path, path.name)
        assert prefill_wal(path, end + 2_000_000) == 2_000_000
        assert wal_size(tmp_path, path.name) == end + 2_000_000
        assert count(crash_image(path, tmp_path / "crash1")) == 20
        for _ in range(20):  # written over the zeros
            db.execute("INSERT INTO t VALUES (randomblob(3000))")
        assert wal_size(tmp_path, path.name) == end + 2_000_000
        assert count(crash_image(path, tmp_path / "crash2")) == 40
        assert prefill_wal(path, end) == 0  # already longer: left alone


def test_an_empty_wal_of_zeros_is_an_empty_wal(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE t (v BLOB)")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL is now 0 bytes
        assert wal_size(tmp_path, path.name) == 0
        assert prefill_wal(path, 100_000) == 100_000
        db.execute("INSERT INTO t VALUES (x'01')")
        assert count(crash_image(path, tmp_path / "crash")) == 1


def test_a_wal_that_cannot_be_written_is_left_to_grow(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert prefill_wal(tmp_path / "missing" / "db.sqlite3", 100_000) == 0
    assert "first lap" in caplog.text
