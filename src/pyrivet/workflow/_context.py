"""The orchestration context a workflow function receives: `WorkflowContext`.

It records and replays entries (steps, loops, sleeps, queue waits, joins, races, try
blocks, checkpoints, version checks) and deliberately exposes no state and no side
effects: those belong to the step context the host passes to step callbacks, where a
replay skips them. Reaching for ``ctx.state`` (or ``vars``, ``kv``, ``broadcast``...)
here raises `WorkflowUsageError` saying so.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, NoReturn, TypedDict, TypeVar, Unpack, overload

from .._codec import values
from ..errors import (
    CriticalError,
    JoinError,
    RaceError,
    RollbackCheckpointError,
    RollbackError,
    StepFailedError,
    StepTimeoutError,
    WorkflowUsageError,
)
from ._core import DEFAULT_STEP_OPTIONS, Core, Scope, StepOptions, error_text, step_failure
from ._records import EntryKind, EntryRecord, describe_location
from ._results import Failure, FailureKind, LoopBreak, LoopContinue, Ok, RaceResult, WorkflowMessage

__all__ = ["StepKwargs", "WorkflowContext", "WorkflowQueue"]

S = TypeVar("S")
T = TypeVar("T")

_KINDS: frozenset[str] = frozenset(EntryKind.__args__)  # type: ignore[attr-defined]
_STEP_KINDS = ("critical", "timeout", "exhausted", "rollback")
_DEFAULT_TRY_CATCH = ("step", "join", "race")

Branch = Callable[["WorkflowContext[S]"], Awaitable[Any]]


class StepKwargs(TypedDict, total=False):
    """The keyword arguments of `WorkflowContext.step` (see there)."""

    rollback: Callable[[Any, Any], Any] | None
    ephemeral: bool
    max_retries: int
    retry_backoff_base: float
    retry_backoff_max: float
    timeout: float
    retry_on_timeout: bool


def _step_only(name: str) -> Any:
    def fail(self: object) -> NoReturn:
        raise WorkflowUsageError(
            f"ctx.{name} is only available inside workflow steps: the workflow function "
            f"is replayed after a restart, steps are not; use it in a step callback, e.g. "
            f"await ctx.step('name', lambda step: step.{name} ...)"
        )

    return property(fail)


def _failure_kind(exc: BaseException) -> tuple[str, FailureKind] | None:
    """(category for ``try_``'s catch, kind) of a failure ``try_`` may catch."""
    if isinstance(exc, RollbackError):
        return "rollback", "rollback"
    if isinstance(exc, CriticalError):
        return "step", "critical"
    if isinstance(exc, StepFailedError):
        return "step", "timeout" if isinstance(exc, StepTimeoutError) else "exhausted"
    if isinstance(exc, JoinError):
        return "join", "join"
    if isinstance(exc, RaceError):
        return "race", "race"
    return None


def _check_duration(what: str, seconds: float) -> None:
    if not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds < 0:
        raise WorkflowUsageError(f"{what} must be a finite number of seconds >= 0, got {seconds!r}")


def _check_branches(kind: str, name: str, branches: Mapping[str, Any]) -> None:
    if not branches:
        raise WorkflowUsageError(f"ctx.{kind}({name!r}) needs at least one branch")
    for branch, fn in branches.items():
        if type(branch) is not str or not branch or not callable(fn):
            raise WorkflowUsageError(
                f"ctx.{kind}({name!r}) takes a mapping of branch name (non-empty str) -> "
                f"async function of a context; got {branch!r}: {fn!r}"
            )


class WorkflowQueue(Generic[S]):
    """``ctx.queue``: waits for queue messages, recorded so a replay returns them again."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: WorkflowContext[S]) -> None:
        self._ctx = ctx

    async def next(
        self,
        name: str,
        *,
        names: Sequence[str] | None = None,
        timeout: float | None = None,
        completable: bool = False,
    ) -> WorkflowMessage | None:
        """The next message of queues ``names`` (all queues if None), or None at timeout.

        ``timeout`` is seconds from the first run (recorded, so a restart keeps the
        same deadline); None waits forever (the host may unload the workflow
        meanwhile). The message is recorded under ``name`` in history.
        """
        got = await self.next_batch(
            name, names=names, count=1, timeout=timeout, completable=completable
        )
        return got[0] if got else None

    async def next_batch(
        self,
        name: str,
        *,
        names: Sequence[str] | None = None,
        count: int = 1,
        timeout: float | None = None,
        completable: bool = False,
    ) -> list[WorkflowMessage]:
        """Up to ``count`` messages, as soon as one is there; [] at timeout."""
        ctx = self._ctx
        core = ctx._core
        location, record = core.enter(ctx._scope, name, "message")
        if record is None:
            if type(count) is not int or count < 1:
                raise WorkflowUsageError(f"queue wait {name!r}: count must be an int >= 1")
            if timeout is not None:
                _check_duration(f"queue wait {name!r}: timeout", timeout)
            record = core.create(ctx._scope, "message", location)
            if timeout is not None:
                record.deadline = core.clock.now() + timeout
                core.history.write(record)
        if record.status != "completed":
            core.history.set_state("sleeping")
            await core.flush(ctx._scope.shielded)
            wanted = list(names) if names is not None else None
            messages = await core.host.receive(wanted, count, record.deadline, completable)
            core.history.set_state("running")
            record.output = values.encode(
                [[m.id, m.name, m.body, m.created_at] for m in messages],
                f"the messages received by {name!r}",
            )
            record.status = "completed"
            core.history.write(record)
            await core.flush(ctx._scope.shielded)
        assert record.output is not None
        complete = core.host.complete_message
        return [
            WorkflowMessage(int(i), str(n), body, float(at), complete)
            for i, n, body, at in values.decode(record.output)
        ]

    def send(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise WorkflowUsageError(
            "ctx.queue.send is only available inside workflow steps: sending is a side "
            "effect, and the workflow function is replayed after a restart"
        )


class WorkflowContext(Generic[S]):
    """What a workflow function (and each loop body, branch, try block) receives.

    Every method takes a ``name`` first: the entry's name, unique within its scope and
    stable across deploys, under which its outcome is recorded. ``S`` is the type of the
    step context the host passes to step callbacks.
    """

    __slots__ = ("_core", "_scope")

    def __init__(self, core: Core[S], scope: Scope) -> None:
        self._core = core
        self._scope = scope

    @property
    def queue(self) -> WorkflowQueue[S]:
        """Waits for queue messages (see `WorkflowQueue`)."""
        # Made on use, not kept: a context holding its queue, which holds the context,
        # is a reference cycle per workflow run, loop iteration and branch, left to
        # the garbage collector.
        return WorkflowQueue(self)

    state = _step_only("state")
    vars = _step_only("vars")
    db = _step_only("db")
    kv = _step_only("kv")
    client = _step_only("client")
    broadcast = _step_only("broadcast")
    schedule = _step_only("schedule")
    keep_awake = _step_only("keep_awake")
    wait_until = _step_only("wait_until")
    destroy = _step_only("destroy")

    def _child(self, scope: Scope) -> WorkflowContext[S]:
        return WorkflowContext(self._core, scope)

    # -- steps -------------------------------------------------------------------------

    @overload
    async def step(
        self, name: str, run: Callable[[S], Awaitable[T]], **options: Unpack[StepKwargs]
    ) -> T: ...
    @overload
    async def step(self, name: str, run: Callable[[S], T], **options: Unpack[StepKwargs]) -> T: ...
    async def step(
        self,
        name: str,
        run: Callable[[S], Any],
        *,
        rollback: Callable[[Any, Any], Any] | None = None,
        ephemeral: bool = False,
        max_retries: int = 3,
        retry_backoff_base: float = 0.1,
        retry_backoff_max: float = 30.0,
        timeout: float = 30.0,
        retry_on_timeout: bool = False,
    ) -> Any:
        """Run ``run(step_context)`` once, durably; a replay returns its recorded output.

        The output is stored (it must be encodable: plain data, dataclass, Struct) and
        what the step returns is its stored form (plain data), the same on every run.
        A failed attempt is retried ``max_retries`` times, waiting
        ``min(retry_backoff_max, retry_backoff_base * 2**attempts)`` seconds after
        failed attempt number ``attempts``, then the step raises `StepExhaustedError`.
        `CriticalError` fails it at once; `RollbackError` fails it and rolls back. A
        ``timeout`` (seconds, 0 = none) fails it with `StepTimeoutError` (retried only
        with ``retry_on_timeout``). ``rollback(step_context, output)`` undoes the step
        when a later step raises `RollbackError` (needs a `rollback_checkpoint` first).
        ``ephemeral`` defers the write of its result to the next flush (cheaper; a crash
        before then runs the step again).
        """
        core = self._core
        location, record = core.enter(self._scope, name, "step")
        if record is not None:
            if record.status == "completed":
                if rollback is not None:
                    core.rollbacks.append((record, rollback))
                assert record.output is not None
                return values.decode(record.output)
            if record.error_kind is not None:
                raise step_failure(record)
        if (
            max_retries == 3
            and retry_backoff_base == 0.1
            and retry_backoff_max == 30.0
            and timeout == 30.0
            and not retry_on_timeout
            and not ephemeral
        ):
            options = DEFAULT_STEP_OPTIONS
        else:
            options = StepOptions(
                max_retries,
                retry_backoff_base,
                retry_backoff_max,
                timeout,
                retry_on_timeout,
                ephemeral,
            )
            options.check(name)
        if rollback is not None and not core.checkpoint:
            raise RollbackCheckpointError(
                f"step {describe_location(location)} has a rollback but no "
                "ctx.rollback_checkpoint(...) ran before it in this workflow; add one "
                "before the first step that can be rolled back"
            )
        scope = self._scope
        if record is None:
            # `Core.create`, written out: once per step.
            scope.seen += 1
            record = core.history.new_entry("step", location)
        return await core.run_step(record, run, options, rollback, scope.shielded)

    @overload
    async def try_step(
        self,
        name: str,
        run: Callable[[S], Awaitable[T]],
        *,
        catch: Iterable[str] = ...,
        **options: Unpack[StepKwargs],
    ) -> Ok[T] | Failure: ...
    @overload
    async def try_step(
        self,
        name: str,
        run: Callable[[S], T],
        *,
        catch: Iterable[str] = ...,
        **options: Unpack[StepKwargs],
    ) -> Ok[T] | Failure: ...
    async def try_step(
        self,
        name: str,
        run: Callable[[S], Any],
        *,
        catch: Iterable[str] = ("critical", "timeout", "exhausted"),
        **options: Unpack[StepKwargs],
    ) -> Ok[Any] | Failure:
        """`step`, but a failure of a kind in ``catch`` is returned as `Failure`.

        Kinds: ``critical``, ``timeout``, ``exhausted``, ``rollback``. Other failures
        raise as from `step`. ``options`` are `step`'s keyword arguments.
        """
        kinds = frozenset(catch)
        unknown = kinds - set(_STEP_KINDS)
        if unknown:
            raise WorkflowUsageError(
                f"try_step {name!r}: unknown catch kinds {sorted(unknown)}; use {_STEP_KINDS}"
            )
        try:
            value = await self.step(name, run, **options)
        except (CriticalError, RollbackError, StepFailedError) as exc:
            found = _failure_kind(exc)
            assert found is not None
            if found[1] not in kinds:
                raise
            record = self._core.history.by_location[(*self._scope.path, name)]
            return Failure(found[1], name, record.attempts, record.error or error_text(exc))
        return Ok(value)

    async def try_(
        self,
        name: str,
        block: Callable[[WorkflowContext[S]], Awaitable[T]],
        *,
        catch: Iterable[str] = _DEFAULT_TRY_CATCH,
    ) -> Ok[T] | Failure:
        """Run ``block(ctx)`` in its own scope; a failure in ``catch`` becomes `Failure`.

        Categories: ``step`` (a step failed: critical, timeout, exhausted), ``join``,
        ``race``, ``rollback`` (a step raised `RollbackError`; caught, nothing is rolled
        back). The outcome is recorded, so a replay returns it without running ``block``.
        """
        categories = frozenset(catch)
        unknown = categories - {"step", "join", "race", "rollback"}
        if unknown:
            raise WorkflowUsageError(
                f"try_ {name!r}: unknown catch categories {sorted(unknown)}; use "
                "'step', 'join', 'race', 'rollback'"
            )
        core = self._core
        location, record = core.enter(self._scope, name, "try")
        if record is not None:
            if record.status == "completed":
                assert record.output is not None
                return Ok(values.decode(record.output))
            if record.error_kind is not None:
                return Failure(
                    record.error_kind,  # type: ignore[arg-type]
                    record.winner or name,
                    record.attempts,
                    record.error or "",
                )
        else:
            record = core.create(self._scope, "try", location)
        scope = Scope(location, self._scope.shielded)
        try:
            value = await block(self._child(scope))
            core.end_scope(scope)
        except (CriticalError, RollbackError, StepFailedError, JoinError, RaceError) as exc:
            found = _failure_kind(exc)
            assert found is not None
            category, kind = found
            if category not in categories:
                raise
            step = getattr(exc, "step", None) or name
            attempts = getattr(exc, "attempts", 0)
            record.status = "failed"
            record.error_kind = kind
            record.error = error_text(exc)
            record.winner = step
            record.attempts = attempts
            core.history.write(record)
            return Failure(kind, step, attempts, record.error)
        record.status = "completed"
        record.output = values.encode(value, f"the result of try block {name!r}")
        core.history.write(record)
        return Ok(values.decode(record.output))

    # -- loops and time ----------------------------------------------------------------

    async def loop(
        self,
        name: str,
        run: Callable[
            [WorkflowContext[S], Any], Awaitable[LoopBreak[T] | LoopContinue[Any] | None]
        ],
        *,
        state: Any = None,
        history_prune_interval: int = 20,
        history_size: int | None = None,
    ) -> T:
        """Run ``run(ctx, state)`` until it returns ``Loop.break_(value)``; return value.

        ``Loop.continue_(new_state)`` (or None: same state) runs another iteration. The
        loop's iteration and state are recorded, so a restart resumes at the iteration
        it was in, with its state; completed iterations never run again. Every
        ``history_prune_interval`` iterations the entries of iterations older than the
        last ``history_size`` (default: the interval) are deleted.
        """
        core = self._core
        location, record = core.enter(self._scope, name, "loop")
        if record is None:
            if type(history_prune_interval) is not int or history_prune_interval < 1:
                raise WorkflowUsageError(f"loop {name!r}: history_prune_interval must be >= 1")
            if history_size is not None and (type(history_size) is not int or history_size < 1):
                raise WorkflowUsageError(f"loop {name!r}: history_size must be >= 1 or None")
            record = core.create(self._scope, "loop", location)
            record.status = "running"
            record.state = values.encode(state, f"the state of loop {name!r}")
            core.history.write(record)
        elif record.status == "completed":
            assert record.output is not None
            return values.decode(record.output)  # type: ignore[no-any-return]
        keep = history_size if history_size is not None else history_prune_interval
        iteration = record.iteration
        current = values.decode(record.state) if record.state is not None else None
        while True:
            scope = Scope((*location, iteration), self._scope.shielded)
            result = await run(self._child(scope), current)
            core.end_scope(scope)
            if isinstance(result, LoopBreak):
                record.status = "completed"
                record.output = values.encode(result.value, f"the result of loop {name!r}")
                core.history.write(record)
                return values.decode(record.output)  # type: ignore[no-any-return]
            if isinstance(result, LoopContinue):
                current = result.state
            elif result is not None:
                raise WorkflowUsageError(
                    f"loop {name!r}: the body returned {result!r}; return "
                    "Loop.break_(value), Loop.continue_(state) or None"
                )
            iteration += 1
            record.iteration = iteration
            record.state = values.encode(current, f"the state of loop {name!r}")
            # What a replay would see: the stored form of the state.
            current = values.decode(record.state)
            core.history.write(record)
            if iteration % history_prune_interval == 0:
                self._prune(record, iteration - keep)

    def _prune(self, loop: EntryRecord, before: int) -> None:
        depth = len(loop.location)
        history = self._core.history
        for entry in history.descendants(loop.location):
            index = entry.location[depth]
            if isinstance(index, int) and index < before:
                history.delete(entry)

    async def sleep(self, name: str, seconds: float) -> None:
        """Wait ``seconds`` from the first time this runs (the deadline is recorded)."""
        _check_duration(f"sleep {name!r}", seconds)
        await self._sleep(name, seconds, None)

    async def sleep_until(self, name: str, timestamp: float) -> None:
        """Wait until ``timestamp`` (epoch seconds of the host's clock)."""
        if not isinstance(timestamp, int | float) or not math.isfinite(timestamp):
            raise WorkflowUsageError(f"sleep_until {name!r}: timestamp must be epoch seconds")
        await self._sleep(name, None, float(timestamp))

    async def _sleep(self, name: str, seconds: float | None, until: float | None) -> None:
        core = self._core
        location, record = core.enter(self._scope, name, "sleep")
        if record is None:
            record = core.create(self._scope, "sleep", location)
            record.deadline = until if until is not None else core.clock.now() + (seconds or 0.0)
            core.history.write(record)
        if record.status != "completed":
            assert record.deadline is not None
            await core.wait_until(record.deadline, self._scope.shielded)
            record.status = "completed"
            core.history.write(record)

    # -- concurrency -------------------------------------------------------------------

    async def join(self, name: str, branches: Mapping[str, Branch[S]]) -> dict[str, Any]:
        """Run every branch concurrently; their results by branch name.

        Each branch gets its own scope. If any branch fails, the others still finish
        and `JoinError` lists each failure (recorded: a replay raises it again).
        """
        core = self._core
        location, record = core.enter(self._scope, name, "join")
        if record is not None:
            if record.status == "completed":
                assert record.output is not None
                return values.decode(record.output)  # type: ignore[no-any-return]
            if record.error_kind == "join":
                raise _join_error(record)
        else:
            _check_branches("join", name, branches)
            record = core.create(self._scope, "join", location)
        results: dict[str, Any] = {}
        errors: dict[str, str] = {}
        fatal: list[BaseException] = []

        async def run_branch(branch: str, fn: Branch[S]) -> None:
            scope = Scope((*location, branch), self._scope.shielded)
            try:
                results[branch] = await fn(self._child(scope))
                core.end_scope(scope)
            except (CriticalError, RollbackError, StepFailedError, JoinError, RaceError) as exc:
                errors[branch] = error_text(exc)
            except Exception as exc:
                # Divergence, misuse, a failed flush: not a branch failure to aggregate.
                fatal.append(exc)
                raise

        try:
            async with asyncio.TaskGroup() as group:
                for branch, fn in branches.items():
                    group.create_task(run_branch(branch, fn))
        except BaseExceptionGroup as group:
            raise _first_error(group, fatal) from None
        if errors:
            await self._record_branch_failures(record, "join", errors)
            raise _join_error(record)
        record.status = "completed"
        record.output = values.encode(
            {b: results[b] for b in branches}, f"the results of join {name!r}"
        )
        core.history.write(record)
        return values.decode(record.output)  # type: ignore[no-any-return]

    async def race(self, name: str, branches: Mapping[str, Branch[S]]) -> RaceResult[Any]:
        """Run the branches concurrently; the first to finish wins, the rest are cancelled.

        The winner and its value are recorded (and flushed at once), so a replay
        returns the same winner. `RaceError` if every branch fails.
        """
        core = self._core
        location, record = core.enter(self._scope, name, "race")
        if record is not None:
            if record.status == "completed" and record.winner is not None:
                assert record.output is not None
                return RaceResult(record.winner, values.decode(record.output))
            if record.error_kind == "race":
                raise _race_error(record)
        else:
            _check_branches("race", name, branches)
            record = core.create(self._scope, "race", location)
        errors: dict[str, str] = {}
        fatal: list[BaseException] = []
        won: list[tuple[str, Any]] = []
        tasks: dict[str, asyncio.Task[None]] = {}

        async def run_branch(branch: str, fn: Branch[S]) -> None:
            scope = Scope((*location, branch), shielded=True)
            try:
                value = await fn(self._child(scope))
            except (CriticalError, RollbackError, StepFailedError, JoinError, RaceError) as exc:
                errors[branch] = error_text(exc)
                return
            except Exception as exc:
                fatal.append(exc)
                raise
            if won:
                return
            won.append((branch, value))
            for other, task in tasks.items():
                if other != branch:
                    task.cancel()

        try:
            async with asyncio.TaskGroup() as group:
                for branch, fn in branches.items():
                    tasks[branch] = group.create_task(run_branch(branch, fn))
        except BaseExceptionGroup as group:
            raise _first_error(group, fatal) from None
        if not won:
            await self._record_branch_failures(record, "race", errors)
            raise _race_error(record)
        winner, value = won[0]
        record.status = "completed"
        record.winner = winner
        record.output = values.encode(value, f"the result of race {name!r}")
        core.history.write(record)
        await core.flush(self._scope.shielded)
        return RaceResult(winner, values.decode(record.output))

    async def _record_branch_failures(
        self, record: EntryRecord, kind: str, errors: dict[str, str]
    ) -> None:
        """Record that a join or race failed for good (a replay raises it again)."""
        record.status = "failed"
        record.error_kind = kind
        record.errors = errors
        record.error = "; ".join(f"{b}: {e}" for b, e in errors.items())
        self._core.history.write(record)
        await self._core.flush(self._scope.shielded)

    # -- rollback and versions ---------------------------------------------------------

    async def rollback_checkpoint(self, name: str) -> None:
        """Mark where a rollback stops; steps after it may have ``rollback=`` callbacks."""
        core = self._core
        location, record = core.enter(self._scope, name, "rollback_checkpoint")
        if record is None:
            record = core.create(self._scope, "rollback_checkpoint", location)
            record.status = "completed"
            core.history.write(record)
        core.checkpoint = True
        core.rollbacks = []

    async def removed(self, name: str, kind: str) -> None:
        """Stand in for an entry the code no longer runs, so its history still matches.

        ``kind`` is what it was: ``step``, ``loop``, ``sleep``, ``message``, ``join``,
        ``race``, ``try``, ``rollback_checkpoint`` or ``version_check``. Does nothing
        for workflows that never recorded it.
        """
        if kind not in _KINDS:
            raise WorkflowUsageError(
                f"ctx.removed({name!r}, {kind!r}): kind must be one of {sorted(_KINDS)}"
            )
        self._core.enter(self._scope, name, kind, check_order=False)  # type: ignore[arg-type]

    async def get_version(self, name: str, latest: int) -> int:
        """The code version this point of the workflow runs, pinned in history.

        A workflow reaching this point for the first time gets ``latest``; one whose
        history already went past this point (started under older code, which had no
        check here) gets 1. Branch on it to change code under running workflows.
        """
        if type(latest) is not int or latest < 1:
            raise WorkflowUsageError(f"get_version {name!r}: latest must be an int >= 1")
        core = self._core
        location, record = core.enter(self._scope, name, "version_check", check_order=False)
        if record is not None:
            assert record.version is not None
            return record.version
        older = core.unvisited(self._scope) is not None
        record = core.create(self._scope, "version_check", location)
        record.version = 1 if older else latest
        record.status = "completed"
        core.history.write(record)
        return record.version

    def is_evicted(self) -> bool:
        """Whether the host asked this run to stop (it ends at its next wait)."""
        return self._core.evicting


def _first_error(
    group: BaseExceptionGroup[BaseException], fatal: list[BaseException]
) -> BaseException:
    """What a failed group of branches raises, unwrapped: a control-flow exception
    (`WorkflowEvicted`, a crash of the host) first, then the first fatal error."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    for leaf in leaves:
        if not isinstance(leaf, Exception):
            return leaf
    return fatal[0] if fatal else leaves[0]


def _join_error(record: EntryRecord) -> JoinError:
    return JoinError(
        f"join {describe_location(record.location)} failed: {record.error}",
        errors=dict(record.errors or {}),
    )


def _race_error(record: EntryRecord) -> RaceError:
    return RaceError(
        f"every branch of race {describe_location(record.location)} failed: {record.error}",
        errors=dict(record.errors or {}),
    )
