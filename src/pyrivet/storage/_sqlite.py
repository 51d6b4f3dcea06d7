"""The embedded storage driver: one SQLite database in WAL mode, one writer thread.

Threads:

* The **event loop** calls the `SQLiteDriver` coroutines. Each one puts a job on a queue
  and awaits a future, except on the *inline fast path* below.
* The **writer thread** (one per open driver) runs the jobs one at a time in submission
  order, reads included, so every read sees every write submitted before it. It hands
  each result (or exception) back with ``loop.call_soon_threadsafe``. Between jobs,
  after the result was handed back, it runs a step of commit log compaction when one
  is due (see below).
* **Inline fast path.** Short jobs (commits and point reads) run on the event loop's
  own thread when the writer is idle: no job queued or running and its connection
  lock free. A thread hand-off costs two cross-CPU wake-ups (~100 µs round trip on a
  small VM, as much as the fsync itself), so an uncontended commit or lookup is much
  faster inline. The loop blocks for the job (the fsync of a commit, ~0.1-0.3 ms);
  under load the writer thread is busy and jobs queue for it as usual. After an inline
  job that overran ``inline_budget`` (a stalling disk, or the loop's thread preempted
  on a busy machine) the fast path pauses until a job on the writer thread finishes
  within the budget again: while the disk stalls, the loop is not blocked job after
  job, and a lone stall costs one batch on the thread, not a second of them. Order is kept:
  a job never runs inline while an earlier one is still queued or running; one that the
  thread has run does not hold it back, though the loop may take in its answer after
  the inline job's (the answers of both are final by then). One lock
  (`Writer.lock`) serialises every use of the connection between the two threads.
* The **checkpointer thread** (``_sqlite_compaction.Checkpointer``) has a connection of
  its own and only copies the WAL back into the database file, alongside the writer.

Commits are **log-first**: a commit appends one ``actor_log`` row per record (carrying
its state, history entry and workflow records) and writes the actor rows, KV, alarms
and queue directly; ``actor_state``, ``actor_events`` and ``actor_workflow`` are filled
later by compaction (``_sqlite_compaction``), whose in-memory index answers
`SQLiteDriver.load_state` meanwhile, which `SQLiteDriver.read_history` runs first for
the actor, and whose unmoved rows `SQLiteDriver.load_workflow` reads over the table. A
crash leaves the rows in the log; the next `open` compacts them.

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
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any, Literal, TypeAlias, TypeVar, TypeVarTuple, Unpack

from ..errors import StorageError
from ._actor_db import ActorDatabases, FileDatabases
from ._base import (
    ActorRecord,
    AlarmRecord,
    CommitRecord,
    HistoryEntry,
    StoredQueue,
    StoredState,
    serialize_key,
)
from ._datadir_lock import lock_dir, unlock_dir
from ._sqlite_writer import Writer

__all__ = ["SQLiteDriver"]

DB_FILE = "pyrivet.sqlite3"

#: The time source of the inline budget (replaced in tests).
_perf_counter = time.perf_counter

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
_Job: TypeAlias = tuple[
    Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, asyncio.Future[Any]
]


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

        inline: run short jobs on the caller's thread when the writer is idle (see the
            module docstring); ``False`` sends every job to the writer thread.
        inline_budget: an inline job that takes longer than this many seconds (a slow
            disk, a large batch) turns the fast path off until a job on the writer
            thread takes no longer, so a stalling disk blocks the event loop once per
            stall, not job after job.
        wal_prefill: at `open`, write the WAL's first lap (~4.4 MB of zeros) before any
            commit, so that the commits of that lap overwrite the file instead of
            growing it (each such fsync then waits for the filesystem journal; see
            ``_sqlite_wal``). For a long-running store (`pyrivet serve` sets it): the
            WAL is deleted at `close`, so a store opened and closed often would write
            and free 4.4 MB each time.

    Errors of SQLite surface as `StorageError`; a failed commit is rolled back whole.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        pragmas: Mapping[str, int | str] | None = None,
        inline: bool = True,
        inline_budget: float = 0.005,
        wal_prefill: bool = False,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', not {synchronous!r}")
        self.data_dir = Path(data_dir)
        self._synchronous = synchronous
        self._pragmas = dict(pragmas or {})
        self._inline = inline
        self._inline_budget = inline_budget
        #: Write the WAL's first lap at `open` (see the class docstring); settable until then.
        self.wal_prefill = wal_prefill
        #: The fast path is off: an inline job overran the budget, and no job on the
        #: writer thread has finished within it since. Set on the loop's thread, cleared
        #: on the writer thread (`_job_took`); a stale read costs one job's placement.
        self._inline_paused = False
        self._jobs: SimpleQueue[_Job | None] | None = None
        self._thread: threading.Thread | None = None
        self._writer: Writer | None = None
        self._lock_fd: int | None = None
        #: Jobs submitted and not answered yet, and a future resolved when none are left.
        self._in_flight = 0
        #: Jobs submitted to the writer thread (counted on the loop's thread), and jobs
        #: the writer thread has run (counted there, after each job): while they differ
        #: a job is queued or running, and a new one must queue behind it. Two counters,
        #: each written by one thread, so no update is lost. A job that has run but
        #: whose answer the loop has not seen yet (`_in_flight`) does not hold the fast
        #: path back: on a busy loop that lag kept every job on the thread long after
        #: its queue had drained.
        self._submitted = 0
        self._ran = 0
        #: The done future `_run` returns for inline jobs that return None.
        self._done: asyncio.Future[None] | None = None
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
        except (FileExistsError, NotADirectoryError):
            raise StorageError(_file_in_the_way(self.data_dir)) from None
        except OSError as exc:
            raise StorageError(f"cannot create the data directory {self.data_dir}: {exc}") from exc
        self._lock_fd = lock_dir(self.data_dir)
        writer = Writer(self.data_dir / DB_FILE, self._synchronous, self._pragmas)
        self._writer = writer
        self._jobs = SimpleQueue()
        self._submitted = self._ran = 0  # a closed driver's thread ran its close job too
        self._thread = threading.Thread(
            target=_serve,
            args=(self._jobs, writer, self._job_took),
            name="pyrivet-sqlite-writer",
            daemon=True,
        )
        self._thread.start()
        try:
            await self._call(writer.connect)
            if self.wal_prefill:
                await self._call(writer.prefill_wal)
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
                unlock_dir(self._lock_fd)
                self._lock_fd = None

    def _submit(self, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> asyncio.Future[T]:
        """Queue ``fn(*args)`` for the writer thread now; the future resolves on this loop."""
        jobs = self._jobs
        if jobs is None:
            raise StorageError(f"the SQLite store in {self.data_dir} is not open")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        jobs.put((fn, args, fut.get_loop(), fut))
        self._submitted += 1
        self._in_flight += 1
        fut.add_done_callback(self._job_done)
        return fut

    def _run(self, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> asyncio.Future[T]:
        """Run ``fn(*args)`` inline if the writer is idle, else queue it (`_submit`).

        Only for short jobs: an inline job blocks the event loop while it runs.
        """
        writer = self._writer
        start = _perf_counter()
        if (
            not self._inline
            or self._submitted != self._ran
            or writer is None
            or self._inline_paused
            or not writer.lock.acquire(False)  # not blocking
        ):
            return self._submit(fn, *args)
        rows_before = writer.log.rows
        try:
            result, error = _run_job(fn, args)
        finally:
            writer.lock.release()
        if _perf_counter() - start > self._inline_budget:
            self._inline_paused = True
        if writer.log.needs_nudge(rows_before) and self._jobs is not None:
            self._jobs.put(_WAKE)  # let the writer thread schedule the compaction
        done = self._done
        if result is None and error is None:
            # A job with no result (a commit): one done future per loop serves them all
            # (awaiting it, or reading its outcome, changes nothing). While its loop runs
            # it is this one: no `get_running_loop` (a ``getpid`` in Python 3.11).
            if done is None or not done.get_loop().is_running():
                done = self._done = asyncio.get_running_loop().create_future()
                done.set_result(None)
            return done  # type: ignore[return-value]  # (`typing.cast` is a call)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        _settle(fut, result, error)
        return fut

    def _job_took(self, seconds: float) -> None:
        """Runs on the writer thread after each job, the lock still held: counts it as
        run, and a job within the budget ends a pause of the fast path (the disk keeps
        up again)."""
        self._ran += 1
        if seconds <= self._inline_budget:
            self._inline_paused = False

    def _job_done(self, _fut: asyncio.Future[Any]) -> None:
        self._in_flight -= 1
        if not self._in_flight and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    async def _call(self, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        return await self._submit(fn, *args)

    async def _call_short(self, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        return await self._run(fn, *args)

    def _w(self) -> Writer:
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
        await self._call_short(self._w().insert_actor, record, False)

    async def get_or_create_actor(self, record: ActorRecord) -> tuple[ActorRecord, bool]:
        """The live actor with ``record``'s name and key, inserting ``record`` if none."""
        return await self._call_short(self._w().insert_actor, record, True)

    async def find_actor(self, name: str, key: tuple[str, ...]) -> ActorRecord | None:
        """The live actor with this name and key, or None."""
        return await self._call_short(self._w().find_actor, name, serialize_key(key))

    async def get_actor(self, actor_id: str) -> ActorRecord | None:
        """The live actor with this id, or None."""
        return await self._call_short(self._w().get_actor, actor_id)

    async def list_actors(
        self,
        name: str | None = None,
        *,
        after: tuple[int, str] | None = None,
        limit: int | None = None,
    ) -> list[ActorRecord]:
        """Live actors (optionally of one name) by ``(created_at_ms, actor_id)``, paged
        (see `ActorStore.list_actors`)."""
        return await self._call(self._w().list_actors, name, after, limit)

    async def count_actors(self) -> dict[str, int]:
        """Live actors per name."""
        return await self._call(self._w().count_actors)

    async def load_state(self, actor_id: str) -> StoredState:
        """The actor's last committed seq (commits that left the state unchanged count)
        and latest snapshot; ``StoredState(0, None, False)`` if none."""
        return await self._call_short(self._w().load_state, actor_id)

    def commit(self, batch: Sequence[CommitRecord]) -> Awaitable[None]:
        """Apply ``batch`` in one transaction; see `Writer.commit`.

        If the writer is idle the commit runs inline and the returned future is already
        done; otherwise the job is queued for the writer thread before this returns (no
        event-loop round trip). The records may be read on the writer thread: do not
        mutate them until the returned future is done.

        Raises (from the future):
            StorageError: the write failed (e.g. the disk is full); nothing was applied.
        """
        writer = self._writer
        if writer is None or not batch:
            if writer is None:
                raise StorageError(f"the SQLite store in {self.data_dir} is not open")
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        return self._run(writer.commit, batch)

    async def destroy_actor(self, actor_id: str, at_ms: int) -> None:
        """Delete the actor's state, history, KV, alarms, queue and workflow records;
        mark it destroyed."""
        await self._call(self._w().destroy_actor, actor_id, at_ms)

    async def kv_get(self, actor_id: str, key: bytes) -> bytes | None:
        """The committed value of ``key``, or None."""
        return await self._call_short(self._w().kv_get, actor_id, key)

    async def kv_get_batch(self, actor_id: str, keys: Sequence[bytes]) -> list[bytes | None]:
        """The committed values of ``keys`` in the order given, None for a missing one."""
        return await self._call_short(self._w().kv_get_batch, actor_id, keys)

    async def kv_list(
        self, actor_id: str, prefix: bytes, limit: int | None = None
    ) -> list[tuple[bytes, bytes]]:
        """Entries whose key starts with ``prefix``, in key byte order, at most ``limit``."""
        return await self._call(self._w().kv_list, actor_id, prefix, limit)

    async def kv_list_range(
        self,
        actor_id: str,
        start: bytes,
        end: bytes | None,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """Entries with ``start <= key < end`` (no upper bound if ``end`` is None) in key
        byte order, descending if ``reverse``, at most ``limit``."""
        return await self._call(self._w().kv_list_range, actor_id, start, end, reverse, limit)

    async def load_queue(self, actor_id: str) -> StoredQueue:
        """The actor's queued messages in id order and the highest id ever stored."""
        return await self._call(self._w().load_queue, actor_id)

    async def load_workflow(self, actor_id: str) -> dict[str, bytes]:
        """The actor's committed workflow records by key; ``{}`` if none."""
        return await self._call(self._w().load_workflow, actor_id)

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

    def actor_databases(self) -> ActorDatabases:
        """The per-actor SQL databases (``c.db``): one file per actor under
        ``<data_dir>/actor-db/``, synced like this driver's commits."""
        dbs: FileDatabases | None = getattr(self, "_actor_dbs", None)
        if dbs is None:
            dbs = self._actor_dbs = FileDatabases(self.data_dir / "actor-db", self._synchronous)
        return dbs


# -- the writer thread -----------------------------------------------------------------


#: Queued by an inline commit that made background work due: the writer thread wakes
#: up, re-reads `Writer.idle_wait` and runs `Writer.maintain`.
_WAKE: Any = ("wake",)


def _serve(jobs: SimpleQueue[_Job | None], writer: Writer, took: Callable[[float], None]) -> None:
    """The writer thread's loop: run jobs in order until the ``None`` sentinel.

    After each job (its result already handed back), and when no job arrives before an
    idle compaction is due, it lets the writer do its background work (`Writer.maintain`).
    Jobs and background work hold `Writer.lock`; waiting for a job does not. ``took``
    hears how long each job ran (`_perf_counter` seconds, the lock held).
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
            _maintain(writer, idle=True)
            continue
        if job is None:
            return
        if job is _WAKE:
            _maintain(writer, idle=jobs.empty())
            continue
        fn, args, loop, fut = job
        with writer.lock:
            start = _perf_counter()
            result, error = _run_job(fn, args)
            took(_perf_counter() - start)
        _post(loop, fut, result, error)
        _maintain(writer, idle=jobs.empty())


def _maintain(writer: Writer, *, idle: bool) -> None:
    """Background work between jobs, holding the connection lock only if there is some."""
    if writer.maintenance_due(idle):
        with writer.lock:
            writer.maintain(idle)


def _run_job(fn: Callable[..., T], args: tuple[Any, ...]) -> tuple[T | None, BaseException | None]:
    """``fn(*args)`` as (result, None) or (None, error); SQLite errors become StorageError."""
    try:
        return fn(*args), None
    except sqlite3.Error as exc:
        error = StorageError(f"SQLite error in {fn.__name__}: {exc}")
        error.__cause__ = exc
        return None, error
    except BaseException as exc:
        return None, exc


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


def _file_in_the_way(data_dir: Path) -> str:
    """Why ``data_dir`` cannot be made a directory: it, or a parent, is a file."""
    for path in (data_dir, *data_dir.parents):
        if path.exists() and not path.is_dir():
            where = "" if path == data_dir else f" (in the data directory path {data_dir})"
            return (
                f"{path} is a file, but the data directory must be a directory{where}; "
                "give a directory path (it is created if missing)"
            )
    return f"cannot create the data directory {data_dir}: a path component is not a directory"
