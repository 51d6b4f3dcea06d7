"""The SQLite schema of pyrivet and its numbered migrations.

The schema version lives in ``PRAGMA user_version``. `migrate` brings a database up to
the latest version, one migration per transaction, so an interrupted upgrade resumes
where it stopped. To change the schema, append a migration to `MIGRATIONS`; never edit
a released one. Everything here runs on the SQLite driver's writer thread.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping

from ..errors import StorageError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "apply_pragmas", "migrate"]

# STRICT tables need SQLite 3.37 (2021); older libraries get the same tables without it.
_STRICT = ", STRICT" if sqlite3.sqlite_version_info >= (3, 37, 0) else ""
_WITHOUT_ROWID = f"WITHOUT ROWID{_STRICT}"

_V1 = (
    f"""
    CREATE TABLE actors (
        actor_id TEXT NOT NULL PRIMARY KEY,
        name TEXT NOT NULL,
        key_str TEXT NOT NULL,
        key BLOB NOT NULL,
        input BLOB,
        created_at_ms INTEGER NOT NULL,
        initialized INTEGER NOT NULL DEFAULT 0,
        destroyed_at_ms INTEGER
    ) {_WITHOUT_ROWID}
    """,
    """
    CREATE UNIQUE INDEX actors_live_key ON actors (name, key_str)
    WHERE destroyed_at_ms IS NULL
    """,
    f"""
    CREATE TABLE actor_state (
        actor_id TEXT NOT NULL PRIMARY KEY,
        seq INTEGER NOT NULL,
        snapshot BLOB
    ) {_WITHOUT_ROWID}
    """,
    f"""
    CREATE TABLE actor_events (
        actor_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        name TEXT,
        "by" TEXT,
        args BLOB,
        state BLOB,
        ops BLOB,
        PRIMARY KEY (actor_id, seq)
    ) {_WITHOUT_ROWID}
    """,
    f"""
    CREATE TABLE actor_kv (
        actor_id TEXT NOT NULL,
        key BLOB NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (actor_id, key)
    ) {_WITHOUT_ROWID}
    """,
    f"""
    CREATE TABLE actor_alarms (
        actor_id TEXT NOT NULL,
        alarm_id TEXT NOT NULL,
        fire_at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        action TEXT NOT NULL,
        args BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL,
        cron TEXT,
        timezone TEXT,
        PRIMARY KEY (actor_id, alarm_id)
    ) {_WITHOUT_ROWID}
    """,
    "CREATE INDEX actor_alarms_fire_at ON actor_alarms (fire_at_ms, alarm_id)",
)

# Version 2: the commit log. Every committed record appends one row here (rowids only
# grow, no secondary index, so a batch's rows land on the last page or two); compaction
# (``_sqlite_compaction``) later moves them into ``actor_events`` and ``actor_state``.
# Its columns mirror ``actor_events`` (same types and NOT NULLs, so every row accepted
# by a commit can be compacted) plus:
#   state        the record's new snapshot if it has one, else its history entry's state
#   flags        1: the row is a history entry (the record had an event)
#                2: ``state`` is a new snapshot of the actor
#                4: the history entry's state is ``state`` (else ``event_state``)
#   event_state  the history entry's state when it is not NULL and differs from the
#                snapshot (never written by the runtime, which stores the same bytes)
#   prune_before delete the actor's history with seq below this once this row is
#                compacted (already capped at the batch's last seq of the actor + 1)
# A record without an event gets a row too (kind "save", at_ms 0, flag 1 unset): it
# still carries the actor's seq, its snapshot and its prune request.
_V2 = (
    f"""
    CREATE TABLE actor_log (
        rowid INTEGER PRIMARY KEY,
        actor_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        name TEXT,
        "by" TEXT,
        args BLOB,
        state BLOB,
        ops BLOB,
        flags INTEGER NOT NULL,
        event_state BLOB,
        prune_before INTEGER
    ){_STRICT.lstrip(",")}
    """,
)

# Version 3: durable queues. ``actor_queue`` holds the messages not yet received (or,
# for completable receives, not yet completed); ``actor_queue_ids`` the highest id each
# actor ever used, so ids keep growing after the queue emptied and the actor slept.
_V3 = (
    f"""
    CREATE TABLE actor_queue (
        actor_id TEXT NOT NULL,
        id INTEGER NOT NULL,
        name TEXT NOT NULL,
        body BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL,
        PRIMARY KEY (actor_id, id)
    ) {_WITHOUT_ROWID}
    """,
    f"""
    CREATE TABLE actor_queue_ids (
        actor_id TEXT NOT NULL PRIMARY KEY,
        last_id INTEGER NOT NULL
    ) {_WITHOUT_ROWID}
    """,
)

# Version 4: workflow history. One row per record of an actor's workflow, an opaque
# value under a key unique within the actor; written by commits like ``actor_kv`` (since
# version 5: by compaction, from the commit log).
_V4 = (
    f"""
    CREATE TABLE actor_workflow (
        actor_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (actor_id, key)
    ) {_WITHOUT_ROWID}
    """,
)

# Version 5: workflow records ride in the commit log. ``actor_log.workflow`` holds the
# record's workflow deletes and puts (msgpack ``[[key, ...], [[key, value], ...]]``, the
# deletes applied first), so a lone commit of a workflow step, its state and its history
# record is one log row, one autocommitted INSERT. Compaction moves them into
# ``actor_workflow`` as it moves the state and the history; until then reads of the
# actor's records apply its unmoved log rows over the table. Commits no longer write
# ``actor_workflow`` themselves (a direct write could be overtaken by an older log row
# moved after it).
_V5 = ("ALTER TABLE actor_log ADD COLUMN workflow BLOB",)

#: ``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4, _V5)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the database to `SCHEMA_VERSION`, one transaction per migration.

    ``conn`` must be in autocommit mode (``isolation_level=None``).

    Raises:
        StorageError: the database was written by a newer pyrivet.
        sqlite3.Error: a migration failed; that migration was rolled back.
    """
    current = _user_version(conn)
    if current > SCHEMA_VERSION:
        raise StorageError(
            f"the database has schema version {current} but this pyrivet knows only up "
            f"to {SCHEMA_VERSION}; upgrade pyrivet or use another data directory"
        )
    for version in range(current, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-check under the write lock in case another connection migrated meanwhile.
            if _user_version(conn) == version:
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _user_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


_PRAGMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PRAGMA_WORD = re.compile(r"[A-Za-z0-9_\-]+")


def apply_pragmas(conn: sqlite3.Connection, pragmas: Mapping[str, int | str]) -> None:
    """Run ``PRAGMA name = value`` for each item, in order.

    Pragmas cannot take bound parameters, so names must be identifiers and string
    values single words; anything else raises `StorageError` before running.
    """
    for name, value in pragmas.items():
        if not _PRAGMA_NAME.fullmatch(name):
            raise StorageError(f"invalid SQLite pragma name {name!r}")
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise StorageError(f"pragma {name}: value must be an int or a word, got {value!r}")
        if isinstance(value, str) and not _PRAGMA_WORD.fullmatch(value):
            raise StorageError(f"pragma {name}: value must be a single word, got {value!r}")
        conn.execute(f"PRAGMA {name} = {value}").fetchall()
