"""Group commit: one committer per runtime batches every actor's writes.

Actors hand `CommitRecord`s to `Committer.submit` and get a `CommitTicket` that
resolves when the record is durable. The committer keeps at most one batch in flight.
When it is idle, the records submitted during the current event-loop iteration are
written together at the start of the next one (a `call_soon`, no fixed delay); while
a batch is being written, new records pile up and go together in the next transaction
("natural batching"). Waiting for the end of the iteration matters because a driver
may write a batch inline, blocking the loop for the fsync (see the SQLite driver's
inline fast path): every action that ran in the iteration shares that one fsync
instead of each paying its own. The committer is driven by callbacks, not a task, so
an idle runtime costs nothing.

Failure isolation: if a batch of several records fails, each record is retried on its
own so that one bad record fails only its actor. Once a record of an actor failed, the
actor's later records (which build on the failed state) fail too, including those still
pending.

Each record is submitted with its `CommitListener` (the actor's `Journal`). The committer
calls it directly when the record is durable or failed, synchronously and before the
ticket resolves, so an actor advances (or rolls back) before anything awaiting the ticket
observes the outcome.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import operator
from bisect import bisect_left
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, Protocol

from .._util.tasks import TaskSupervisor
from ..errors import CommitError, DuplicateKeyError, PyrivetError
from ..storage._base import ActorStore, CommitRecord
from .metrics import RuntimeMetrics, perf_counter
from .tracing import Tracer, otel_error_status

__all__ = ["CommitListener", "CommitTicket", "Committer"]

log = logging.getLogger(__name__)

#: How many batches in a row `flush_owed` and `flush_if_last` may write inline (in the
#: caller's task) before the loop turns: then the next one is written by the flush
#: scheduled for the next iteration, so a task that commits in a tight loop (sequential
#: in-process strict calls never suspend when their commit is written inline) still lets
#: the loop poll for I/O and run its timers at least every few fsyncs.
MAX_INLINE_STREAK = 8


class CommitListener(Protocol):
    """Who hears the outcome of a submitted record (an actor's `Journal`).

    Both methods run on the event loop, before the record's ticket resolves. An
    exception they raise is logged; the ticket still resolves.
    """

    __slots__ = ()

    def committed(self, record: CommitRecord) -> None:
        """``record`` is durable."""
        ...

    def failed(self, record: CommitRecord, exc: BaseException) -> None:
        """``record`` was not written (nor any later record of the same actor)."""
        ...


class CommitTicket:
    """Resolves when one record is durable (or failed). Await it any number of times.

    Each awaiting task waits on a future of its own, so a cancelled waiter (a caller
    that gave up) never disturbs the ticket or other waiters.
    """

    __slots__ = ("_callbacks", "_done", "_error", "_waiters", "listener", "record")

    def __init__(self, listener: CommitListener, record: CommitRecord | None = None) -> None:
        self.listener = listener
        #: The record a committer's ticket stands for, until it is written or failed
        #: (the committer queues tickets, not ``(record, ticket)`` pairs: one tuple less
        #: per commit alive across a loop iteration); None for a journal's deferred one.
        self.record = record
        self._done = False
        self._error: BaseException | None = None
        self._waiters: list[asyncio.Future[None]] | None = None
        self._callbacks: list[Callable[[CommitTicket], None]] | None = None

    def done(self) -> bool:
        return self._done

    def exception(self) -> BaseException | None:
        """The failure, once done; None if it succeeded or is still pending."""
        return self._error

    def add_done_callback(self, fn: Callable[[CommitTicket], None]) -> None:
        """Call ``fn(ticket)`` when it resolves (at once if it has), before waiters wake."""
        if self._done:
            fn(self)
        elif self._callbacks is None:
            self._callbacks = [fn]
        else:
            self._callbacks.append(fn)

    def __await__(self) -> Generator[Any, None, None]:
        if not self._done:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            yield from waiter.__await__()
        if self._error is not None:
            raise self._error

    def resolve(self, error: BaseException | None = None) -> None:
        """Mark it durable (``error`` None) or failed; run its callbacks, wake its waiters.

        The committer resolves the tickets it issued; a journal resolves the tickets it
        hands out for checkpoints deferred during a hold (`Journal.hold`).
        """
        self._done = True
        self._error = error
        callbacks = self._callbacks
        if callbacks is not None:
            self._callbacks = None
            for fn in callbacks:
                try:
                    fn(self)
                except Exception:
                    log.exception("commit ticket callback failed")
        waiters = self._waiters
        if waiters is not None:
            self._waiters = None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)


class Committer:
    """Batches commit records of all actors into few storage transactions."""

    def __init__(
        self,
        store: ActorStore,
        *,
        max_batch: int = 512,
        metrics: RuntimeMetrics | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._store = store
        #: Batch counts, sizes and (once scraped) write times; see ``metrics.py``.
        self._metrics = metrics if metrics is not None else RuntimeMetrics()
        #: Makes a ``commit`` span per batch when tracing is on.
        self._tracer = tracer
        #: When the batch in flight was handed to storage (`perf_counter`; 0.0 untimed).
        self._started = 0.0
        #: The span of the batch in flight, if tracing.
        self._span: Any = None
        self._max_batch = max_batch
        #: Submitted tickets not handed to storage yet (each carries its record).
        self._pending: list[CommitTicket] = []
        self._busy = False
        #: Whether the pending records will be written at the start of the next
        #: event-loop iteration (the committer is idle and its flush is queued). An
        #: attribute, not a property: a strict action reads it once per call.
        self.flush_scheduled = False
        #: A ``lazy`` submit left the flush to `flush_owed`, not called yet.
        self._owed = False
        #: Batches written inline since the last flush the loop ran (see
        #: `MAX_INLINE_STREAK`).
        self._inline_streak = 0
        #: The handle of the scheduled flush (see `defer_flush`).
        self._kick_handle: asyncio.Handle | None = None
        #: The loop the flush was last scheduled on, and its queue of ready callbacks
        #: when it is an asyncio loop (see `flush_if_last`).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: deque[asyncio.Handle] | None = None
        self._idle: asyncio.Future[None] | None = None
        self._closed = False
        self._retry_task: asyncio.Task[None] | None = None
        #: Owns the one-by-one retry task (it logs a failure nobody awaits).
        self._tasks = TaskSupervisor("pyrivet committer")
        #: The batch being written (a strong reference keeps its task alive).
        self._in_flight: asyncio.Future[None] | None = None
        #: Called with each batch before it is written (the previous one is done); a
        #: future it returns is awaited first (the actor databases' files are committed
        #: and synced so, see ``actor_db.py``); a failure of it fails the batch like a
        #: failed write, and a mapping it results in names actors whose records fail
        #: (with the error mapped to) while the rest of the batch is written.
        self.barrier: Callable[[list[CommitRecord]], asyncio.Future[Any] | None] | None = None
        #: Counters for benchmarks and the inspector.
        self.batches = 0
        self.records = 0

    def submit(
        self, record: CommitRecord, listener: CommitListener, *, lazy: bool = False
    ) -> CommitTicket:
        """Queue ``record``; the ticket resolves once it is durable.

        ``listener`` hears the outcome first (see `CommitListener`).

        An idle committer writes at the start of the next event-loop iteration, so the
        records submitted in this one (an actor's creation and its first action, or the
        actions of many callers) share one transaction.

        ``lazy``: the caller calls `flush_owed` right after (a strict action or a
        workflow step about to wait for its commit), which writes at once or schedules
        the write as above; this spares the scheduled callback that `flush_if_last`
        would cancel (a ``call_soon`` handle made and cancelled per lone commit).

        The ticket fails with `CommitError` (or `DuplicateKeyError`) if the write failed.

        Raises:
            RuntimeError: the committer was closed.
        """
        if self._closed:
            raise RuntimeError("the runtime is closed; no more commits are accepted")
        ticket = CommitTicket(listener, record)
        self._pending.append(ticket)
        if not self._busy and not self.flush_scheduled:
            if lazy:
                self._owed = True
                return ticket
            self._schedule_flush(self.running_loop())
        return ticket

    def running_loop(self) -> asyncio.AbstractEventLoop:
        """The running event loop: the one the flush was last scheduled on while it
        runs, else `asyncio.get_running_loop` (a ``getpid`` system call per call in
        Python 3.11; a strict action asks up to three times). A committer serves one
        loop at a time; a loop that stopped or closed is asked for again.

        Raises:
            RuntimeError: no loop is running.
        """
        loop = self._loop
        if loop is not None and loop.is_running():
            return loop
        return asyncio.get_running_loop()

    def _schedule_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Queue the flush for the next event-loop iteration (the committer is idle)."""
        self.flush_scheduled = True
        self._kick_handle = loop.call_soon(self._kicked)
        self._follow(loop)

    def _follow(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember ``loop`` and its queue of ready callbacks, if it changed."""
        if self._loop is not loop:
            self._loop = loop
            self._ready = _ready_queue(loop)

    def _nothing_else_ready(self, flush: asyncio.Handle | None) -> bool:
        """Whether nothing but ``flush`` (None: nothing) and cancelled callbacks is
        queued to run in this event-loop iteration; False where the queue cannot be
        read (uvloop), and after `MAX_INLINE_STREAK` inline writes in a row."""
        ready = self._ready
        if ready is None or len(ready) > 4 or self._inline_streak >= MAX_INLINE_STREAK:
            return False
        # The flush, and at most a cancelled callback or two (a loop, not `all()` over a
        # generator: this runs once per strict action).
        for other in ready:
            if other is not flush and not other.cancelled():
                break
        else:
            return True
        return False

    def flush_if_last(self) -> bool:
        """Write the pending records now, if the flush is the last callback queued.

        For a task about to wait for its record (an output gate, a workflow step): when
        nothing but the flush is left to run in this event-loop iteration, nothing can
        join the batch before the flush would run (the next iteration runs it first,
        ahead of whatever I/O and timers bring). Writing now, in the caller's task, is
        then the same batch one loop iteration sooner: no ``select`` and no wake-up of
        the caller. Returns whether it flushed; the caller's ticket may still be
        pending (a batch handed to the writer thread) and is awaited as usual.

        Callbacks cancelled since they were queued do not count (an actor's deferred
        checkpoint, cancelled by the action's own, leaves one). Only on loops whose
        queue of ready callbacks can be read (asyncio's own: its ``_ready`` deque, read
        here, never changed); elsewhere (uvloop) always False.
        """
        handle = self._kick_handle
        if handle is None or not self._nothing_else_ready(handle):
            return False
        handle.cancel()
        self._inline_streak += 1
        self._kick()
        return True

    def flush_owed(self) -> bool:
        """After a ``lazy`` `submit`: write the pending records now if nothing else is
        queued to run in this event-loop iteration (see `flush_if_last`), else schedule
        the write for the next iteration as `submit` does. Returns whether it wrote;
        the caller's ticket may still be pending (a batch handed to the writer thread).
        """
        if not self._owed:
            return self.flush_scheduled and self.flush_if_last()
        self._owed = False
        if self._busy or not self._pending:
            return False  # the batch in flight's completion writes them
        if self.flush_scheduled:
            return self.flush_if_last()
        loop = self._loop  # `running_loop` and `_follow`, written out: once per action
        if loop is None or not loop.is_running():
            loop = asyncio.get_running_loop()
            self._follow(loop)
        if self._nothing_else_ready(None):
            self._inline_streak += 1
            self._flush()
            return True
        self._schedule_flush(loop)
        return False

    def defer_flush(self) -> None:
        """Move the flush scheduled for the next event-loop iteration behind the callbacks
        scheduled since (it stays in that iteration): what they submit shares its batch.

        A new workflow actor's run task is started after its creation commit was
        submitted; deferred so, its first step's commit goes in the creation's
        transaction (one write and one fsync less per workflow).
        """
        handle = self._kick_handle
        if self.flush_scheduled and handle is not None:
            handle.cancel()
            self._kick_handle = asyncio.get_running_loop().call_soon(self._kicked)

    def _kicked(self) -> None:
        """The scheduled flush, run by the loop: the loop turned since the last inline
        write, so the next may be inline again (see `MAX_INLINE_STREAK`)."""
        self._inline_streak = 0
        self._kick()

    def _kick(self) -> None:
        self.flush_scheduled = False
        self._kick_handle = None
        if not self._busy:
            self._flush()

    def settler(self) -> Awaitable[object] | None:
        """An awaitable while records are pending or being written, else None."""
        if not self._pending and not self._busy and not self.flush_scheduled:
            return None
        if self._idle is None or self._idle.done():
            self._idle = asyncio.get_running_loop().create_future()
        return asyncio.shield(self._idle)

    async def drain(self) -> None:
        """Wait until everything submitted so far is written (or failed)."""
        while (waiter := self.settler()) is not None:
            await waiter

    async def aclose(self) -> None:
        """Write what is pending, then refuse new records."""
        await self.drain()
        self._closed = True
        await self._tasks.aclose()

    # -- the write loop, driven by completion callbacks -----------------------------

    def _flush(self) -> None:
        """Write the pending records, one batch at a time, until none are left or a
        batch is in flight.

        A driver that wrote the batch inline returns a future that is already done: the
        batch is settled here, synchronously, which saves an event-loop round trip per
        batch; otherwise the batch's done callback settles it and calls `_flush` again.
        """
        while self._pending:
            self._busy = True
            if len(self._pending) <= self._max_batch:  # the usual case: no copy
                batch, self._pending = self._pending, []
            else:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
            barrier = self.barrier(_records(batch)) if self.barrier is not None else None
            if barrier is not None:
                # Files this batch depends on are being synced first (actor databases).
                self._in_flight = barrier
                barrier.add_done_callback(functools.partial(self._barrier_done, batch))
                return
            if not self._write(batch):
                return
        self._busy = False
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    def _barrier_done(self, batch: list[CommitTicket], synced: asyncio.Future[Any]) -> None:
        self._in_flight = None
        exc = synced.exception() if not synced.cancelled() else CommitError("sync cancelled")
        if exc is not None:
            self._batch_failed(batch, exc)
            return
        failed = synced.result()
        if failed:
            # Actors whose own files could not be written: their records fail, the
            # others are written.
            kept = []
            for ticket in batch:
                error = failed.get(_record(ticket).actor_id)
                if error is None:
                    kept.append(ticket)
                else:
                    self._fail(ticket, error)
            batch = kept
            if not batch:
                self._flush()
                return
        if self._write(batch):
            self._flush()

    def _write(self, batch: list[CommitTicket]) -> bool:
        """Hand ``batch`` to the store; True if it was settled at once (write inline)."""
        self._started = perf_counter() if self._metrics.timing else 0.0
        if self._tracer is not None:
            self._span = self._tracer.start("commit", {"pyrivet.commit.records": len(batch)})
        try:
            written = self._store.commit(_records(batch))
            if not (isinstance(written, asyncio.Future) and written.done()):
                # Owned here: `_batch_done` reads its outcome, failure included.
                self._in_flight = future = asyncio.ensure_future(written)
                future.add_done_callback(functools.partial(self._batch_done, batch))
                return False
        except Exception as exc:  # a driver that fails before returning an awaitable
            self._end_span(exc)
            self._metrics.commit_failures += 1
            self._batch_failed(batch, exc)
            return False
        # False: the failure path took over (and calls _flush when done).
        return self._settle(batch, written)

    def _batch_done(self, batch: list[CommitTicket], written: asyncio.Future[None]) -> None:
        self._in_flight = None
        if self._settle(batch, written):
            self._flush()

    def _settle(self, batch: list[CommitTicket], written: asyncio.Future[None]) -> bool:
        """Resolve the tickets of a written batch; False if it failed (see `_batch_failed`)."""
        exc = written.exception() if not written.cancelled() else CommitError("commit cancelled")
        if self._span is not None:
            self._end_span(exc)
        if exc is not None:
            self._metrics.commit_failures += 1
            self._batch_failed(batch, exc)
            return False
        metrics = self._metrics
        size = len(batch)
        if self._started:
            metrics.batch_written(size, self._started)
        else:  # `RuntimeMetrics.batch_written` untimed, written out: once per batch
            metrics.commit_batches += 1
            sizes = metrics.commit_sizes
            sizes.counts[bisect_left(sizes.bounds, size)] += 1
            sizes.total += size
        self.batches += 1
        self.records += size
        for ticket in batch:  # `_succeed` written out: once per record
            record = ticket.record
            assert record is not None
            ticket.record = None
            try:
                ticket.listener.committed(record)
            except Exception:
                log.exception("commit listener failed for actor %s", record.actor_id)
            ticket.resolve()
        return True

    def _end_span(self, exc: BaseException | None) -> None:
        span, self._span = self._span, None
        if span is not None:
            if exc is not None:
                span.record_exception(exc)
                span.set_status(otel_error_status())
            span.end()

    def _batch_failed(self, batch: list[CommitTicket], exc: BaseException) -> None:
        if len(batch) == 1:
            self._fail(batch[0], exc)
            self._flush()
            return
        log.warning("group commit of %d records failed (%s); retrying one by one", len(batch), exc)
        self._retry_task = self._tasks.spawn(
            self._write_one_by_one(batch), name="pyrivet-commit-retry"
        )

    async def _write_one_by_one(self, batch: Sequence[CommitTicket]) -> None:
        failed_actors: dict[str, BaseException] = {}
        try:
            for ticket in batch:
                record = _record(ticket)
                earlier = failed_actors.get(record.actor_id)
                if earlier is not None:
                    self._fail(ticket, earlier)
                    continue
                try:
                    await self._store.commit([record])
                except Exception as exc:
                    failed_actors[record.actor_id] = exc
                    self._fail(ticket, exc)
                else:
                    self.batches += 1
                    self.records += 1
                    self._succeed(ticket)
        finally:
            self._retry_task = None
            self._flush()

    def _succeed(self, ticket: CommitTicket) -> None:
        record = _record(ticket)
        ticket.record = None
        try:
            ticket.listener.committed(record)
        except Exception:
            log.exception("commit listener failed for actor %s", record.actor_id)
        ticket.resolve()

    def _fail(self, ticket: CommitTicket, exc: BaseException) -> None:
        actor_id = _record(ticket).actor_id
        error = _as_commit_error(exc)
        # Later records of this actor were built on the failed state: fail them too.
        doomed = [t for t in self._pending if _record(t).actor_id == actor_id]
        if doomed:
            self._pending = [t for t in self._pending if _record(t).actor_id != actor_id]
        for failed_ticket in [ticket, *doomed]:
            failed_record = _record(failed_ticket)
            failed_ticket.record = None
            try:
                failed_ticket.listener.failed(failed_record, error)
            except Exception:
                log.exception("commit failure listener failed for actor %s", actor_id)
            failed_ticket.resolve(error)


def _record(ticket: CommitTicket) -> CommitRecord:
    """The record of a ticket the committer queued (set until it is settled)."""
    record = ticket.record
    assert record is not None, "a committer's ticket carries its record until settled"
    return record


def _records(batch: list[CommitTicket]) -> list[CommitRecord]:
    """The records of queued tickets (each set until its ticket is settled)."""
    # `map` with an attrgetter: a list comprehension is a function call in Python 3.11,
    # and so is `typing.cast` (the attrgetter's Any needs none).
    records: list[CommitRecord] = list(map(_record_of, batch))
    return records


_record_of = operator.attrgetter("record")


def _ready_queue(loop: asyncio.AbstractEventLoop) -> deque[asyncio.Handle] | None:
    """asyncio's queue of the callbacks to run in the current and next iteration, or
    None for a loop without one (uvloop keeps it in C)."""
    ready = getattr(loop, "_ready", None)
    return ready if isinstance(ready, deque) else None


def _as_commit_error(exc: BaseException) -> PyrivetError:
    if isinstance(exc, CommitError | DuplicateKeyError):
        return exc
    log.error("commit failed: %s", exc, exc_info=exc)
    return CommitError(
        f"the change could not be saved ({exc}); it was rolled back and the actor "
        "keeps its last saved state. Retry once the storage problem is fixed."
    )
