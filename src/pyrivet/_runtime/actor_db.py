"""``c.db``: each actor's own SQL database, kept at the same point as its state.

What runs where: every statement runs on the event loop, inline, between the awaits of
the action that issued it (SQLite through the standard library; a statement of a few
rows takes microseconds, far less than a thread hop). Actions of one actor interleave at
awaits, as for state. The one exception is the ``COMMIT`` of a unit on the SQLite
driver in strict mode (below), which the committer's barrier runs on a sync thread when
its batch has several actor files.

**One unit of work, two files.** The database of an actor (a file of its own, see
``storage/_actor_db.py``) is written in one open SQLite transaction that spans the unit
of work: the first write of a unit begins it, and the unit's checkpoint ends it. The
journal calls `ActorDbs.before_submit` (``actor_dbs.py``) with the unit's `CommitRecord`
just before it hands the record to the committer; that writes the record itself (and
every earlier record of this actor not yet known durable in the main store) into the
redo log, in the same transaction, and commits it: at once on the memory driver; on the
SQLite driver the log rows and the COMMIT are *owed* and the barrier runs them right
before the file's fdatasync, before the main store writes the batch (on a sync thread,
where SQLite releases the GIL while it writes, when the batch has several files; inline
for one). Until it ran, this actor's next statement waits for it (or runs it inline), so a
commit never carries part of a later unit. So the database is never behind the main
store; when the main store lost commits (a crash between the two), the woken actor finds
them in its log and writes them again (`ActorDbs.attach`, roll forward): its state, KV,
schedules and SQL data are again from one point. An actor type without a database never
reaches this module; a unit of work of a database actor that wrote no SQL writes nothing
here (its record is only remembered, to be logged by the next unit that writes SQL).

Errors: a statement SQLite refuses raises `DatabaseError` with SQLite's message and
changes nothing (a single statement is atomic in SQLite; a script runs in a savepoint).
If the database cannot be written at a checkpoint or its owed COMMIT fails (disk full,
I/O error, a deferred constraint; the barrier then fails that actor's records only), or
a commit of an actor whose SQL is already committed fails in the main store, the actor's
database is marked failed and the actor is put to sleep: the next wake starts from what
both files hold. A file that cannot be read fails the start of that actor only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

from .._util.clock import Clock, Timer
from ..actor._database import Database, Row
from ..actor._definition import ActorDefinition
from ..errors import ActorError, DatabaseError, InternalError
from ..storage._actor_db import LOG_TABLE, ActorDatabases, write_log
from ..storage._base import ActorStore, CommitRecord
from .writes import Contribution

__all__ = ["ActorDb", "DbHost", "split_statements"]

log = logging.getLogger("pyrivet.actor")

#: Transactions waiting for their turn, per actor (RivetKit's limit).
MAX_WAITING = 128

_OK = sqlite3.SQLITE_OK
_DENY = sqlite3.SQLITE_DENY
#: Statements actor code may not run: they would end the runtime's transaction or
#: reach outside the actor's database.
_FORBIDDEN = {
    sqlite3.SQLITE_TRANSACTION: "BEGIN/COMMIT/ROLLBACK: use `async with c.db.transaction():`",
    sqlite3.SQLITE_SAVEPOINT: "SAVEPOINT/RELEASE: use `async with c.db.transaction():`",
    sqlite3.SQLITE_ATTACH: "ATTACH: an actor reaches only its own database",
    sqlite3.SQLITE_DETACH: "DETACH: an actor reaches only its own database",
}
_LOCKED_PRAGMAS = frozenset({"journal_mode", "synchronous", "locking_mode", "writable_schema"})
#: Actions on the redo log table that actor code may not take.
_WRITES = frozenset(
    {
        sqlite3.SQLITE_INSERT,
        sqlite3.SQLITE_UPDATE,
        sqlite3.SQLITE_DELETE,
        sqlite3.SQLITE_DROP_TABLE,
        sqlite3.SQLITE_ALTER_TABLE,  # (database, table)
        sqlite3.SQLITE_CREATE_TRIGGER,  # (trigger, table)
        sqlite3.SQLITE_CREATE_TEMP_TRIGGER,
    }
)
# The runtime's own statements carry a marker: Python's statement cache is keyed by the
# text, so actor code typing plain "COMMIT" never reuses (and bypasses the check of) one.
_BEGIN = "BEGIN /* pyrivet */"
_COMMIT = "COMMIT /* pyrivet */"
_ROLLBACK = "ROLLBACK /* pyrivet */"


class _Svc(Protocol):
    """What the database needs of the runtime's services."""

    @property
    def clock(self) -> Clock: ...
    @property
    def store(self) -> ActorStore: ...
    @property
    def alarms(self) -> Any: ...


class _Journal(Protocol):
    """What the database needs of its actor's `Journal`."""

    @property
    def durable_seq(self) -> int: ...
    @property
    def seq(self) -> int: ...
    def contribute(self, contribution: Contribution) -> None: ...
    def checkpoint(self, kind: str, *, name: str | None = None) -> Any: ...
    def end_of_work(self, kind: str, name: str | None = None) -> None: ...


class DbHost(Protocol):
    """What an actor database needs of its actor (implemented by `ActorInstance`)."""

    actor_id: str
    definition: ActorDefinition[Any]
    busy: int

    @property
    def name(self) -> str: ...
    @property
    def svc(self) -> _Svc: ...
    @property
    def journal(self) -> _Journal: ...
    def context(self) -> Any: ...
    async def call_hook(self, fn: Any, timeout: float | None, what: str, *args: Any) -> Any: ...
    def request_stop(self, kind: str) -> None: ...
    def accepts_saves(self) -> bool: ...
    def became_idle(self) -> None: ...
    async def output_gate(self) -> None: ...


def split_statements(sql: str) -> list[str]:
    """The statements of ``sql``, split where SQLite says a statement is complete (so a
    ``;`` inside a string or a trigger body does not split). Empty pieces are dropped."""
    if ";" not in sql:
        return [sql]
    pieces: list[str] = []
    start = 0
    end = sql.find(";")
    while end != -1:
        piece = sql[start : end + 1]
        # (A NUL makes complete_statement raise; SQLite refuses it later, clearly.)
        if sqlite3.complete_statement(piece.replace("\x00", " ")):
            if piece.strip(" \t\r\n;"):
                pieces.append(piece)
            start = end + 1
        end = sql.find(";", end + 1)
    if sql[start:].strip():
        pieces.append(sql[start:])
    return pieces or [sql]


def _is_read(statement: str) -> bool:
    return statement.lstrip()[:6].upper() == "SELECT"


def _rows(cursor: sqlite3.Cursor) -> list[Row]:
    description = cursor.description
    if description is None:
        return []
    names = [column[0] for column in description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _params(args: tuple[Any, ...], named: dict[str, Any]) -> Any:
    if named:
        if args:
            raise DatabaseError(
                "pass parameters either positionally (?) or by name (:name), not both",
                code="invalid_argument",
            )
        return named
    if len(args) == 1 and isinstance(args[0], Mapping):
        return args[0]
    return args


class ActorDb(Database, Contribution):
    """One awake actor's database: ``c.db``. See the module docstring."""

    __slots__ = (
        "_committing",
        "_cursor",
        "_denied",
        "_due",
        "_expired",
        "_failed",
        "_files",
        "_host",
        "_internal",
        "_kept",
        "_log_low",
        "_migrating",
        "_owed_log",
        "_staged",
        "_tx",
        "_waiters",
        "commit_error",
        "conn",
        "unsynced_in_store",
    )

    def __init__(self, host: DbHost, conn: sqlite3.Connection, files: ActorDatabases) -> None:
        self._host = host
        self.conn: sqlite3.Connection | None = conn
        self._files = files
        #: The one cursor every statement runs on (a new cursor per statement, as
        #: ``conn.execute`` makes, costs an object and a weak reference each time).
        self._cursor = conn.cursor()
        #: Records submitted while the database had nothing to commit: logged with the
        #: next commit that has SQL writes (trimmed to those not durable in the store).
        self._kept: list[CommitRecord] = []
        #: The lowest seq the redo log may hold (None: unknown, as after opening).
        self._log_low: int | None = None
        #: (synced batch count, seq) of records the store wrote without a sync of its
        #: own, oldest first (see `ActorDbs.synced_batches`).
        self.unsynced_in_store: deque[tuple[int, int]] = deque()
        #: A contribution is staged in the journal (SQL writes wait for a checkpoint).
        self._staged = False
        self._failed: str | None = None
        self._migrating = False
        self._internal = False
        self._denied: str | None = None
        self._tx: _Transaction | None = None
        self._waiters: deque[asyncio.Future[None]] = deque()
        #: Tasks whose transaction expired while still open.
        self._expired: set[asyncio.Task[Any]] = set()
        #: The unit's transaction (its SQL writes) is complete and owes its redo log rows
        #: and COMMIT, which the barrier runs on a sync thread (see `before_submit`).
        self._due = False
        #: The redo log rows that owed COMMIT writes first: (records, prune bound).
        self._owed_log: tuple[list[CommitRecord], int | None] | None = None
        #: While that COMMIT runs on a sync thread: the barrier's future (the loop leaves
        #: the connection alone until it is done).
        self._committing: asyncio.Future[Any] | None = None
        #: Why the owed COMMIT failed (the barrier fails this actor's records with it).
        self.commit_error: BaseException | None = None
        conn.set_authorizer(self._authorize)

    # -- checks ----------------------------------------------------------------------

    def _authorize(
        self, action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: str | None
    ) -> int:
        if self._internal:
            return _OK
        reason = _FORBIDDEN.get(action)
        if reason is None and action == sqlite3.SQLITE_PRAGMA:
            if arg1 in _LOCKED_PRAGMAS and arg2 is not None:
                reason = f"PRAGMA {arg1} is managed by pyrivet"
        elif reason is None and LOG_TABLE in (arg1, arg2) and action in _WRITES:
            reason = f"{LOG_TABLE} is pyrivet's redo log"
        if reason is None:
            return _OK
        self._denied = reason
        return _DENY

    @property
    def host(self) -> DbHost:
        return self._host

    def usable(self) -> sqlite3.Connection:
        """The open connection (for the inspector's reads).

        Raises:
            DatabaseError: the database is closed or failed.
        """
        return self._usable()

    def _usable(self) -> sqlite3.Connection:
        conn = self.conn
        if conn is None:
            raise DatabaseError(
                f"Database is closed: actor {self._host.name!r} ({self._host.actor_id}) has "
                "stopped; use c.db only while the actor runs",
                code="closed",
            )
        if self._failed is not None:
            raise DatabaseError(self._failed, code="failed")
        return conn

    def _run_internal(self, sql: str) -> None:
        self._usable()
        self._internal = True
        try:
            self._cursor.execute(sql)
        finally:
            self._internal = False

    # -- Database ------------------------------------------------------------------

    async def execute(self, sql: str, *args: Any, **named: Any) -> list[Row]:
        conn = self._usable()
        if not isinstance(sql, str):
            raise DatabaseError(f"sql must be a str, got {type(sql).__name__}", code="invalid")
        if self._expired or self._tx is not None:
            # (Only then: `current_task` asks for the running loop, a getpid() call.)
            task = asyncio.current_task()
            if task in self._expired:
                raise _expired_error()
        else:
            task = None
        if self._due or self._committing is not None:
            conn = await self._settle_commit()
        tx = self._tx
        if tx is not None:
            if task is None:
                task = asyncio.current_task()
            if tx.task is not task:
                await self._wait_turn(task)
                conn = self._usable()
        return self._run(conn, split_statements(sql), _params(args, named))

    def _run(self, conn: sqlite3.Connection, statements: list[str], params: Any) -> list[Row]:
        single = len(statements) == 1
        if not single and params:
            raise DatabaseError(
                "parameters need a single statement; run the statements one by one",
                code="invalid_argument",
            )
        read = single and _is_read(statements[0])
        if not read and not conn.in_transaction:
            self._run_internal(_BEGIN)
        opened = conn.in_transaction
        changes = conn.total_changes
        self._denied = None
        try:
            if single:
                rows = _rows(self._cursor.execute(statements[0], params))
            else:
                rows = self._script(conn, statements)
        except (sqlite3.Error, OverflowError, ValueError) as exc:
            if opened and not conn.in_transaction:
                # SQLite ended the whole transaction (e.g. INSERT OR ROLLBACK, disk full):
                # the unit's earlier SQL writes are gone while its state changes are not.
                self._fail("an error rolled back its open transaction", exc)
            raise self._error(exc) from None
        if not read or conn.total_changes != changes:
            self._mark_dirty()
        return rows

    def _script(self, conn: sqlite3.Connection, statements: list[str]) -> list[Row]:
        self._run_internal("SAVEPOINT pyrivet_call")
        rows: list[Row] = []
        try:
            for statement in statements:
                cursor = self._cursor.execute(statement)
                if cursor.description is not None:
                    rows = _rows(cursor)
        except BaseException:
            self._run_internal("ROLLBACK TO pyrivet_call")
            self._run_internal("RELEASE pyrivet_call")
            raise
        self._run_internal("RELEASE pyrivet_call")
        return rows

    def _error(self, exc: BaseException) -> DatabaseError:
        if self._denied is not None:
            return DatabaseError(f"not allowed: {self._denied}", code="forbidden")
        if isinstance(exc, sqlite3.IntegrityError):
            return DatabaseError(str(exc), code="constraint_violation")
        if isinstance(exc, sqlite3.ProgrammingError | sqlite3.InterfaceError | OverflowError):
            return DatabaseError(str(exc), code="invalid_argument")
        return DatabaseError(str(exc))

    def transaction(self, *, timeout: float = 60.0) -> _Transaction:
        return _Transaction(self, timeout)

    # -- units of work ---------------------------------------------------------------

    def _mark_dirty(self) -> None:
        if not self._staged and not self._migrating:
            self._staged = True
            self._host.journal.contribute(self)

    def write(self, record: CommitRecord, ops: list[Any]) -> None:
        """Contribution: the unit's commit is being built (its SQL commits just before
        it is submitted, in `before_submit`)."""
        self._staged = False
        ops.append(("sql.write",))

    def settled(self, error: BaseException | None) -> None:
        """Contribution: the unit's commit is durable, or it never will be."""
        if error is None:
            return
        conn = self.conn
        if self._staged and self._tx is None and conn is not None:
            # Dropped before it reached a commit (its state could not be encoded, or an
            # earlier commit failed): the SQL writes made since go with it.
            self._staged = False
            if conn.in_transaction:
                self._run_internal(_ROLLBACK)
            return
        # The SQL of a unit is committed here but not in the store: restart the actor,
        # whose wake writes the store's missing commits from the redo log.
        self._fail("a commit of this actor failed in the main store", error)

    def before_submit(self, record: CommitRecord, durable_seq: int, *, defer: bool) -> bool:
        """Called by the journal with each commit record of this actor just before the
        committer gets it: write the redo log (the record itself, and every earlier
        record of this actor not yet known durable in the main store) into the
        transaction that holds the SQL writes made since the last checkpoint, and commit
        it, so the database never falls behind the store. Log rows up to
        ``durable_seq`` (durable and synced in the store) are dropped.

        ``defer``: the log rows and the COMMIT are owed (`_due`) and left to the
        barrier, which runs them on a sync thread right before the file's fdatasync, or
        inline (`commit_owed`); statements of this actor wait for them (`execute`).

        Returns whether the database has a commit for this record (its file then needs
        a sync, and, deferred, the COMMIT).

        Raises:
            DatabaseError: the database cannot be written (or failed before): the actor
                is put to sleep; nothing of this unit reaches the store.
        """
        conn = self._usable()
        kept = [r for r in self._kept if durable_seq < r.seq < record.seq]
        kept.append(record)
        if (
            not conn.in_transaction
            or self._due
            or self._committing is not None
            or self._tx is not None
        ):
            # No SQL writes (or only an open transaction's, which may still roll back).
            self._kept = kept
            return False
        low = self._log_low
        prune = low is None or low <= durable_seq
        log = (kept, durable_seq if prune else None)
        # (Rows between the bound and kept[0] may stay a little longer: harmless, wake
        # reads only rows past the store's seq.)
        self._log_low = kept[0].seq if prune or low is None else low
        self._kept = []
        if defer:
            # The log rows are written with the COMMIT (`_commit_now`), off the loop too.
            self._owed_log = log
            self._due = True
            return True
        try:
            self._internal = True
            try:
                write_log(self._cursor, *log)
            finally:
                self._internal = False
            self._run_internal(_COMMIT)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                self._run_internal(_ROLLBACK)
            self._fail("its SQL database could not be written", exc)
            raise _write_failed(self._host.name, exc) from None
        return True

    def commit_owed(self) -> None:
        """Run the owed log rows and COMMIT now, on the event loop (a statement of this actor needs
        the connection, or the barrier has this one file only).

        Raises:
            DatabaseError: the commit failed (it was rolled back, the actor fails, and
                `commit_error` makes the barrier fail this actor's records).
        """
        self._due = False
        try:
            self._commit_now()
        except Exception as exc:
            self.commit_error = exc
            self._fail("its SQL database could not be written", exc)
            raise _write_failed(self._host.name, exc) from None

    def commit_on_thread(self) -> None:
        """The owed log rows and COMMIT, on a sync thread (the barrier calls `start_commit` first;
        the event loop does not use the connection until the barrier's future is done).

        Raises:
            sqlite3.Error: the commit failed and was rolled back.
        """
        self._commit_now()

    def _commit_now(self) -> None:
        conn = self.conn
        if conn is None:
            raise sqlite3.OperationalError("the database was closed before its commit")
        owed, self._owed_log = self._owed_log, None
        cursor = self._cursor
        self._internal = True
        try:
            if owed is not None:
                write_log(cursor, *owed)
            cursor.execute(_COMMIT)
        except Exception:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    cursor.execute(_ROLLBACK)
            raise
        finally:
            self._internal = False

    @property
    def committing(self) -> asyncio.Future[Any] | None:
        """The barrier's future while this database's COMMIT runs on a sync thread."""
        return self._committing

    def owes_commit(self) -> bool:
        """Whether the last submitted unit's COMMIT is still to run (see `before_submit`)."""
        return self._due

    def start_commit(self, running: asyncio.Future[Any]) -> None:
        """The barrier handed the owed COMMIT to a sync thread (`commit_on_thread`);
        ``running`` is done once it ran."""
        self._due = False
        self._committing = running

    def commit_ended(self, error: BaseException | None) -> None:
        """The COMMIT handed to a sync thread ran (event loop); ``error`` if it failed."""
        self._committing = None
        if error is not None and self.commit_error is None:
            self.commit_error = error
            self._fail("its SQL database could not be written", error)

    async def _settle_commit(self) -> sqlite3.Connection:
        """Wait for a COMMIT running on a sync thread, or run an owed one here, so that
        a new statement never lands in the transaction of a unit already submitted."""
        while (running := self._committing) is not None:
            await asyncio.wait((running,))
        if self._due:
            self.commit_owed()
        return self._usable()

    def _fail(self, why: str, exc: BaseException) -> None:
        host = self._host
        if self._failed is None:
            self._failed = (
                f"actor {host.name!r} ({host.actor_id}): {why} ({exc}); it restarts "
                "from its saved data on the next request"
            )
            log.error("%s", self._failed)
            if host.accepts_saves():
                host.request_stop("sleep")

    # -- transactions ----------------------------------------------------------------

    async def _wait_turn(self, task: asyncio.Task[Any] | None) -> None:
        while self._tx is not None and self._tx.task is not task:
            if len(self._waiters) >= MAX_WAITING:
                raise DatabaseError(
                    f"{MAX_WAITING} statements already wait for an open transaction of "
                    f"actor {self._host.name!r}; keep transactions short",
                    code="transaction_queue_full",
                )
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _end_tx(self) -> None:
        self._tx = None
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- opening and closing ---------------------------------------------------------

    async def migrate(self) -> None:
        """Run ``on_migrate(c, db)`` in a transaction of its own (every start, first).

        Raises:
            DatabaseError: the hook raised or timed out; its changes were rolled back.
        """
        host = self._host
        hook = host.definition.hooks.get("on_migrate")
        if hook is None:
            return
        conn = self._usable()
        self._run_internal(_BEGIN)
        self._migrating = True
        try:
            await host.call_hook(
                hook, host.definition.options.on_migrate_timeout, "on_migrate", host.context(), self
            )
        except BaseException as exc:
            if conn.in_transaction:
                self._run_internal(_ROLLBACK)
            if not isinstance(exc, Exception):
                raise
            cause = exc.__cause__ if isinstance(exc, InternalError) else exc
            what = cause.message if isinstance(cause, ActorError) else repr(cause)
            raise DatabaseError(
                f"actor {host.name!r}: on_migrate failed ({what}); its changes were rolled "
                "back and the actor did not start. Fix the migration and call again",
                code="migration_failed",
            ) from exc
        finally:
            self._migrating = False
        if conn.in_transaction:
            self._run_internal(_COMMIT)

    def close(self) -> Any:
        """Release the connection (the actor stopped); later use raises ``sqlite/closed``.

        An owed COMMIT runs first (its record is still on its way to the store); if it
        cannot, `commit_error` fails that record."""
        if self._due:
            if self._failed is None:
                with contextlib.suppress(DatabaseError):
                    self.commit_owed()
            else:
                self._due = False
                self._owed_log = None
                self.commit_error = DatabaseError(self._failed, code="failed")
        conn, self.conn = self.conn, None
        self._end_tx()
        return conn


class _Transaction:
    """``async with c.db.transaction():`` (see `Database.transaction`)."""

    __slots__ = ("db", "expired", "task", "timeout", "timer")

    def __init__(self, db: ActorDb, timeout: float) -> None:
        if not timeout > 0:
            raise DatabaseError(f"timeout must be positive, got {timeout!r}", code="invalid")
        self.db = db
        self.timeout = timeout
        self.task: asyncio.Task[Any] | None = None
        self.timer: Timer | None = None
        self.expired = False

    async def __aenter__(self) -> ActorDb:
        db = self.db
        db._usable()
        task = asyncio.current_task()
        if db._tx is not None and db._tx.task is task:
            raise DatabaseError("transactions do not nest", code="nested_transaction")
        await db._wait_turn(task)
        conn = await db._settle_commit()
        host = db._host
        if conn.in_transaction and host.journal.seq > 0 and host.accepts_saves():
            # Earlier SQL writes of this unit are committed first, so that a rollback of
            # this transaction cannot take them along (here, not on a sync thread: the
            # transaction must not begin inside that commit's transaction).
            host.journal.checkpoint("save")
            if db.owes_commit():
                db.commit_owed()
        db._tx = self
        self.task = task
        if not conn.in_transaction:
            db._run_internal(_BEGIN)
        db._run_internal("SAVEPOINT pyrivet_tx")
        self.timer = host.svc.clock.call_later(self.timeout, self._expire)
        return db

    def _expire(self) -> None:
        db = self.db
        if db._tx is not self:
            return
        log.warning(
            "actor %s (%s): a SQL transaction was open for %s s; rolled back",
            db._host.name,
            db._host.actor_id,
            self.timeout,
        )
        self.expired = True
        if self.task is not None:
            db._expired.add(self.task)
        self._undo()
        db._end_tx()

    def _undo(self) -> None:
        db = self.db
        if db.conn is not None and db._failed is None:
            db._run_internal("ROLLBACK TO pyrivet_tx")
            db._run_internal("RELEASE pyrivet_tx")

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        db = self.db
        if self.timer is not None:
            self.timer.cancel()
        if self.expired:
            if self.task is not None:
                db._expired.discard(self.task)
            if exc_type is None:
                raise _expired_error()
            return False
        try:
            if exc_type is None and db.conn is not None and db._failed is None:
                db._run_internal("RELEASE pyrivet_tx")
                db._mark_dirty()  # committed with this unit's checkpoint
            else:
                self._undo()
        finally:
            db._end_tx()
        return False


def _write_failed(name: str, exc: BaseException) -> DatabaseError:
    return DatabaseError(
        f"actor {name!r}: the SQL database could not be written ({exc}); "
        "the change was not saved and the actor restarts from its saved data",
        code="write_failed",
    )


def _expired_error() -> DatabaseError:
    return DatabaseError(
        "the SQL transaction was open past its timeout and was rolled back",
        code="transaction_expired",
    )
