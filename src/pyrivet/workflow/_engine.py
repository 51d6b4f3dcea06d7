"""Runs a workflow function against a host: `workflow` (the definition) and `WorkflowEngine`.

```python
@workflow
async def checkout(ctx):
    order = await ctx.step("load", lambda s: s.state["order"])
    await ctx.sleep("cool-off", 60)
    return await ctx.step("charge", charge)

engine = WorkflowEngine(checkout, host)
result = await engine.run()
```

`run` executes the function from the top; entries with recorded outcomes return them
without running again, so after a crash (or an eviction) a new engine over the same
stored history resumes where the last durable flush left off. The engine runs on one
event loop and does not start tasks of its own except the branches of ``join``/``race``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from .._codec import values
from ..errors import (
    EntryInProgressError,
    HistoryDivergedError,
    RollbackError,
    WorkflowCancelledError,
    WorkflowEvicted,
    WorkflowUsageError,
)
from ._context import WorkflowContext
from ._core import Core, ErrorObserver, error_text
from ._history import History, WorkflowHistory
from ._host import WorkflowHost
from ._records import EntryRecord, WorkflowState, describe_location, entry_key
from ._results import WorkflowErrorEvent

__all__ = ["Workflow", "WorkflowEngine", "workflow"]

S = TypeVar("S")
WorkflowFn = Callable[[WorkflowContext[Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Workflow:
    """A workflow definition: the function and its ``on_error`` observer.

    ``on_error(error_context, event)`` is called (not during replay) with a
    `StepErrorEvent` for each failed step attempt and a `WorkflowErrorEvent` when the
    workflow fails; it may be async; what it raises is logged and ignored.
    """

    fn: WorkflowFn
    on_error: ErrorObserver | None = None

    @property
    def __name__(self) -> str:
        return getattr(self.fn, "__name__", "workflow")

    def __call__(self, c: object) -> Any:
        """A workflow is not called directly: it is an actor's ``run`` handler (the
        runtime binds it: ``@my_actor.run`` over ``@workflow``) or runs in a
        `WorkflowEngine` over a host.

        Raises:
            WorkflowUsageError: always.
        """
        raise WorkflowUsageError(
            f"workflow {self.__name__!r} cannot be called directly: register it as an "
            "actor's run handler (`@my_actor.run` above `@workflow`) or run it with "
            "WorkflowEngine(workflow, host).run()"
        )


@overload
def workflow(fn: WorkflowFn, /) -> Workflow: ...
@overload
def workflow(*, on_error: ErrorObserver | None = None) -> Callable[[WorkflowFn], Workflow]: ...
def workflow(
    fn: WorkflowFn | None = None, /, *, on_error: ErrorObserver | None = None
) -> Workflow | Callable[[WorkflowFn], Workflow]:
    """Make ``async def fn(ctx)`` a durable workflow: ``@workflow`` or
    ``@workflow(on_error=observer)``."""

    def build(f: WorkflowFn) -> Workflow:
        if not callable(f):
            raise WorkflowUsageError(f"workflow() takes an async function of a context, got {f!r}")
        return Workflow(f, on_error)

    return build(fn) if fn is not None else build


class WorkflowEngine(Generic[S]):
    """One workflow over one host: run it, read its history, reset it.

    Not thread-safe; use from the host's event loop. One `run` at a time.
    """

    def __init__(self, definition: Workflow, host: WorkflowHost[S]) -> None:
        if not isinstance(definition, Workflow):
            raise WorkflowUsageError(
                f"WorkflowEngine takes a Workflow (from @workflow), got {definition!r}"
            )
        self._definition = definition
        self._host = host
        self._core: Core[S] | None = None
        self._task: asyncio.Task[Any] | None = None
        self._restart = False
        self._evict = False
        self._cancel = False
        self._reload = False

    @property
    def state(self) -> WorkflowState:
        """``pending`` until loaded; then the workflow's state."""
        return self._core.history.meta.state if self._core is not None else "pending"

    @property
    def step_in_progress(self) -> bool:
        """Whether a step body (or the flush completing it) is running now."""
        return self._core is not None and self._core.running_steps > 0

    async def load(self) -> None:
        """(Re)load the history from the host; `run` does it when needed."""
        records = await self._host.load()
        self._core = Core(self._host, History(records), self._definition.on_error)
        self._reload = False

    def unload(self) -> None:
        """Forget the loaded history; the next `run`, `history` caller or reset loads it
        again from the host. For a run that ended: an actor that stays awake after its
        workflow completed does not keep every entry in memory (and in the collector's
        heap) meanwhile.

        Raises:
            WorkflowUsageError: a run is in progress.
        """
        if self._task is not None:
            raise WorkflowUsageError("a running workflow cannot be unloaded")
        self._core = None

    def history(self) -> WorkflowHistory:
        """The workflow's state and entries (as in memory: may include unflushed ones)."""
        if self._core is None:
            raise WorkflowUsageError("call `await engine.load()` (or run) before history()")
        return self._core.history.view()

    async def run(self) -> Any:
        """Run (or resume) the workflow to its end; its output.

        A completed workflow returns its recorded output at once. Raises the failure
        that ended the workflow (recorded as ``failed``), `HistoryDivergedError` when
        the code no longer matches the history (nothing is written), `WorkflowEvicted`
        after `evict` or when the host unloads it during a wait, and whatever the
        host's flush raised.
        """
        if self._task is not None:
            raise WorkflowUsageError("this workflow is already running")
        task = asyncio.current_task()
        assert task is not None, "WorkflowEngine.run must run inside a task"
        self._task = task
        try:
            while True:
                # The load is inside: a replay or cancel may come while it waits (a woken
                # actor's run loading its history), and its request must not be lost.
                try:
                    core = await self._loaded_core()
                    meta = core.history.meta
                    if meta.state == "completed" and meta.output is not None:
                        return values.decode(meta.output)
                    if meta.state == "cancelled":
                        raise _cancelled()
                    return await self._run_once(core)
                except asyncio.CancelledError:
                    if self._restart:
                        self._restart = False
                        task.uncancel()
                        continue
                    if self._cancel:
                        self._cancel = False
                        task.uncancel()
                        raise _cancelled() from None
                    if self._evict:
                        self._evict = False
                        task.uncancel()
                        raise WorkflowEvicted() from None
                    raise
        finally:
            self._task = None
            if self._core is not None:
                self._core.evicting = False

    async def _run_once(self, core: Core[S]) -> Any:
        scope = core.begin_run()
        try:
            value = await self._definition.fn(WorkflowContext(core, scope))
            core.end_scope(scope)
            output = values.encode(value, "the workflow's output")
        except (HistoryDivergedError, EntryInProgressError, WorkflowUsageError):
            # The code does not fit the history: write nothing, reload on the next run.
            core.history.set_state("failed")
            self._reload = True
            raise
        except Exception as exc:
            if core.broken is not None:
                raise
            if isinstance(exc, RollbackError):
                await core.roll_back()
            core.history.meta.error = error_text(exc)
            core.history.set_state("failed")
            core.history.meta_dirty = True
            await core.flush()
            await core.report(WorkflowErrorEvent(exc))
            raise
        core.history.meta.output = output
        core.history.meta.error = None
        core.history.set_state("completed")
        core.history.meta_dirty = True
        await core.flush()
        return values.decode(output)

    def evict(self) -> None:
        """Stop the current run at its next await; it raises `WorkflowEvicted`.

        What was flushed stays; a later `run` (of this or a new engine) resumes. A step
        body in progress is interrupted too and runs again on the next run, so a host
        that saves its working state on shutdown must first wait until
        `step_in_progress` is False (else it would save half a step without its entry).
        """
        if self._task is not None and self._core is not None:
            self._core.evicting = True
            self._evict = True
            self._task.cancel()

    async def _loaded_core(self) -> Core[S]:
        """The core, (re)loaded from the host if there is none or it may be stale."""
        if self._core is None or self._core.broken is not None or self._reload:
            await self.load()
        assert self._core is not None
        return self._core

    async def _idle_core(self, what: str) -> Core[S]:
        """The loaded core, checking no step runs (the workflow is about to be ``what``)."""
        core = await self._loaded_core()
        if core.running_steps:
            raise EntryInProgressError(
                f"a step of this workflow is running, so it cannot be {what} now; retry "
                "once it finished"
            )
        return core

    async def cancel(self) -> None:
        """Cancel the workflow for good: record ``cancelled`` and stop a run in progress.

        The run raises `WorkflowCancelledError`, and so does every later `run` until
        `replay_from` resets the history.

        Raises:
            EntryInProgressError: a step is running; try again when it finished.
        """
        core = await self._idle_core("cancelled")
        core.history.set_state("cancelled")
        await core.flush()
        if self._task is not None:
            self._cancel = True
            self._task.cancel()

    async def replay_from(self, key: str | None = None) -> None:
        """Reset the history to before the entry ``key`` (None: to the beginning).

        Deletes that entry and every entry created after it, so the next run executes
        them again; the entries before it replay as recorded. A run in progress
        restarts from the top. ``key`` is an `EntryView.key` from `history`.

        Raises:
            EntryInProgressError: a step is running; try again when it finished.
            WorkflowUsageError: no entry has that key, or it lies in a loop iteration
                the loop has moved past (replay from the loop itself instead).
        """
        core = await self._idle_core("reset")
        history = core.history
        records = sorted(history.by_location.values(), key=lambda r: r.seq)
        cut = 0
        if key is not None:
            target = next((r for r in records if entry_key(r.location) == key), None)
            if target is None:
                raise WorkflowUsageError(
                    f"no workflow history entry has the key {key!r}; take keys from history()"
                )
            self._check_loops(target)
            cut = target.seq
            for depth in range(1, len(target.location)):
                enclosing = history.by_location.get(target.location[:depth])
                if enclosing is not None and enclosing.seq < cut:
                    _reopen(enclosing)
                    history.write(enclosing)
        for record in records:
            if record.seq >= cut:
                history.delete(record)
        history.meta.output = None
        history.meta.error = None
        history.set_state("pending")
        history.meta_dirty = True
        await core.flush()
        if self._task is not None:
            self._restart = True
            self._task.cancel()

    def _check_loops(self, target: EntryRecord) -> None:
        assert self._core is not None
        by_location = self._core.history.by_location
        location = target.location
        for depth in range(1, len(location)):
            loop = by_location.get(location[:depth])
            if loop is not None and loop.kind == "loop" and location[depth] != loop.iteration:
                raise WorkflowUsageError(
                    f"{describe_location(location)} is in iteration {location[depth]} of loop "
                    f"{describe_location(loop.location)}, which is at iteration "
                    f"{loop.iteration}: replay from the loop itself, or from an entry of its "
                    "current iteration"
                )


def _cancelled() -> WorkflowCancelledError:
    return WorkflowCancelledError(
        "this workflow was cancelled; reset its history with replay_from() to run it again"
    )


def _reopen(record: EntryRecord) -> None:
    """Make an enclosing loop, join, race or try run its body again on the next run."""
    record.status = "running" if record.kind == "loop" else "pending"
    record.output = None
    record.error = None
    record.error_kind = None
    record.errors = None
    record.winner = None
