"""The SQL side of the SQLite driver: one connection, the commit log and every statement.

`Writer` owns the connection and does the work of every `SQLiteDriver` job. It never
knows which thread it runs on: the driver calls it on its writer thread, or inline on
the event loop's thread when the writer is idle, and always with `Writer.lock` held,
so the connection is used by one thread at a time (it is opened with
``check_same_thread=False`` for that reason). SQLite errors propagate as
``sqlite3.Error`` (the driver turns them into `StorageError`), except where a method
says otherwise.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from ..errors import DuplicateKeyError, StorageError
from ._base import (
    ActorRecord,
    AlarmRecord,
    CommitRecord,
    HistoryEntry,
    QueueMessageRecord,
    StoredQueue,
    StoredState,
    prefix_end,
    serialize_key,
)
from ._sqlite_compaction import Checkpointer, CommitLog, log, rollback as _rollback
from ._sqlite_schema import apply_pragmas, migrate
from ._sqlite_wal import lap_size, prefill_wal

__all__ = ["BUSY_TIMEOUT_MS", "Writer"]

BUSY_TIMEOUT_MS = 5000

_encode_key = msgspec.msgpack.Encoder().encode
_decode_key = msgspec.msgpack.Decoder(tuple[str, ...]).decode

_ACTOR_COLS = "actor_id, name, key, input, created_at_ms, initialized, destroyed_at_ms"
_EVENT_COLS = 'actor_id, seq, at_ms, kind, name, "by", args, state, ops'
_ALARM_COLS = "actor_id, alarm_id, fire_at_ms, kind, action, args, created_at_ms, cron, timezone"

#: The tables holding an actor's data, emptied by a destroy.
_ACTOR_TABLES = (
    "actor_state",
    "actor_events",
    "actor_kv",
    "actor_alarms",
    "actor_queue",
    "actor_queue_ids",
    "actor_workflow",
)

_INSERT_ACTOR = f"INSERT INTO actors ({_ACTOR_COLS}, key_str) VALUES (?,?,?,?,?,?,NULL,?)"
_SET_INITIALIZED = "UPDATE actors SET initialized = 1 WHERE actor_id = ? AND initialized = 0"
_PUT_KV = "INSERT OR REPLACE INTO actor_kv (actor_id, key, value) VALUES (?, ?, ?)"
_DELETE_KV = "DELETE FROM actor_kv WHERE actor_id = ? AND key = ?"
_DELETE_KV_RANGE = "DELETE FROM actor_kv WHERE actor_id = ? AND key >= ? AND key < ?"
_PUT_ALARM = f"INSERT OR REPLACE INTO actor_alarms ({_ALARM_COLS}) VALUES (?,?,?,?,?,?,?,?,?)"
_DELETE_ALARM = "DELETE FROM actor_alarms WHERE actor_id = ? AND alarm_id = ?"
_PUT_QUEUE = (
    "INSERT OR REPLACE INTO actor_queue (actor_id, id, name, body, created_at_ms) "
    "VALUES (?, ?, ?, ?, ?)"
)
_DELETE_QUEUE = "DELETE FROM actor_queue WHERE actor_id = ? AND id = ?"
_QUEUE_LAST_ID = (
    "INSERT INTO actor_queue_ids (actor_id, last_id) VALUES (?, ?) "
    "ON CONFLICT (actor_id) DO UPDATE SET last_id = max(last_id, excluded.last_id)"
)


class Writer:
    """The connection, the commit log and the SQL.

    Every method runs with `lock` held: on the writer thread, or inline on the event
    loop's thread (see "Inline fast path" in the module docstring).
    """

    def __init__(self, path: Path, synchronous: str, pragmas: Mapping[str, int | str]) -> None:
        self.path = path
        self._synchronous = synchronous
        self._pragmas = pragmas
        self._conn: sqlite3.Connection | None = None
        self._cur: sqlite3.Cursor | None = None
        self.log = CommitLog()
        self._checkpointer: Checkpointer | None = None
        #: Held by whichever thread uses the connection (see "Inline fast path").
        self.lock = threading.Lock()

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
        # Two threads use the connection (never at once: see `lock`).
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
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
            self.log.unsynced_steps = self._synchronous == "FULL"
        except BaseException:
            conn.close()
            raise
        self._conn, self._cur = conn, cur
        self._checkpointer = Checkpointer(self.path, self._synchronous)

    def prefill_wal(self) -> int:
        """Write the WAL's first lap in advance (see ``_sqlite_wal``); bytes written.
        Run after `connect`, before any commit; never raises `OSError` (logged)."""
        return prefill_wal(self.path, lap_size(self.cur))

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

    def maintenance_due(self, idle: bool) -> bool:
        """Whether `maintain` has work now; cheap and safe without `lock`, so the writer
        thread takes the lock (and blocks the inline fast path) only when it does."""
        return self._cur is not None and self.log.due(idle)

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
                    _INSERT_ACTOR + " ON CONFLICT DO NOTHING", _actor_row(record)
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
        """Insert the actor row of a commit's ``create`` (inside its transaction).

        The unique index on live ``(name, key_str)`` rejects a taken key, so there is no
        lookup first.

        Raises:
            DuplicateKeyError: a live actor has this name and key.
            sqlite3.IntegrityError: the actor id is taken.
        """
        try:
            self.cur.execute(_INSERT_ACTOR, _actor_row(record))
        except sqlite3.IntegrityError as exc:
            if "actors.actor_id" in str(exc):
                raise
            raise DuplicateKeyError(
                f"an actor {record.name!r} with key {list(record.key)!r} already exists; "
                "use get_or_create to reuse it or pick another key",
                metadata={"name": record.name, "key": list(record.key)},
            ) from None

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

    def list_actors(
        self, name: str | None, after: tuple[int, str] | None = None, limit: int | None = None
    ) -> list[ActorRecord]:
        where = "destroyed_at_ms IS NULL"
        params: list[object] = []
        if name is not None:
            where += " AND name = ?"
            params.append(name)
        if after is not None:
            where += " AND (created_at_ms, actor_id) > (?, ?)"
            params.extend(after)
        sql = f"SELECT {_ACTOR_COLS} FROM actors WHERE {where} ORDER BY created_at_ms, actor_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_actor(row) for row in self.cur.execute(sql, params).fetchall()]

    def count_actors(self) -> dict[str, int]:
        rows = self.cur.execute(
            "SELECT name, count(*) FROM actors WHERE destroyed_at_ms IS NULL GROUP BY name"
        ).fetchall()
        return {str(name): int(count) for name, count in rows}

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
            for table in _ACTOR_TABLES:
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
        """`_apply` the batch; without an fsync when every record is durable elsewhere
        already (``CommitRecord.synced_elsewhere``: an actor database's redo log holds
        it; the next synced commit covers this one, WAL frames being in order)."""
        if len(batch) == 1:
            # A lone record (every commit of a sequential caller): `_apply`'s test first.
            lone = batch[0]
            if not lone.synced_elsewhere and not lone.writes_beyond_log():
                self._apply_lone(lone)
                return
        # The first record decides for most batches, without a generator per commit.
        if (
            batch
            and batch[0].synced_elsewhere
            and self._synchronous == "FULL"
            and all(r.synced_elsewhere for r in batch)
        ):
            cur = self.cur
            cur.execute("PRAGMA synchronous = NORMAL")
            try:
                self._apply(batch)
            finally:
                cur.execute("PRAGMA synchronous = FULL")
            return
        self._apply(batch)

    def _apply(self, batch: Sequence[CommitRecord]) -> None:
        """Apply ``batch`` in one ``BEGIN IMMEDIATE`` transaction, log-first (a lone
        record with nothing but its log row: in that row's autocommitted ``INSERT``).

        Writes the created actor rows, the ``initialized`` flags, KV, alarm and queue
        changes (coalesced: the last op per KV key and alarm id wins, in record order; a
        KV range delete drops the coalesced ops of earlier records in its range and runs
        before the point ops, so each remaining op is later than the ranges covering it)
        and one ``actor_log`` row per record, which carries the record's state, history
        entry and workflow records: ``actor_state``, ``actor_events`` and
        ``actor_workflow`` are left to compaction. The commit log's index is updated
        only once the transaction committed. On any error the transaction is rolled
        back, the index is untouched and `StorageError` (or `DuplicateKeyError`) is
        raised.
        """
        if len(batch) == 1 and not batch[0].writes_beyond_log():
            self._apply_lone(batch[0])
            return
        creates: list[ActorRecord] = []
        initialized: dict[str, tuple[str]] = {}
        kv: dict[tuple[str, bytes], bytes | None] = {}
        kv_ranges: list[tuple[str, bytes, bytes]] = []
        alarms: dict[tuple[str, str], AlarmRecord | None] = {}
        queue_puts: list[tuple[Any, ...]] = []
        queue_deletes: list[tuple[str, int]] = []
        for rec in batch:
            # Each loop behind a test of its (usually empty) field: iterating an empty
            # tuple makes an iterator, eight times per record of most batches.
            actor_id = rec.actor_id
            create = rec.create
            if create is not None:
                creates.append(create)
            if rec.initialized and not (create is not None and create.initialized):
                initialized[actor_id] = (actor_id,)
            if rec.kv_delete_ranges:
                for start, end in rec.kv_delete_ranges:
                    kv_ranges.append((actor_id, start, end))
                    for a, key in [ak for ak in kv if ak[0] == actor_id and start <= ak[1] < end]:
                        del kv[a, key]
            if rec.kv_puts:
                for key, value in rec.kv_puts:
                    kv[actor_id, key] = value
            if rec.kv_deletes:
                for key in rec.kv_deletes:
                    kv[actor_id, key] = None
            if rec.alarm_puts:
                for alarm in rec.alarm_puts:
                    alarms[actor_id, alarm.alarm_id] = alarm
            if rec.alarm_deletes:
                for alarm_id in rec.alarm_deletes:
                    alarms[actor_id, alarm_id] = None
            if rec.queue_puts or rec.queue_deletes:
                queue_puts.extend((actor_id, *msgspec.structs.astuple(m)) for m in rec.queue_puts)
                queue_deletes.extend((actor_id, i) for i in rec.queue_deletes)
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
            if kv_ranges:
                conn.executemany(_DELETE_KV_RANGE, kv_ranges)
            if kv:
                _write_coalesced(conn, _PUT_KV, _DELETE_KV, kv)
            if alarms:
                conn.executemany(
                    _PUT_ALARM,
                    [_alarm_row(a, al) for (a, _), al in alarms.items() if al is not None],
                )
                conn.executemany(_DELETE_ALARM, [k for k, al in alarms.items() if al is None])
            if queue_puts or queue_deletes:
                _write_queue(conn, queue_puts, queue_deletes)
            self.log.append(conn, staged)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            raise _commit_error(exc, len(batch), self.path) from exc
        except BaseException:
            _rollback(conn)
            raise
        self.log.committed(staged)

    def _apply_lone(self, record: CommitRecord) -> None:
        """`_apply` of one record with nothing but its log row: its ``INSERT`` is a
        transaction by itself (the connection autocommits), which saves the ``BEGIN``
        and ``COMMIT`` statements of a sequential caller's every commit. Durable alike:
        the WAL is synced at the end of every write transaction. The row is staged,
        inserted and indexed in one step (`CommitLog.append_lone`)."""
        cur = self._cur
        if cur is None:
            raise StorageError(f"the database {self.path} is not open")
        try:
            self.log.append_lone(cur, record)
        except sqlite3.Error as exc:
            raise _commit_error(exc, 1, self.path) from exc
        except Exception as exc:
            raise StorageError(f"commit rejected, nothing was written: {exc!r}") from exc

    # -- KV, alarms, history --

    def kv_get(self, actor_id: str, key: bytes) -> bytes | None:
        row = self.cur.execute(
            "SELECT value FROM actor_kv WHERE actor_id = ? AND key = ?", (actor_id, key)
        ).fetchone()
        return None if row is None else row[0]

    def kv_get_batch(self, actor_id: str, keys: Sequence[bytes]) -> list[bytes | None]:
        found: dict[bytes, bytes] = {}
        # Chunks stay below SQLite's oldest limit on bound parameters (999).
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            rows = self.cur.execute(
                "SELECT key, value FROM actor_kv WHERE actor_id = ? AND key IN ("
                + ",".join("?" * len(chunk))
                + ")",
                (actor_id, *chunk),
            ).fetchall()
            found.update(rows)
        return [found.get(key) for key in keys]

    def kv_list(self, actor_id: str, prefix: bytes, limit: int | None) -> list[tuple[bytes, bytes]]:
        # BLOBs compare with memcmp, so [prefix, next prefix) is the prefix's range.
        return self.kv_list_range(actor_id, prefix, prefix_end(prefix), False, limit)

    def kv_list_range(
        self, actor_id: str, start: bytes, end: bytes | None, reverse: bool, limit: int | None
    ) -> list[tuple[bytes, bytes]]:
        rows = self.cur.execute(
            "SELECT key, value FROM actor_kv WHERE actor_id = ? AND key >= ?"
            + ("" if end is None else " AND key < ?")
            + (" ORDER BY key DESC" if reverse else " ORDER BY key")
            + " LIMIT ?",
            (actor_id, start, *(() if end is None else (end,)), -1 if limit is None else limit),
        ).fetchall()
        return [(k, v) for k, v in rows]

    def load_queue(self, actor_id: str) -> StoredQueue:
        cur = self.cur
        rows = cur.execute(
            "SELECT id, name, body, created_at_ms FROM actor_queue WHERE actor_id = ? ORDER BY id",
            (actor_id,),
        ).fetchall()
        last = cur.execute(
            "SELECT last_id FROM actor_queue_ids WHERE actor_id = ?", (actor_id,)
        ).fetchone()
        return StoredQueue(0 if last is None else last[0], [QueueMessageRecord(*r) for r in rows])

    def load_workflow(self, actor_id: str) -> dict[str, bytes]:
        """``actor_workflow``'s records of the actor, with the records of its log rows not
        compacted yet applied over them (see `CommitLog.overlay_workflow`); no write."""
        cur = self.cur
        records: dict[str, bytes] = dict(
            cur.execute(
                "SELECT key, value FROM actor_workflow WHERE actor_id = ?", (actor_id,)
            ).fetchall()
        )
        self.log.overlay_workflow(cur, actor_id, records)
        return records

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


def _write_coalesced(
    conn: sqlite3.Cursor,
    put_sql: str,
    delete_sql: str,
    ops: dict[tuple[str, Any], bytes | None],
) -> None:
    """Write the last op per ``(actor_id, key)``: the value, or a delete where it is None."""
    conn.executemany(put_sql, [(a, k, v) for (a, k), v in ops.items() if v is not None])
    conn.executemany(delete_sql, [(a, k) for (a, k), v in ops.items() if v is None])


def _write_queue(
    conn: sqlite3.Cursor, puts: list[tuple[Any, ...]], deletes: list[tuple[str, int]]
) -> None:
    """Queue changes of one commit: new messages, the ids' high-water mark, deletes.

    A message both put and deleted in this commit (received, or received and completed,
    before its send was written: a waiting sender's round trip often is one commit) is
    not written at all, only the high-water mark moves past its id. That is the same
    end state: a put is always of a new id, so no earlier row of it can exist.
    """
    if puts:
        last: dict[str, int] = {}
        for row in puts:
            last[row[0]] = max(last.get(row[0], 0), row[1])
        if deletes:
            put_keys = {(row[0], row[1]) for row in puts}
            gone = put_keys.intersection(deletes)
            if gone:
                puts = [row for row in puts if (row[0], row[1]) not in gone]
                deletes = [key for key in deletes if key not in gone]
        if puts:
            conn.executemany(_PUT_QUEUE, puts)
        conn.executemany(_QUEUE_LAST_ID, last.items())
    if deletes:
        conn.executemany(_DELETE_QUEUE, deletes)


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


def _actor_row(record: ActorRecord) -> tuple[Any, ...]:
    """The parameters of `_INSERT_ACTOR` for a new (live) actor."""
    return (
        record.actor_id,
        record.name,
        _encode_key(record.key),
        record.input,
        record.created_at_ms,
        int(record.initialized),
        serialize_key(record.key),
    )


def _alarm_row(actor_id: str, alarm: AlarmRecord) -> tuple[Any, ...]:
    return (actor_id, *msgspec.structs.astuple(alarm)[1:])


def _commit_error(exc: sqlite3.Error, size: int, path: Path) -> StorageError:
    what = f"commit of {size} record(s) to {path} failed and was rolled back, nothing was written"
    if exc.sqlite_errorcode == sqlite3.SQLITE_FULL:
        return StorageError(
            f"{what}: the disk is full or the database reached its size limit "
            f"(max_page_count) ({exc}); free space or raise the limit, then retry"
        )
    return StorageError(f"{what}: {exc}")
