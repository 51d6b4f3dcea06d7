"""The embedded storage driver: one SQLite database in WAL mode, one writer thread.

Threads:

* The **event loop** calls the `SQLiteDriver` coroutines. Each one puts a job on a queue
  and awaits a future; it never touches the connection.
* The **writer thread** (one per open driver) owns the only connection. It runs the
  jobs one at a time in submission order, reads included, so every read sees every
  write submitted before it. It hands each result (or exception) back with
  ``loop.call_soon_threadsafe``. Between jobs, after the result was handed back, it
  runs a step of commit log compaction when one is due (see below).
* The **checkpointer thread** (``_sqlite_compaction.Checkpointer``) has a connection of
  its own and only copies the WAL back into the database file, alongside the writer.

Commits are **log-first**: a commit appends one ``actor_log`` row per record and writes
the actor rows, KV and alarms directly; ``actor_state`` and ``actor_events`` are filled
later by compaction (``_sqlite_compaction``), whose in-memory index answers
`SQLiteDriver.load_state` meanwhile, and which `SQLiteDriver.read_history` runs first
for the actor. A crash leaves the rows in the log; the next `open` compacts them.

If a caller is cancelled while its job is queued or running, the job still runs to the
end (a commit may land); only the result is dropped.

Only one process may open a data directory: `open` takes an exclusive ``flock`` on
``<data_dir>/LOCK`` and holds it until `close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any, Literal, TypeAlias, TypeVar, TypeVarTuple, Unpack

import msgspec

from ..errors import DataDirLockedError, DuplicateKeyError, StorageError
from ._base import (
    ActorRecord,
    AlarmRecord,
    CommitRecord,
    HistoryEntry,
    StoredState,
    serialize_key,
)
from ._sqlite_compaction import Checkpointer, CommitLog, log, rollback as _rollback
from ._sqlite_schema import apply_pragmas, migrate

__all__ = ["SQLiteDriver"]

DB_FILE = "pyrivet.sqlite3"
LOCK_FILE = "LOCK"
BUSY_TIMEOUT_MS = 5000

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
_Job: TypeAlias = tuple[
    Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, asyncio.Future[Any]
]

_encode_key = msgspec.msgpack.Encoder().encode
_decode_key = msgspec.msgpack.Decoder(tuple[str, ...]).decode

_ACTOR_COLS = "actor_id, name, key, input, created_at_ms, initialized, destroyed_at_ms"
_EVENT_COLS = 'actor_id, seq, at_ms, kind, name, "by", args, state, ops'
_ALARM_COLS = "actor_id, alarm_id, fire_at_ms, kind, action, args, created_at_ms, cron, timezone"

_SET_INITIALIZED = "UPDATE actors SET initialized = 1 WHERE actor_id = ? AND initialized = 0"
_PUT_KV = "INSERT OR REPLACE INTO actor_kv (actor_id, key, value) VALUES (?, ?, ?)"
_DELETE_KV = "DELETE FROM actor_kv WHERE actor_id = ? AND key = ?"
_PUT_ALARM = f"INSERT OR REPLACE INTO actor_alarms ({_ALARM_COLS}) VALUES (?,?,?,?,?,?,?,?,?)"
_DELETE_ALARM = "DELETE FROM actor_alarms WHERE actor_id = ? AND alarm_id = ?"


class SQLiteDriver:
    """An `ActorStore` on ``<data_dir>/pyrivet.sqlite3``.

    Args:
        data_dir: the directory holding the database and its ``LOCK`` file; created if
            missing.
        synchronous: ``"FULL"`` makes a returned commit survive an OS crash or power
            loss; ``"NORMAL"`` survives a process crash but may lose the last commits on
            power loss.
        pragmas: extra ``PRAGMA name = value`` settings, run after the schema is
            migrated (e.g. ``{"max_page_count": 1000}`` caps the file size).

    Errors of SQLite surface as `StorageError`; a failed commit is rolled back whole.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        pragmas: Mapping[str, int | str] | None = None,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', not {synchronous!r}")
        self.data_dir = Path(data_dir)
        self._synchronous = synchronous
        self._pragmas = dict(pragmas or {})
        self._jobs: SimpleQueue[_Job | None] | None = None
        self._thread: threading.Thread | None = None
        self._writer: _Writer | None = None
        self._lock_fd: int | None = None
        #: Jobs submitted and not answered yet, and a future resolved when none are left.
        self._in_flight = 0
        self._idle: asyncio.Future[None] | None = None

    def settler(self) -> asyncio.Future[None] | None:
        """A future while jobs run on the writer thread, else None (see `MockClock`).

        Lets a test's ``MockClock.advance`` wait for storage work that a timer started
        (e.g. waking an actor for a schedule) before it fires the next timer.
        """
        if not self._in_flight:
            return None
        if self._idle is None or self._idle.done():
            self._idle = asyncio.get_running_loop().create_future()
        return asyncio.shield(self._idle)

    # -- lifecycle ----------------------------------------------------------------

    async def open(self) -> None:
        """Lock the data directory, start the threads, open and migrate the database, and
        compact what a crash left in the commit log.

        A no-op if already open.

        Raises:
            DataDirLockedError: another process (or another driver here) holds the directory.
            StorageError: the directory or database cannot be created, opened or migrated.
        """
        if self._jobs is not None:
            return
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the data directory {self.data_dir}: {exc}") from exc
        self._lock_fd = _lock_dir(self.data_dir)
        writer = _Writer(self.data_dir / DB_FILE, self._synchronous, self._pragmas)
        self._writer = writer
        self._jobs = SimpleQueue()
        self._thread = threading.Thread(
            target=_serve,
            args=(self._jobs, writer),
            name="pyrivet-sqlite-writer",
            daemon=True,
        )
        self._thread.start()
        try:
            await self._call(writer.connect)
        except BaseException:
            await self._shutdown()
            raise

    async def close(self) -> None:
        """Finish the queued jobs, compact the commit log, close the connection, stop the
        threads and release the lock.

        Idempotent. Calls made after `close` raise `StorageError`. If the compaction
        fails, the rows stay in the log for the next `open` (nothing is lost).
        """
        if self._jobs is not None:
            await self._shutdown()

    async def _shutdown(self) -> None:
        jobs, thread, writer = self._jobs, self._thread, self._writer
        self._jobs = self._thread = self._writer = None
        try:
            if jobs is not None and writer is not None:
                loop = asyncio.get_running_loop()
                done: asyncio.Future[None] = loop.create_future()
                jobs.put((writer.close, (), loop, done))
                jobs.put(None)
                await done
        finally:
            if thread is not None:
                thread.join()  # the thread has at most the close job left to run
            if self._lock_fd is not None:
                _unlock_dir(self._lock_fd)
                self._lock_fd = None

    def _submit(self, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> asyncio.Future[T]:
        """Queue ``fn(*args)`` for the writer thread now; the future resolves on this loop."""
        jobs = self._jobs
        if jobs is None:
            raise StorageError(f"the SQLite store in {self.data_dir} is not open")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        jobs.put((fn, args, fut.get_loop(), fut))
        self._in_flight += 1
        fut.add_done_callback(self._job_done)
        return fut

    def _job_done(self, _fut: asyncio.Future[Any]) -> None:
        self._in_flight -= 1
        if not self._in_flight and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    async def _call(self, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        return await self._submit(fn, *args)

    def _w(self) -> _Writer:
        if self._writer is None:
            raise StorageError(f"the SQLite store in {self.data_dir} is not open")
        return self._writer

    # -- the ActorStore methods: each runs one job on the writer thread ----------------

    async def create_actor(self, record: ActorRecord) -> None:
        """Insert a new actor.

        Raises:
            DuplicateKeyError: a live actor already has this name and key.
            StorageError: an actor with this ``actor_id`` exists, or the write failed.
        """
        await self._call(self._w().insert_actor, record, False)

    async def get_or_create_actor(self, record: ActorRecord) -> tuple[ActorRecord, bool]:
        """The live actor with ``record``'s name and key, inserting ``record`` if none."""
        return await self._call(self._w().insert_actor, record, True)

    async def find_actor(self, name: str, key: tuple[str, ...]) -> ActorRecord | None:
        """The live actor with this name and key, or None."""
        return await self._call(self._w().find_actor, name, serialize_key(key))

    async def get_actor(self, actor_id: str) -> ActorRecord | None:
        """The live actor with this id, or None."""
        return await self._call(self._w().get_actor, actor_id)

    async def list_actors(self, name: str | None = None) -> list[ActorRecord]:
        """Live actors (optionally of one name) by ``(created_at_ms, actor_id)``."""
        return await self._call(self._w().list_actors, name)

    async def load_state(self, actor_id: str) -> StoredState:
        """The actor's last committed seq (commits that left the state unchanged count)
        and latest snapshot; ``StoredState(0, None, False)`` if none."""
        return await self._call(self._w().load_state, actor_id)

    def commit(self, batch: Sequence[CommitRecord]) -> Awaitable[None]:
        """Apply ``batch`` in one transaction; see `_Writer.commit`.

        The job is queued for the writer thread before this returns (no event-loop round
        trip), which is what keeps a lone strict-mode commit fast. The records are read
        on the writer thread: do not mutate them until the returned future is done.

        Raises (from the future):
            StorageError: the write failed (e.g. the disk is full); nothing was applied.
        """
        if not batch:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        return self._submit(self._w().commit, batch)

    async def destroy_actor(self, actor_id: str, at_ms: int) -> None:
        """Delete the actor's state, history, KV and alarms and mark it destroyed."""
        await self._call(self._w().destroy_actor, actor_id, at_ms)

    async def kv_get(self, actor_id: str, key: bytes) -> bytes | None:
        """The committed value of ``key``, or None."""
        return await self._call(self._w().kv_get, actor_id, key)

    async def kv_list(
        self, actor_id: str, prefix: bytes, limit: int | None = None
    ) -> list[tuple[bytes, bytes]]:
        """Entries whose key starts with ``prefix``, in key byte order, at most ``limit``."""
        return await self._call(self._w().kv_list, actor_id, prefix, limit)

    async def list_alarms(self, actor_id: str | None = None) -> list[AlarmRecord]:
        """Alarms of one actor, or of every live actor, by ``(fire_at_ms, alarm_id)``."""
        return await self._call(self._w().list_alarms, actor_id)

    async def read_history(
        self, actor_id: str, after_seq: int = 0, limit: int | None = None
    ) -> list[HistoryEntry]:
        """History entries with ``seq > after_seq`` in seq order, at most ``limit``.

        First moves the actor's rows out of the commit log, if it has any there.
        """
        return await self._call(self._w().read_history, actor_id, after_seq, limit)


# -- the writer thread -----------------------------------------------------------------


def _serve(jobs: SimpleQueue[_Job | None], writer: _Writer) -> None:
    """The writer thread's loop: run jobs in order until the ``None`` sentinel.

    After each job (its result already handed back), and when no job arrives before an
    idle compaction is due, it lets the writer do its background work (`_Writer.maintain`).
    """
    while True:
        wait = writer.idle_wait()
        try:
            if wait is None:
                job = jobs.get()
            elif wait > 0:
                job = jobs.get(timeout=wait)
            else:
                job = jobs.get_nowait()
        except Empty:
            writer.maintain(idle=True)
            continue
        if job is None:
            return
        fn, args, loop, fut = job
        try:
            result = fn(*args)
        except sqlite3.Error as exc:
            error = StorageError(f"SQLite error in {fn.__name__}: {exc}")
            error.__cause__ = exc
            _post(loop, fut, None, error)
        except BaseException as exc:
            _post(loop, fut, None, exc)
        else:
            _post(loop, fut, result, None)
        writer.maintain(idle=jobs.empty())


def _post(
    loop: asyncio.AbstractEventLoop,
    fut: asyncio.Future[Any],
    result: Any,
    exc: BaseException | None,
) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
        loop.call_soon_threadsafe(_settle, fut, result, exc)


def _settle(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if fut.cancelled():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


class _Writer:
    """The connection, the commit log and the SQL; every method runs on the writer thread."""

    def __init__(self, path: Path, synchronous: str, pragmas: Mapping[str, int | str]) -> None:
        self.path = path
        self._synchronous = synchronous
        self._pragmas = pragmas
        self._conn: sqlite3.Connection | None = None
        self._cur: sqlite3.Cursor | None = None
        self.log = CommitLog()
        self._checkpointer: Checkpointer | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError(f"the database {self.path} is not open")
        return self._conn

    @property
    def cur(self) -> sqlite3.Cursor:
        """The one cursor every statement runs on.

        `Connection.execute` would make a cursor per statement, and the connection
        keeps a weak reference to each until it has made 200 more: per wake of an
        actor that is two cursors and two weak references, which, scattered over the
        heap, keep the memory of actors that went back to sleep from being given back.
        Every statement here runs to its end (``fetchone`` of a one-row query,
        ``fetchall``), so the shared cursor never holds a statement open between jobs.
        """
        if self._cur is None:
            raise StorageError(f"the database {self.path} is not open")
        return self._cur

    def connect(self) -> None:
        """Open the database, set its pragmas, migrate it and recover the commit log.

        Recovery compacts whatever a crash left in ``actor_log``; if that fails the rows
        stay there (they are still read) and compaction is retried later. On any other
        error the connection is closed again.
        """
        if sqlite3.sqlite_version_info < (3, 24, 0):
            raise StorageError(f"pyrivet needs SQLite 3.24 or newer, not {sqlite3.sqlite_version}")
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(f"cannot switch {self.path} to WAL mode (got {mode!r})")
            apply_pragmas(
                conn,
                {
                    "synchronous": self._synchronous,
                    "busy_timeout": BUSY_TIMEOUT_MS,
                    "foreign_keys": "OFF",
                },
            )
            migrate(conn)
            apply_pragmas(conn, self._pragmas)
            cur = conn.cursor()
            self.log = CommitLog()
            self.log.recover(cur)
        except BaseException:
            conn.close()
            raise
        self._conn, self._cur = conn, cur
        self._checkpointer = Checkpointer(self.path, self._synchronous)

    def close(self) -> None:
        """Compact the whole commit log, then close the connection.

        If the compaction fails (it is logged) the rows stay in the log and the next
        `connect` compacts them; the connection is closed either way.
        """
        if self._conn is not None and self._cur is not None:
            conn, cur = self._conn, self._cur
            self._conn = self._cur = None
            try:
                self.log.compact_all(cur)
            except sqlite3.Error as exc:
                log.warning("close: compacting the commit log failed (done at next open): %s", exc)
            finally:
                if self._checkpointer is not None:
                    self._checkpointer.stop()
                    self._checkpointer = None
                conn.close()

    def idle_wait(self) -> float | None:
        """Seconds until background work is due; None if there is none to wait for."""
        return None if self._conn is None else self.log.idle_wait()

    def maintain(self, idle: bool) -> None:
        """Run a compaction step if one is due (see `CommitLog.maintain`); never raises.

        ``idle`` says the job queue is empty. After a step, the checkpointer is woken to
        copy the WAL back into the database.
        """
        cur = self._cur
        if cur is None:
            return
        try:
            if self.log.maintain(cur, idle) and self._checkpointer is not None:
                self._checkpointer.wake()
        except Exception:  # a bug: keep the writer thread (and every caller) alive
            log.exception("background compaction of %s failed", self.path)

    # -- actors --

    def insert_actor(self, record: ActorRecord, existing_ok: bool) -> tuple[ActorRecord, bool]:
        """Insert ``record`` unless a live actor has its name and key (one transaction)."""
        key_str = serialize_key(record.key)
        existing = self.find_actor(record.name, key_str)
        if existing is None:
            conn = self.cur
            conn.execute("BEGIN IMMEDIATE")
            try:
                inserted = conn.execute(
                    f"INSERT INTO actors ({_ACTOR_COLS}, key_str) VALUES (?,?,?,?,?,?,NULL,?) "
                    "ON CONFLICT DO NOTHING",
                    (
                        record.actor_id,
                        record.name,
                        _encode_key(record.key),
                        record.input,
                        record.created_at_ms,
                        int(record.initialized),
                        key_str,
                    ),
                ).rowcount
                if not inserted:
                    existing = self.find_actor(record.name, key_str)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            if inserted:
                if record.destroyed_at_ms is not None:
                    record = msgspec.structs.replace(record, destroyed_at_ms=None)
                return record, True
            if existing is None:
                raise StorageError(f"an actor with id {record.actor_id!r} already exists")
        if not existing_ok:
            raise DuplicateKeyError(
                f"an actor {record.name!r} with key {list(record.key)!r} already exists; "
                "use get_or_create to reuse it or pick another key",
                metadata={"name": record.name, "key": list(record.key)},
            )
        return existing, False

    def _insert_in_commit(self, record: ActorRecord) -> None:
        """Insert the actor row of a commit's ``create`` (inside its transaction)."""
        key_str = serialize_key(record.key)
        if self.find_actor(record.name, key_str) is not None:
            raise DuplicateKeyError(
                f"an actor {record.name!r} with key {list(record.key)!r} already exists; "
                "use get_or_create to reuse it or pick another key",
                metadata={"name": record.name, "key": list(record.key)},
            )
        self.cur.execute(
            f"INSERT INTO actors ({_ACTOR_COLS}, key_str) VALUES (?,?,?,?,?,?,NULL,?)",
            (
                record.actor_id,
                record.name,
                _encode_key(record.key),
                record.input,
                record.created_at_ms,
                int(record.initialized),
                key_str,
            ),
        )

    def find_actor(self, name: str, key_str: str) -> ActorRecord | None:
        row = self.cur.execute(
            f"SELECT {_ACTOR_COLS} FROM actors "
            "WHERE name = ? AND key_str = ? AND destroyed_at_ms IS NULL",
            (name, key_str),
        ).fetchone()
        return None if row is None else _actor(row)

    def get_actor(self, actor_id: str) -> ActorRecord | None:
        row = self.cur.execute(
            f"SELECT {_ACTOR_COLS} FROM actors WHERE actor_id = ? AND destroyed_at_ms IS NULL",
            (actor_id,),
        ).fetchone()
        return None if row is None else _actor(row)

    def list_actors(self, name: str | None) -> list[ActorRecord]:
        where = "destroyed_at_ms IS NULL" + ("" if name is None else " AND name = ?")
        rows = self.cur.execute(
            f"SELECT {_ACTOR_COLS} FROM actors WHERE {where} ORDER BY created_at_ms, actor_id",
            () if name is None else (name,),
        ).fetchall()
        return [_actor(row) for row in rows]

    def destroy_actor(self, actor_id: str, at_ms: int) -> None:
        """Mark the actor destroyed and delete its data, in one transaction.

        For an unknown or already destroyed actor only its leftover data is deleted.
        """
        conn = self.cur
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "UPDATE actors SET destroyed_at_ms = ? "
                "WHERE actor_id = ? AND destroyed_at_ms IS NULL",
                (at_ms, actor_id),
            )
            for table in ("actor_state", "actor_events", "actor_kv", "actor_alarms"):
                conn.execute(f"DELETE FROM {table} WHERE actor_id = ?", (actor_id,))
            logged = self.log.delete_actor(conn, actor_id)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        self.log.actor_deleted(actor_id, logged)

    # -- state and commits --

    def load_state(self, actor_id: str) -> StoredState:
        """The actor's highest committed seq and latest snapshot.

        Rows still in the commit log win over ``actor_state``: the index gives their
        highest seq and their latest snapshot, ``actor_state`` the snapshot if none of
        them has one (and the seq, if higher).
        """
        conn = self.cur
        pending = self.log.latest.get(actor_id)
        seq, snapshot = (0, None) if pending is None else (pending.seq, pending.snapshot)
        row = conn.execute(
            "SELECT seq, CASE WHEN ?2 THEN snapshot END FROM actor_state WHERE actor_id = ?1",
            (actor_id, snapshot is None),
        ).fetchone()
        if row is not None:
            seq = max(seq, row[0])
            if snapshot is None:
                snapshot = row[1]
        flag = conn.execute(
            "SELECT initialized FROM actors WHERE actor_id = ? AND destroyed_at_ms IS NULL",
            (actor_id,),
        ).fetchone()
        return StoredState(seq=seq, snapshot=snapshot, initialized=bool(flag and flag[0]))

    def commit(self, batch: Sequence[CommitRecord]) -> None:
        """Apply ``batch`` in one ``BEGIN IMMEDIATE`` transaction, log-first.

        Writes the created actor rows, the ``initialized`` flags, KV and alarm changes
        (coalesced: the last op per KV key and per alarm id wins, in record order) and
        one ``actor_log`` row per record; ``actor_state`` and ``actor_events`` are left
        to compaction. The commit log's index is updated only once the transaction
        committed. On any error the transaction is rolled back, the index is untouched
        and `StorageError` (or `DuplicateKeyError`) is raised.
        """
        creates: list[ActorRecord] = []
        initialized: dict[str, tuple[str]] = {}
        kv: dict[tuple[str, bytes], bytes | None] = {}
        alarms: dict[tuple[str, str], AlarmRecord | None] = {}
        for rec in batch:
            actor_id = rec.actor_id
            if rec.create is not None:
                creates.append(rec.create)
            if rec.initialized:
                initialized[actor_id] = (actor_id,)
            for key, value in rec.kv_puts:
                kv[actor_id, key] = value
            for key in rec.kv_deletes:
                kv[actor_id, key] = None
            for alarm in rec.alarm_puts:
                alarms[actor_id, alarm.alarm_id] = alarm
            for alarm_id in rec.alarm_deletes:
                alarms[actor_id, alarm_id] = None
        try:
            staged = self.log.stage(batch)
        except Exception as exc:
            raise StorageError(f"commit rejected, nothing was written: {exc!r}") from exc

        conn = self.cur
        conn.execute("BEGIN IMMEDIATE")
        try:
            for record in creates:
                self._insert_in_commit(record)
            if initialized:
                conn.executemany(_SET_INITIALIZED, initialized.values())
            if kv:
                conn.executemany(_PUT_KV, [(a, k, v) for (a, k), v in kv.items() if v is not None])
                conn.executemany(_DELETE_KV, [(a, k) for (a, k), v in kv.items() if v is None])
            if alarms:
                conn.executemany(
                    _PUT_ALARM,
                    [_alarm_row(a, al) for (a, _), al in alarms.items() if al is not None],
                )
                conn.executemany(_DELETE_ALARM, [k for k, al in alarms.items() if al is None])
            self.log.append(conn, staged)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            raise _commit_error(exc, len(batch), self.path) from exc
        except BaseException:
            _rollback(conn)
            raise
        self.log.committed(staged)

    # -- KV, alarms, history --

    def kv_get(self, actor_id: str, key: bytes) -> bytes | None:
        row = self.cur.execute(
            "SELECT value FROM actor_kv WHERE actor_id = ? AND key = ?", (actor_id, key)
        ).fetchone()
        return None if row is None else row[0]

    def kv_list(self, actor_id: str, prefix: bytes, limit: int | None) -> list[tuple[bytes, bytes]]:
        # BLOBs compare with memcmp, so [prefix, next prefix) is the prefix's range.
        end = _prefix_end(prefix)
        rows = self.cur.execute(
            "SELECT key, value FROM actor_kv WHERE actor_id = ? AND key >= ?"
            + ("" if end is None else " AND key < ?")
            + " ORDER BY key LIMIT ?",
            (actor_id, prefix, *(() if end is None else (end,)), -1 if limit is None else limit),
        ).fetchall()
        return [(k, v) for k, v in rows]

    def list_alarms(self, actor_id: str | None) -> list[AlarmRecord]:
        if actor_id is not None:
            sql = f"SELECT {_ALARM_COLS} FROM actor_alarms WHERE actor_id = ?"
            params: tuple[str, ...] = (actor_id,)
        else:
            sql = (
                f"SELECT {_ALARM_COLS} FROM actor_alarms WHERE actor_id IN "
                "(SELECT actor_id FROM actors WHERE destroyed_at_ms IS NULL)"
            )
            params = ()
        rows = self.cur.execute(sql + " ORDER BY fire_at_ms, alarm_id", params).fetchall()
        return [AlarmRecord(*row) for row in rows]

    def read_history(self, actor_id: str, after_seq: int, limit: int | None) -> list[HistoryEntry]:
        """Compact the actor's rows out of the commit log, then read ``actor_events``.

        The compaction is skipped if the actor has no rows in the log, or if no entry
        can be newer than ``after_seq`` (e.g. a woken actor asking for entries after the
        seq `load_state` gave it).

        Raises:
            sqlite3.Error: the compaction or the read failed; the log is left as it was
                after the last compaction that succeeded.
        """
        pending = self.log.latest.get(actor_id)
        if pending is not None and pending.seq > after_seq:
            self.log.compact_actor(self.cur, actor_id)
        rows = self.cur.execute(
            f"SELECT {_EVENT_COLS} FROM actor_events WHERE actor_id = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (actor_id, after_seq, -1 if limit is None else limit),
        ).fetchall()
        return [HistoryEntry(*row) for row in rows]


def _actor(row: tuple[Any, ...]) -> ActorRecord:
    actor_id, name, key, input_, created_at_ms, initialized, destroyed_at_ms = row
    return ActorRecord(
        actor_id=actor_id,
        name=name,
        key=_decode_key(key),
        created_at_ms=created_at_ms,
        input=input_,
        initialized=bool(initialized),
        destroyed_at_ms=destroyed_at_ms,
    )


def _alarm_row(actor_id: str, alarm: AlarmRecord) -> tuple[Any, ...]:
    return (actor_id, *msgspec.structs.astuple(alarm)[1:])


def _prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no bound)."""
    stem = prefix.rstrip(b"\xff")
    return stem[:-1] + bytes((stem[-1] + 1,)) if stem else None


def _commit_error(exc: sqlite3.Error, size: int, path: Path) -> StorageError:
    what = f"commit of {size} record(s) to {path} failed and was rolled back, nothing was written"
    if exc.sqlite_errorcode == sqlite3.SQLITE_FULL:
        return StorageError(
            f"{what}: the disk is full or the database reached its size limit "
            f"(max_page_count) ({exc}); free space or raise the limit, then retry"
        )
    return StorageError(f"{what}: {exc}")


# -- the data directory lock -----------------------------------------------------------


def _lock_dir(data_dir: Path) -> int:
    """Take the exclusive lock on ``data_dir/LOCK`` and write our pid into it.

    Raises:
        DataDirLockedError: another open file description (another process, or another
            driver in this one) holds the lock.
        StorageError: locking is not possible here.
    """
    try:
        import fcntl  # POSIX only; imported here so the package still imports elsewhere
    except ImportError as exc:
        raise StorageError("the SQLite driver needs fcntl.flock (a POSIX system)") from exc
    path = data_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"cannot open the lock file {path}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_pid(fd)
        os.close(fd)
        who = "another process" if holder is None else f"the process with pid {holder}"
        if holder == os.getpid():
            who = "another SQLiteDriver in this process"
        raise DataDirLockedError(
            f"the data directory {data_dir} is already in use by {who}; "
            "stop that process or pass a different data directory"
        ) from None
    except OSError as exc:
        os.close(fd)
        raise StorageError(f"cannot lock {path}: {exc}") from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None


def _unlock_dir(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)  # closing the last descriptor releases the flock
