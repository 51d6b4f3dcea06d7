"""`ActorDbs`: the open SQL databases of a runtime's actors (``Services.dbs``).

It opens an actor's database at each start (rolling the store forward from the redo
log, then running ``on_migrate``), passes the journal's records to the actor's
`ActorDb` before they reach the committer, closes or deletes databases when actors stop,
and is the committer's barrier: the files of actor databases written since the last
batch are committed (their owed ``COMMIT``) and synced before the store writes the next
one (see ``actor_db.py`` for why). Everything runs on the event loop except the COMMITs
and fdatasyncs of a barrier with several files, which run on worker threads in parallel
(`FileSyncer`: one loop wake-up per barrier, not one per file; SQLite and the kernel
release the GIL while they write). A connection whose COMMIT runs on a worker is not
touched by the loop until the barrier's future is done: its actor's next statement
waits (`ActorDb.execute`), and closing it waits too (`_after`). A COMMIT or sync that
fails fails that actor's records only (the barrier's result names them).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import sqlite3
from collections.abc import Callable
from typing import Any

from .._util.file_sync import FileSyncer, SyncJob
from ..errors import DatabaseError, StorageError
from ..storage._actor_db import ActorDatabases, HasActorDatabases, read_log
from ..storage._base import ActorStore, CommitRecord
from .actor_db import ActorDb, DbHost

__all__ = ["MAX_UNSYNCED_BATCHES", "SYNC_THREADS", "ActorDbs"]

log = logging.getLogger("pyrivet.actor")

#: Worker threads that commit and fdatasync actor database files before a batch is
#: written to the store.
SYNC_THREADS = 16
#: At most this many batches in a row are written without the store's own sync: the
#: next one is synced, so that the redo logs (and `ActorDb.unsynced_in_store`) of
#: actors whose every unit writes SQL are trimmed, instead of growing without end.
MAX_UNSYNCED_BATCHES = 32


class ActorDbs:
    """The open actor databases of one runtime (``Services.dbs``).

    Also the committer's `barrier` when the registry has database actors: files of
    actor databases written since the last batch are committed and fdatasynced on
    worker threads, in parallel (the file system merges concurrent syncs), before the
    store's commit.
    """

    __slots__ = (
        "_dbs",
        "_files",
        "_last_synced",
        "_store",
        "_syncer",
        "_unsynced",
        "_unsynced_batches",
        "synced_batches",
    )

    def __init__(self, store: ActorStore) -> None:
        self._store = store
        self._files: ActorDatabases | None = None
        self._dbs: dict[str, ActorDb] = {}
        #: The actor files written since the last barrier (descriptor -> its database,
        #: which may owe the COMMIT).
        self._unsynced: dict[int, ActorDb] = {}
        self._syncer: FileSyncer | None = None
        #: Batches the store wrote with its own sync, counted when the next one starts:
        #: a record written without one (``synced_elsewhere``) is covered by the store's
        #: sync once this passed its count at submission + 2 (the batch in flight then
        #: may have gone first). Until then its actor's redo log keeps it.
        self.synced_batches = 0
        self._last_synced = False
        #: Batches written without the store's sync since its last synced one.
        self._unsynced_batches = 0

    def barrier(self, batch: list[CommitRecord]) -> asyncio.Future[Any] | None:
        """Commit and sync the actor files written since the last call before ``batch``
        is written (the previous batch is done); None if there are none.

        The returned future's result maps the actors whose COMMIT or sync failed to the
        error: the committer fails their records and writes the others.
        """
        if self._last_synced:
            self.synced_batches += 1
        synced = not all(record.synced_elsewhere for record in batch)
        if not synced and self._unsynced_batches >= MAX_UNSYNCED_BATCHES:
            for record in batch:
                record.synced_elsewhere = False
            synced = True
        self._last_synced = synced
        self._unsynced_batches = 0 if synced else self._unsynced_batches + 1
        if not self._unsynced:
            return None
        files, self._unsynced = self._unsynced, {}
        if len(files) == 1:
            # One file (a sequential caller): commit and sync inline, as the SQLite
            # driver commits inline when idle; a thread hop would cost as much as both.
            fd, db = files.popitem()
            try:
                if db.commit_error is not None:
                    raise db.commit_error
                if db.owes_commit():
                    db.commit_owed()
                _fdatasync(fd)
            except Exception as exc:
                failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                failed.set_result({db.host.actor_id: db.commit_error or exc})
                return failed
            return None
        syncer = self._syncer
        if syncer is None:
            syncer = self._syncer = FileSyncer(SYNC_THREADS, "pyrivet-actor-db-sync")
        jobs: list[SyncJob] = []
        committing: list[ActorDb] = []
        failures: dict[str, BaseException] = {}
        for fd, db in files.items():
            actor_id = db.host.actor_id
            if db.commit_error is not None:
                failures[actor_id] = db.commit_error
            elif db.owes_commit():
                committing.append(db)
                jobs.append((actor_id, fd, db.commit_on_thread))
            else:
                jobs.append((actor_id, fd, None))
        running = syncer.sync(jobs)
        for db in committing:
            db.start_commit(running)
        running.add_done_callback(functools.partial(_commits_ended, committing, failures))
        return running

    def files(self) -> ActorDatabases:
        files = self._files
        if files is None:
            store = self._store
            if not isinstance(store, HasActorDatabases):
                raise DatabaseError(
                    f"the storage driver {type(store).__name__} has no per-actor SQL "
                    "databases; use the SQLite or memory driver for actors with db=True",
                    code="unsupported",
                )
            files = self._files = store.actor_databases()
        return files

    def get(self, actor_id: str) -> ActorDb | None:
        return self._dbs.get(actor_id)

    async def attach(
        self, host: DbHost, seq: int, snapshot: bytes | None, *, fresh: bool
    ) -> tuple[int, bytes | None]:
        """Open the actor's database at a start, roll the store forward from its redo
        log, and run ``on_migrate``. Returns the ``(seq, snapshot)`` to start from.

        Raises:
            DatabaseError: the file cannot be opened or read (``sqlite/open_failed``),
                the roll forward failed, or on_migrate failed; the actor does not start.
        """
        files = self.files()
        actor_id = host.actor_id
        old = self._dbs.pop(actor_id, None)
        if old is not None:
            self._release(actor_id, old)
        try:
            conn = files.open(actor_id, fresh=fresh)
        except StorageError as exc:
            raise DatabaseError(
                f"actor {host.name!r} ({actor_id}): {exc}", code="open_failed"
            ) from None
        db = ActorDb(host, conn, files)
        try:
            if not fresh:
                seq, snapshot = await self._roll_forward(host, conn, seq, snapshot)
            await db.migrate()
        except BaseException:
            self._release(actor_id, db)
            raise
        self._dbs[actor_id] = db
        return seq, snapshot

    async def _roll_forward(
        self, host: DbHost, conn: sqlite3.Connection, seq: int, snapshot: bytes | None
    ) -> tuple[int, bytes | None]:
        try:
            records = read_log(conn, seq)
        except (sqlite3.Error, StorageError) as exc:
            raise DatabaseError(
                f"actor {host.name!r} ({host.actor_id}): its SQL database cannot be read "
                f"({exc}); restore it from a backup or move it away",
                code="open_failed",
            ) from None
        if not records:
            return seq, snapshot
        log.warning(
            "actor %s (%s): the store lost commits %d..%d (a crash); writing them again "
            "from the actor's SQL database",
            host.name,
            host.actor_id,
            records[0].seq,
            records[-1].seq,
        )
        for record in records:
            record.synced_elsewhere = False
        await self._store.commit(records)
        for record in records:
            host.svc.alarms.apply(record)
            if record.state is not None:
                snapshot = record.state
        return records[-1].seq, snapshot

    def before_submit(self, actor_id: str, record: CommitRecord, durable_seq: int) -> None:
        """The journal's hook; see `ActorDb.before_submit`."""
        db = self._dbs.get(actor_id)
        if db is None:
            return
        fd = self._sync_fd(actor_id)  # before the commit: a failure leaves nothing behind
        bound = self._prune_bound(db, durable_seq)
        if db.before_submit(record, bound, defer=fd is not None) and fd is not None:
            self._unsynced[fd] = db
            # The barrier syncs the log before the store writes the record; the store
            # need not sync it again, unless others read it without waking the actor
            # (its creation, its schedules).
            if record.create is None and not record.alarm_puts and not record.alarm_deletes:
                record.synced_elsewhere = True
                db.unsynced_in_store.append((self.synced_batches, record.seq))

    def _sync_fd(self, actor_id: str) -> int | None:
        try:
            return self.files().unsynced_fd(actor_id)
        except OSError as exc:
            raise DatabaseError(
                f"actor {actor_id}: its SQL database file cannot be opened for syncing "
                f"({exc}); the change was not saved",
                code="write_failed",
            ) from None

    def _prune_bound(self, db: ActorDb, durable_seq: int) -> int:
        """The highest seq whose log row may go: durable in the store, and synced there."""
        waiting = db.unsynced_in_store
        while waiting and self.synced_batches >= waiting[0][0] + 2:
            waiting.popleft()
        return min(durable_seq, waiting[0][1] - 1) if waiting else durable_seq

    def close(self, actor_id: str, *, delete: bool = False) -> None:
        """The actor stopped (``delete``: it was destroyed, drop its database)."""
        db = self._dbs.pop(actor_id, None)
        if delete:
            running = db.committing if db is not None else None
            conn = db.close() if db is not None else None
            self._after(running, lambda: self.files().delete(actor_id, conn))
        elif db is not None:
            self._release(actor_id, db)

    def _release(self, actor_id: str, db: ActorDb) -> None:
        running = db.committing
        conn = db.close()
        if conn is not None:
            self._after(running, lambda: self.files().close(actor_id, conn))

    @staticmethod
    def _after(running: asyncio.Future[Any] | None, fn: Callable[[], None]) -> None:
        """Run ``fn`` now, or once a COMMIT still running on a sync thread is done with
        the connection."""
        if running is None or running.done():
            fn()
        else:
            running.add_done_callback(lambda _: fn())

    def close_all(self) -> None:
        for actor_id, db in list(self._dbs.items()):
            self._release(actor_id, db)
        self._dbs.clear()
        if self._files is not None:
            self._files.close_all()
        if self._syncer is not None:
            self._syncer.close()
            self._syncer = None


def _commits_ended(
    committing: list[ActorDb],
    failures: dict[str, BaseException],
    running: asyncio.Future[dict[str, BaseException]],
) -> None:
    """The barrier's jobs ran (event loop, before the committer hears of it): hand the
    connections back, and add the actors that failed before their job to the result."""
    ended = running.result()
    for db in committing:
        db.commit_ended(ended.get(db.host.actor_id))
    if failures:
        ended.update(failures)


def _fdatasync(fd: int) -> None:
    try:
        os.fdatasync(fd)
    except OSError as exc:
        # EBADF: the actor's file was closed meanwhile, which syncs it (see FileSyncer).
        if exc.errno != errno.EBADF:
            raise
