"""Where each actor's own SQL database (``c.db``) lives, and its private redo log.

Every actor type declared with ``db=True`` (or an ``on_migrate`` hook) gets one SQLite
database of its own, isolated from every other actor. A driver says where these live
by implementing `HasActorDatabases`:

* `FileDatabases` (the SQLite driver): one file per actor,
  ``<data_dir>/actor-db/<actor_id>.sqlite3``, in WAL mode. The file outlives sleep and
  restart and is deleted when the actor is destroyed.
* `MemoryDatabases` (the memory driver): one in-memory SQLite database per actor,
  kept open as long as the driver object lives (sleep keeps it, destroy drops it).

**The redo log.** An actor's SQL writes and its state must never be found at different
points after a crash, although they live in different files. The runtime commits the
actor's database *before* the main store's commit of the same unit of work, and in the
same SQLite transaction as the SQL writes it records every commit record of that actor
not yet known durable in the main store (`write_log`). On wake, records in the log newer
than the main store's seq are the main store's lost commits: the runtime writes them
again (``_runtime/actor_db.py``, roll forward). Rows are versioned msgpack of
`CommitRecord`; fields added later with defaults decode from older rows.

Everything here is synchronous and runs on the event loop (a commit is one WAL append;
see docs/sql.md for the cost). Connections are opened with ``check_same_thread=False``:
the runtime runs an actor's ``COMMIT`` on a sync thread while the loop leaves that
connection alone (``_runtime/actor_dbs.py``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Protocol, runtime_checkable

import msgspec

from ..errors import StorageError
from ._base import CommitRecord

__all__ = [
    "LOG_TABLE",
    "ActorDatabases",
    "FileDatabases",
    "HasActorDatabases",
    "MemoryDatabases",
    "read_log",
    "write_log",
]

#: The private table of the redo log (hidden from the inspector; do not touch it).
LOG_TABLE = "_pyrivet_log"
#: The version of a log row's encoding.
_LOG_VERSION = 1
_encoder = msgspec.msgpack.Encoder()
_PUT_LOG = f"INSERT OR REPLACE INTO {LOG_TABLE} (seq, version, record) VALUES (?, ?, ?)"
_decoder = msgspec.msgpack.Decoder(CommitRecord)


class ActorDatabases(Protocol):
    """Opens, closes and deletes the per-actor databases of one driver."""

    __slots__ = ()

    def open(self, actor_id: str, *, fresh: bool) -> sqlite3.Connection:
        """A connection to the actor's database (autocommit; the caller manages
        transactions). ``fresh``: a new actor, so anything left under its id is removed.

        Raises:
            StorageError: the file cannot be created or is not a SQLite database.
        """
        ...

    def unsynced_fd(self, actor_id: str) -> int | None:
        """An open descriptor of the file to fdatasync after a commit of the actor's
        database, before the store's commit that depends on it (valid until the actor's
        database is closed); None when commits need no sync (memory, or a driver that
        does not sync its own commits).

        Raises:
            OSError: the file cannot be opened.
        """
        ...

    def close(self, actor_id: str, conn: sqlite3.Connection) -> None:
        """The actor went to sleep (or failed to start): release ``conn``."""
        ...

    def delete(self, actor_id: str, conn: sqlite3.Connection | None) -> None:
        """The actor was destroyed: close ``conn`` and delete its database."""
        ...

    def close_all(self) -> None:
        """The runtime closes: release every connection still open."""
        ...


@runtime_checkable
class HasActorDatabases(Protocol):
    """A driver that can host per-actor SQL databases."""

    def actor_databases(self) -> ActorDatabases: ...


def _prepare(conn: sqlite3.Connection, wal: bool, synchronous: str) -> None:
    """Set the pragmas and create the log table; reads the header, so a file that is
    not a database fails here.

    A file is opened in exclusive locking mode: only this process's one connection uses
    it (the data directory is locked), so SQLite keeps the WAL index in memory and takes
    no file locks per transaction (7 fewer fcntl calls per commit, measured).
    Another process cannot read the file while its actor is awake."""
    if wal:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {LOG_TABLE} "
        "(seq INTEGER PRIMARY KEY, version INTEGER NOT NULL, record BLOB NOT NULL)"
    )


class FileDatabases(ActorDatabases):
    """One SQLite file per actor under ``directory`` (WAL mode).

    A commit only writes the WAL (``synchronous=NORMAL``: it survives a process crash).
    With ``synchronous="FULL"`` (the driver's strict mode) the runtime then fsyncs the
    WAL files of a batch's actors together, on threads, before the store's commit of
    that batch (`unsynced_fd`), so a power loss cannot keep the store's commit and
    lose the SQL writes it depends on. The descriptor of each open actor's WAL file is
    kept from its first sync to its close (the WAL file stays the same file while a
    connection has it open: SQLite resets it in place after a checkpoint), which saves
    an open and a close per sync.
    """

    def __init__(self, directory: Path, synchronous: str) -> None:
        self.directory = directory
        self.synchronous = synchronous
        self._open: dict[str, sqlite3.Connection] = {}
        self._wal_fds: dict[str, int] = {}

    def path(self, actor_id: str) -> Path:
        return self.directory / f"{actor_id}.sqlite3"

    def open(self, actor_id: str, *, fresh: bool) -> sqlite3.Connection:
        path = self.path(actor_id)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if fresh:
                _remove_files(path)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open the SQL database {path}: {exc}") from exc
        try:
            _prepare(conn, True, "NORMAL")
        except sqlite3.Error as exc:
            conn.close()
            raise StorageError(
                f"the SQL database {path} cannot be read ({exc}); restore it from a backup, "
                "or move it away to start this actor with an empty database"
            ) from exc
        self._open[actor_id] = conn
        return conn

    def unsynced_fd(self, actor_id: str) -> int | None:
        if self.synchronous != "FULL":
            return None
        fd = self._wal_fds.get(actor_id)
        if fd is None:
            fd = self._wal_fds[actor_id] = os.open(f"{self.path(actor_id)}-wal", os.O_RDONLY)
        return fd

    def close(self, actor_id: str, conn: sqlite3.Connection) -> None:
        if self._open.get(actor_id) is conn:
            del self._open[actor_id]
            fd = self._wal_fds.pop(actor_id, None)
            if fd is not None:
                os.close(fd)
        conn.close()

    def delete(self, actor_id: str, conn: sqlite3.Connection | None) -> None:
        if conn is not None:
            self.close(actor_id, conn)
        _remove_files(self.path(actor_id))

    def close_all(self) -> None:
        for conn in self._open.values():
            conn.close()
        self._open.clear()
        for fd in self._wal_fds.values():
            os.close(fd)
        self._wal_fds.clear()


def _remove_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")


class MemoryDatabases(ActorDatabases):
    """One in-memory SQLite database per actor, alive as long as this object."""

    def __init__(self) -> None:
        self._dbs: dict[str, sqlite3.Connection] = {}

    def open(self, actor_id: str, *, fresh: bool) -> sqlite3.Connection:
        conn = self._dbs.get(actor_id)
        if conn is not None and fresh:
            conn.close()
            conn = None
        if conn is None:
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            _prepare(conn, False, "OFF")
            self._dbs[actor_id] = conn
        return conn

    def unsynced_fd(self, actor_id: str) -> int | None:
        return None

    def close(self, actor_id: str, conn: sqlite3.Connection) -> None:
        """Kept: the database lives as long as the driver (sleep keeps the data)."""

    def delete(self, actor_id: str, conn: sqlite3.Connection | None) -> None:
        conn = self._dbs.pop(actor_id, None)
        if conn is not None:
            conn.close()

    def close_all(self) -> None:
        """Kept: a new runtime on the same memory driver finds the data again."""


def write_log(
    db: sqlite3.Connection | sqlite3.Cursor, records: list[CommitRecord], prune_upto: int | None
) -> None:
    """In the open transaction of ``db`` (a connection, or a cursor of it): add
    ``records`` to the redo log, and drop the rows the main store holds durably
    (``seq <= prune_upto``; None when there are none).

    A record is bound as a bytearray: sqlite3 binds one directly, while a ``bytes``
    parameter goes through its adapter lookup first (~2,700 instructions)."""
    if prune_upto is not None:
        db.execute(f"DELETE FROM {LOG_TABLE} WHERE seq <= ?", (prune_upto,))
    if len(records) == 1:
        record = records[0]
        db.execute(_PUT_LOG, (record.seq, _LOG_VERSION, _encoded(record)))
    else:
        db.executemany(_PUT_LOG, [(r.seq, _LOG_VERSION, _encoded(r)) for r in records])


def _encoded(record: CommitRecord) -> bytearray:
    blob = bytearray()
    _encoder.encode_into(record, blob)
    return blob


def read_log(conn: sqlite3.Connection, after_seq: int) -> list[CommitRecord]:
    """The logged records with ``seq > after_seq``, in seq order.

    Raises:
        StorageError: a row is of an unknown version or cannot be decoded.
    """
    rows = conn.execute(
        f"SELECT seq, version, record FROM {LOG_TABLE} WHERE seq > ? ORDER BY seq", (after_seq,)
    ).fetchall()
    records = []
    for seq, version, blob in rows:
        if version != _LOG_VERSION:
            raise StorageError(
                f"redo log row {seq} has version {version}; this pyrivet reads version "
                f"{_LOG_VERSION}: upgrade pyrivet"
            )
        try:
            records.append(_decoder.decode(blob))
        except msgspec.DecodeError as exc:
            raise StorageError(f"redo log row {seq} cannot be decoded: {exc}") from exc
    return records
