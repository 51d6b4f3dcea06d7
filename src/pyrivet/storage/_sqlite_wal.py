"""Writing the WAL file's first lap in advance, so a commit's fsync never grows it.

SQLite appends each commit's frames to ``<db>-wal`` and, once a checkpoint has copied
them back and nobody reads them, starts again at the file's beginning (it never
shrinks the file unless ``journal_size_limit`` says so). Until that first restart,
every commit writes past the end of the file: on ext4 the ``fdatasync`` of a commit then
also commits the file's new size and blocks in the filesystem journal, and takes about
twice as long as one that overwrites blocks already written (the benchmark's figures are
in ``bench/README.md``, "Strict WebSocket calls and the WAL's first lap"). A server
started on a fresh directory, or restarted (SQLite deletes the WAL when the last
connection closes), pays that for its first ~1,000 commits.

`prefill_wal` writes zeros from the file's end to the size of one lap and syncs them,
so the first lap overwrites. Fallocated space would not do: its first write still
converts the extent, a metadata change the fsync waits for.

Why zeros are safe: SQLite reads a WAL from its header and stops at the first frame
whose salt and checksum do not match; an all-zero header is an empty WAL, and the next
write transaction writes a new header at offset 0. Only bytes past the file's end are
written, where no frame can be, and the file is written through a descriptor of its own
that holds no locks (SQLite locks the ``-shm`` file and the database, never the WAL), so
closing it releases none of SQLite's.

Only for a store that stays open (``SQLiteDriver(wal_prefill=True)``, which `pyrivet
serve` sets): SQLite deletes the WAL when the last connection closes, and on a
filesystem mounted with ``discard`` freeing 4.4 MB makes the next fsyncs wait for the
discard (milliseconds here), which a store opened and closed often (tests) would pay
every time.

Runs on the writer thread, holding `Writer.lock`, as the job after `Writer.connect`
(before any commit). An `OSError` is logged and ignored: the WAL then grows as it
always did.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

__all__ = ["lap_size", "prefill_wal"]

log = logging.getLogger(__name__)

#: The WAL's header, and each frame's header, in bytes (SQLite's file format).
WAL_HEADER = 32
FRAME_HEADER = 24
#: Frames written past `wal_autocheckpoint` before the restart, allowed for: a checkpoint
#: runs after the commit that crossed it, and a restart needs it finished.
SLACK_FRAMES = 64


def lap_size(cur: sqlite3.Cursor) -> int:
    """Bytes of one lap of the WAL: ``wal_autocheckpoint`` frames and `SLACK_FRAMES` of
    the connection's page size (0 if auto-checkpoints are off: no lap to size)."""
    (pages,) = cur.execute("PRAGMA wal_autocheckpoint").fetchone()
    (page_size,) = cur.execute("PRAGMA page_size").fetchone()
    if pages <= 0:
        return 0
    return WAL_HEADER + (int(pages) + SLACK_FRAMES) * (int(page_size) + FRAME_HEADER)


def prefill_wal(path: Path, size: int) -> int:
    """Extend the WAL of the database ``path`` with zeros to ``size`` bytes and fsync it;
    returns the bytes written (0 if it was already that long or could not be written)."""
    wal = f"{path}-wal"
    try:
        fd = os.open(wal, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        log.warning("cannot open %s to write its first lap in advance: %s", wal, exc)
        return 0
    try:
        end = os.fstat(fd).st_size
        if end >= size:
            return 0
        zeros = bytes(min(size - end, 1 << 20))
        at = end
        while at < size:
            at += os.pwrite(fd, zeros[: size - at], at)
        os.fsync(fd)
        return size - end
    except OSError as exc:
        log.warning("writing the first lap of %s in advance failed: %s", wal, exc)
        return 0
    finally:
        os.close(fd)
