"""Group commit: one committer per runtime batches every actor's writes.

Actors hand `CommitRecord`s to `Committer.submit` and get a future that resolves when
the record is durable. A single flush task takes everything pending (up to
``max_batch`` records) and writes it in one `ActorStore.commit` transaction. There is
no fixed delay: an idle committer writes a lone record at once, a busy one writes
whatever piled up during the previous write ("natural batching").

Failure isolation: if a batch of several records fails, each record is retried on its
own so that one bad record fails only its actor. Once a record of an actor failed, the
actor's later records (which build on the failed state) fail too, including those still
pending. Listeners are called synchronously, before the futures resolve, so an actor
rolls back before anything else observes the failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from ..errors import CommitError, DuplicateKeyError, PyrivetError
from ..storage._base import ActorStore, CommitRecord

__all__ = ["Committer"]

log = logging.getLogger(__name__)

CommittedListener = Callable[[CommitRecord], None]
FailedListener = Callable[[CommitRecord, BaseException], None]


class Committer:
    """Batches commit records of all actors into few storage transactions."""

    def __init__(
        self,
        store: ActorStore,
        *,
        on_committed: CommittedListener,
        on_failed: FailedListener,
        max_batch: int = 512,
    ) -> None:
        self._store = store
        self._on_committed = on_committed
        self._on_failed = on_failed
        self._max_batch = max_batch
        self._pending: list[tuple[CommitRecord, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._idle: asyncio.Future[None] | None = None
        self._busy = False
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        #: Counters for benchmarks and the inspector.
        self.batches = 0
        self.records = 0

    def start(self) -> None:
        """Start the flush task on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pyrivet-committer")

    def submit(self, record: CommitRecord) -> asyncio.Future[None]:
        """Queue ``record``; the future resolves once it is durable.

        The future fails with `CommitError` (or `DuplicateKeyError`) if the write failed.
        """
        if self._closed:
            raise RuntimeError("the runtime is closed; no more commits are accepted")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        self._wakeup.set()
        return future

    def settler(self) -> Awaitable[object] | None:
        """An awaitable while records are pending or being written, else None."""
        if not self._pending and not self._busy:
            return None
        if self._idle is None or self._idle.done():
            self._idle = asyncio.get_running_loop().create_future()
        return asyncio.shield(self._idle)

    async def drain(self) -> None:
        """Wait until everything submitted so far is written (or failed)."""
        while (waiter := self.settler()) is not None:
            await waiter

    async def aclose(self) -> None:
        """Write what is pending, then stop the flush task."""
        await self.drain()
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._idle is not None and not self._idle.done():
                    self._idle.set_result(None)
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            self._busy = True
            try:
                await self._write(batch)
            finally:
                self._busy = False

    async def _write(self, batch: list[tuple[CommitRecord, asyncio.Future[None]]]) -> None:
        try:
            await self._store.commit([record for record, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                self._fail(batch[0], exc)
            else:
                log.warning(
                    "group commit of %d records failed (%s); retrying one by one", len(batch), exc
                )
                await self._write_one_by_one(batch)
            return
        self.batches += 1
        self.records += len(batch)
        for item in batch:
            self._succeed(item)

    async def _write_one_by_one(
        self, batch: Sequence[tuple[CommitRecord, asyncio.Future[None]]]
    ) -> None:
        failed_actors: dict[str, BaseException] = {}
        for item in batch:
            record = item[0]
            earlier = failed_actors.get(record.actor_id)
            if earlier is not None:
                self._fail(item, earlier)
                continue
            try:
                await self._store.commit([record])
            except Exception as exc:
                failed_actors[record.actor_id] = exc
                self._fail(item, exc)
            else:
                self.batches += 1
                self.records += 1
                self._succeed(item)

    def _succeed(self, item: tuple[CommitRecord, asyncio.Future[None]]) -> None:
        record, future = item
        try:
            self._on_committed(record)
        except Exception:
            log.exception("commit listener failed for actor %s", record.actor_id)
        if not future.done():
            future.set_result(None)

    def _fail(self, item: tuple[CommitRecord, asyncio.Future[None]], exc: BaseException) -> None:
        record, future = item
        error = _as_commit_error(exc)
        # Later records of this actor were built on the failed state: fail them too.
        doomed = [p for p in self._pending if p[0].actor_id == record.actor_id]
        if doomed:
            self._pending = [p for p in self._pending if p[0].actor_id != record.actor_id]
        for failed_record, failed_future in [(record, future), *doomed]:
            try:
                self._on_failed(failed_record, error)
            except Exception:
                log.exception("commit failure listener failed for actor %s", record.actor_id)
            if not failed_future.done():
                failed_future.set_exception(error)
                # A failure nobody awaits (a relaxed-mode save) is already logged.
                failed_future.exception()


def _as_commit_error(exc: BaseException) -> PyrivetError:
    if isinstance(exc, CommitError | DuplicateKeyError):
        return exc
    log.error("commit failed: %s", exc, exc_info=exc)
    return CommitError(
        f"the change could not be saved ({exc}); it was rolled back and the actor "
        "keeps its last saved state. Retry once the storage problem is fixed."
    )
