"""The state one engine shares between its contexts: history, host, steps in flight.

`Core` is what every `WorkflowContext` of a run talks to. It checks each entry against
the history (`enter`), runs step attempts with retries and timeouts (`run_step`),
flushes writes through the host (`flush`), waits durably (`wait_until`) and reports
failures to ``on_error``. It runs on the engine's event loop only.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .._codec import values
from .._util.timeouts import run_with_timeout
from ..errors import (
    CriticalError,
    EncodingError,
    HistoryDivergedError,
    RollbackError,
    StepExhaustedError,
    StepTimeoutError,
    WorkflowError,
    WorkflowUsageError,
)
from ._history import History
from ._host import StepInfo, WorkflowHost, Writes
from ._records import EntryKind, EntryRecord, Location, describe_location
from ._results import StepErrorEvent, WorkflowErrorEvent

__all__ = ["Core", "ErrorObserver", "Scope", "StepOptions", "error_text", "step_failure"]

S = TypeVar("S")
log = logging.getLogger(__name__)

#: ``on_error(error_context, event)``: may be async; its exceptions are logged and ignored.
ErrorObserver = Callable[[Any, StepErrorEvent | WorkflowErrorEvent], Awaitable[None] | None]

#: Result types of a synchronous step body, told apart without `inspect.isawaitable`
#: (which tries the `Awaitable` ABC: about as costly as the rest of the attempt's checks).
_NEVER_AWAITABLE = frozenset({int, str, float, bool, bytes, dict, list, tuple, type(None)})
#: Step output types that decoding their stored form gives back equal and immutable:
#: such a step returns its own result (no decode of what it just encoded).
_ROUND_TRIP = frozenset({int, str, float, bool, type(None)})

#: Makes a `StepInfo` from a tuple of its fields without the named tuple's Python-level
#: ``__new__`` (a frame per step attempt).
_new_step_info = tuple.__new__

# Set while a step body runs, so orchestration calls made from inside a step fail
# clearly (a context variable: concurrent join branches each have their own).
_in_step: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pyrivet_workflow_in_step", default=None
)


def _failure_kind(exc: Exception, elapsed: float, options: StepOptions) -> str | None:
    """The terminal kind of a failed attempt's error (None: it may be retried), its body
    having run ``elapsed`` seconds."""
    if isinstance(exc, CriticalError):
        return "critical"
    if isinstance(exc, RollbackError):
        return "rollback"
    if isinstance(exc, TimeoutError):
        # Ours only if the deadline passed; a TimeoutError of the step's own is an error.
        timeout = options.timeout
        ours = bool(timeout) and elapsed >= timeout
        return "timeout" if ours and not options.retry_on_timeout else None
    if isinstance(exc, EncodingError):
        return "critical"
    return None


async def _flush_and_wait(host: WorkflowHost[Any], writes: Writes) -> None:
    """``host.flush(writes)`` as one coroutine (for a task of its own)."""
    waiting = host.flush(writes)
    if waiting is not None:
        await waiting


class StepTurn:
    """Whose turn it is to run a step body (or a flush): one at a time per workflow.

    An `asyncio.Lock` without its costs on the path every step takes: taking a free
    turn is a plain attribute test and set (no coroutine), and giving it back with
    nobody waiting is a deque test. Only join and race branches ever wait; a turn given
    back is handed straight to the first waiter (``busy`` stays True), so a branch that
    was not waiting cannot overtake it. Runs on the engine's event loop only.
    """

    __slots__ = ("busy", "waiters")

    def __init__(self) -> None:
        self.busy = False
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def wait(self) -> None:
        """Wait for the turn (``busy`` was True); it is ours when this returns.

        Raises:
            asyncio.CancelledError: cancelled while waiting; a turn handed to us at that
                moment is passed on, so it is never lost.
        """
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give_back()  # handed to us as we were cancelled: pass it on
            elif waiter in self.waiters:  # `give_back` may have dropped it already
                self.waiters.remove(waiter)
            raise

    def give_back(self) -> None:
        """End our turn: hand it to the first live waiter, else free it."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.busy = False


@dataclass(slots=True)
class Scope:
    """One level of names: the workflow's top, a loop iteration, a branch, a try block.

    ``seen`` counts the names used here that the history holds, so that a recorded
    entry the code skipped is noticed without scanning the history at every entry.
    """

    path: Location
    shielded: bool = False
    names: set[str] = field(default_factory=set)
    seen: int = 0


@dataclass(frozen=True, slots=True)
class StepOptions:
    """How one step runs; see ``WorkflowContext.step`` for each field."""

    max_retries: int = 3
    retry_backoff_base: float = 0.1
    retry_backoff_max: float = 30.0
    timeout: float = 30.0
    retry_on_timeout: bool = False
    ephemeral: bool = False

    def check(self, name: str) -> None:
        if self.max_retries < 0:
            raise WorkflowUsageError(f"step {name!r}: max_retries must be >= 0")
        if self.retry_backoff_base < 0 or self.retry_backoff_max < self.retry_backoff_base:
            raise WorkflowUsageError(
                f"step {name!r}: need 0 <= retry_backoff_base <= retry_backoff_max (seconds)"
            )
        if self.timeout < 0:
            raise WorkflowUsageError(f"step {name!r}: timeout must be >= 0 seconds (0 = none)")

    def backoff(self, attempts: int) -> float:
        """Seconds from the end of failed attempt number ``attempts`` to the next one."""
        # Deterministic (no jitter), so a restarted run waits until the same instant.
        return min(self.retry_backoff_max, self.retry_backoff_base * float(1 << min(attempts, 64)))


DEFAULT_STEP_OPTIONS = StepOptions()


def error_text(exc: BaseException) -> str:
    """An exception as stored in history: ``"ValueError: bad input"``."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def step_failure(record: EntryRecord) -> WorkflowError:
    """The exception a step that failed for good raises (the same live and on replay)."""
    name, attempts, error = record.name, record.attempts, record.error or ""
    where = describe_location(record.location)
    kind = record.error_kind
    if kind == "critical":
        return CriticalError(
            f"workflow step {where} failed with a critical error: {error}",
            step=name,
            attempts=attempts,
        )
    if kind == "rollback":
        return RollbackError(
            f"workflow step {where} asked for a rollback: {error}", step=name, attempts=attempts
        )
    if kind == "timeout":
        return StepTimeoutError(
            f"workflow step {where} timed out (attempt {attempts}); raise its timeout= "
            "or pass retry_on_timeout=True",
            step=name,
            attempts=attempts,
            error=error,
        )
    return StepExhaustedError(
        f"workflow step {where} failed {attempts} times, the last with {error}; fix the "
        "cause, then replay the workflow from this step",
        step=name,
        attempts=attempts,
        error=error,
    )


class Core(Generic[S]):
    """Everything the contexts of one engine share; see the module docstring."""

    def __init__(
        self, host: WorkflowHost[S], history: History, on_error: ErrorObserver | None
    ) -> None:
        self.host = host
        self.clock = host.clock
        self.history = history
        self.on_error = on_error
        #: Steps whose body or completing flush is in flight.
        self.running_steps = 0
        #: One step body, or one flush, at a time (see `run_step`).
        self.turn = StepTurn()
        #: Set when a flush failed: the history in memory may differ from storage.
        self.broken: BaseException | None = None
        #: Completed steps with a rollback callback since the last checkpoint, in order.
        self.rollbacks: list[tuple[EntryRecord, Callable[[S, Any], Any]]] = []
        self.checkpoint = False
        #: Set by `WorkflowEngine.evict`: the run stops at its next wait.
        self.evicting = False
        self._shielded_flushes: set[asyncio.Task[None]] = set()

    def begin_run(self) -> Scope:
        """Reset per-run bookkeeping; the scope of the workflow's top."""
        self.rollbacks = []
        self.checkpoint = False
        self.history.set_state("running")
        return Scope(())

    # -- names and divergence ------------------------------------------------------------

    def claim(self, scope: Scope, name: str, kind: str) -> Location:
        """Reserve ``name`` in ``scope``; the location of the entry."""
        if self.broken is not None:
            raise WorkflowError(
                "this workflow run cannot continue: writing its history failed "
                f"({error_text(self.broken)}); run the workflow again to resume from storage"
            )
        if _in_step.get() is not None:
            raise WorkflowUsageError(
                f"ctx.{kind} ({name!r}) was called inside step {_in_step.get()!r}: workflow "
                "operations run in the workflow function, not inside step callbacks"
            )
        if type(name) is not str or not name:
            raise WorkflowUsageError(f"workflow entry names are non-empty strings, got {name!r}")
        if name in scope.names:
            raise WorkflowUsageError(
                f"the name {name!r} is used twice in {describe_location(scope.path)}: entry "
                "names must be unique within a scope (use ctx.loop for repeated work)"
            )
        scope.names.add(name)
        return (*scope.path, name)

    def enter(
        self, scope: Scope, name: str, kind: EntryKind, *, check_order: bool = True
    ) -> tuple[Location, EntryRecord | None]:
        """Claim ``name`` and find its recorded entry, checking the code matches history.

        Raises:
            HistoryDivergedError: the entry recorded here has another kind, or (with
                ``check_order``) the history recorded an entry here that the code has
                not reached, while the code starts a new one.
        """
        names = scope.names
        if (
            self.broken is not None
            or type(name) is not str
            or not name
            or name in names
            or _in_step.get() is not None
        ):
            self.claim(scope, name, kind)  # raises the error that applies
        # `claim`, written out for a name that passes its checks: once per entry.
        names.add(name)
        location = (*scope.path, name)
        history = self.history
        record = history.by_location.get(location)
        if record is not None:
            if record.kind != kind:
                raise HistoryDivergedError(
                    f"workflow history diverged at {describe_location(location)}: the "
                    f"history recorded a {record.kind} named {name!r} there, the code now "
                    f"runs a {kind}; deploy code that matches, or replay the workflow from "
                    "an earlier step",
                    entry=name,
                )
            scope.seen += 1
            return location, record
        if check_order:
            # `unvisited`'s first test inline: a scope whose recorded entries the code
            # all reached (a fresh run: all of them) has nothing to look for.
            siblings = history.by_parent.get(scope.path)
            missing = None if not siblings or scope.seen >= len(siblings) else self.unvisited(scope)
            if missing is not None:
                raise HistoryDivergedError(
                    f"workflow history diverged at {describe_location(location)}: the "
                    f"history recorded {missing.kind} {missing.name!r} next in "
                    f"{describe_location(scope.path)}, the code now runs {kind} {name!r}; "
                    f"deploy code that runs {missing.name!r}, or if it was removed on "
                    f"purpose call ctx.removed({missing.name!r}, {missing.kind!r}) in its place",
                    entry=name,
                )
        return location, None

    def create(self, scope: Scope, kind: EntryKind, location: Location) -> EntryRecord:
        """A new entry at ``location`` (claimed by `enter`), counted as seen."""
        scope.seen += 1
        return self.history.new_entry(kind, location)

    def unvisited(self, scope: Scope) -> EntryRecord | None:
        """The earliest recorded entry of ``scope`` the code has not reached, if any."""
        siblings = self.history.by_parent.get(scope.path)
        if not siblings or scope.seen >= len(siblings):
            return None
        left = [r for n, r in siblings.items() if n not in scope.names]
        return min(left, key=lambda r: r.seq) if left else None

    def end_scope(self, scope: Scope) -> None:
        """Check the code reached every entry recorded in ``scope``."""
        missing = self.unvisited(scope)
        if missing is not None:
            raise HistoryDivergedError(
                f"workflow history diverged: the history has {missing.kind} "
                f"{missing.name!r} in {describe_location(scope.path)}, which the code no "
                f"longer runs; if it was removed on purpose, call "
                f"ctx.removed({missing.name!r}, {missing.kind!r}) where it was",
                entry=missing.name,
            )

    # -- writing and waiting ---------------------------------------------------------

    async def flush(self, shielded: bool = False) -> None:
        """Hand the queued writes to the host and wait until they are durable.

        Waits for a step running in a concurrent branch to finish first: the host
        commits its working state with the writes, and it must not hold half a step.
        """
        if not self.history.pending and not self.history.meta_dirty:
            return
        turn = self.turn
        if turn.busy:
            await turn.wait()
        else:
            turn.busy = True
        try:
            await self._flush_locked(shielded)
        finally:
            turn.give_back()

    async def _flush_locked(self, shielded: bool) -> None:
        writes = self.history.take_writes()
        if not writes:
            return
        if shielded:
            await self._flush_shielded(writes)
            return
        try:
            waiting = self.host.flush(writes)
            if waiting is not None:
                await waiting
        except BaseException as exc:
            self.broken = exc
            raise

    async def _flush_shielded(self, writes: Writes) -> None:
        """Flush ``writes`` in a task of its own: a race cancels its losing branches, and
        a flush one of them started still completes, or the history in memory and in
        storage would disagree."""
        task = asyncio.get_running_loop().create_task(_flush_and_wait(self.host, writes))
        self._shielded_flushes.add(task)
        task.add_done_callback(self._shielded_flush_done)
        await asyncio.shield(task)

    def _shielded_flush_done(self, task: asyncio.Task[None]) -> None:
        self._shielded_flushes.discard(task)
        if task.cancelled():
            self.broken = asyncio.CancelledError()
        elif task.exception() is not None:
            self.broken = task.exception()

    async def wait_until(self, deadline: float, shielded: bool = False) -> None:
        """Wait durably until ``deadline`` (flushing first, so the wait survives)."""
        if self.clock.now() >= deadline:
            return
        self.history.set_state("sleeping")
        await self.flush(shielded)
        await self.host.sleep_until(deadline)
        self.history.set_state("running")

    async def report(self, event: StepErrorEvent | WorkflowErrorEvent) -> None:
        """Call ``on_error``; it is an observer, so its failures are logged, not raised."""
        if self.on_error is None:
            return
        try:
            result = self.on_error(self.host.error_context(), event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("the workflow's on_error observer raised; ignored")

    # -- steps -----------------------------------------------------------------------

    async def run_step(
        self,
        record: EntryRecord,
        run: Callable[[S], Any],
        options: StepOptions,
        rollback: Callable[[S, Any], Any] | None,
        shielded: bool,
    ) -> Any:
        """Run the attempts of a step not completed yet; its output, decoded.

        Each attempt's outcome is flushed before anything else happens, so the attempt
        count and the retry time survive a restart. Raises the step's failure exception
        once it failed for good.
        """
        name = record.name
        while True:
            if record.attempts and record.last_attempt_at is not None:
                retry_at = record.last_attempt_at + options.backoff(record.attempts)
                await self.wait_until(retry_at, shielded)
            attempt = record.attempts + 1
            # One step body (with the flush that completes it) at a time: a flush commits
            # the host's whole working state, which must not hold half of another step's
            # changes, or a crash would make that step run, and apply, twice.
            turn = self.turn
            if turn.busy:
                await turn.wait()
            else:
                turn.busy = True
            self.running_steps += 1
            info = _new_step_info(StepInfo, (name, record.location, attempt, "run"))
            try:
                # The attempt, inline (not a coroutine of its own: one frame less per step).
                step_ctx = self.host.step_context(info)
                outcome: tuple[Exception, str | None] | None = None
                token = _in_step.set(name)
                started = self.clock.monotonic()
                try:
                    result = run(step_ctx)
                    if type(result) not in _NEVER_AWAITABLE and inspect.isawaitable(result):
                        timeout = options.timeout
                        result = await (
                            run_with_timeout(self.clock, timeout, result) if timeout else result
                        )
                    try:
                        output = values.encode_unchecked(result)
                    except (TypeError, ValueError, OverflowError):
                        # Raises the EncodingError (its text is built only on failure).
                        output = values.encode(result, f"the output of workflow step {name!r}")
                except Exception as error:
                    elapsed = self.clock.monotonic() - started
                    outcome = error, _failure_kind(error, elapsed, options)
                finally:
                    _in_step.reset(token)
                    # Not kept alive across the flush's loop turn (work for the collector).
                    del token
                if outcome is None:
                    record.status = "completed"
                    record.attempts = attempt
                    record.output = output
                    record.error = None
                    if rollback is not None:
                        self.rollbacks.append((record, rollback))
                    if options.ephemeral:
                        self.history.write(record)  # flushed with the next flush
                    else:
                        # `_flush_locked` inline: the writes hold this step's record.
                        writes = self.history.take_with(record)
                        if shielded:
                            await self._flush_shielded(writes)
                        else:
                            try:
                                # Usually durable at once (written inline): no await.
                                waiting = self.host.flush(writes)
                                if waiting is not None:
                                    await waiting
                            except BaseException as flush_error:
                                self.broken = flush_error
                                raise
                    # What the step returns is its stored form (a replay returns that).
                    return result if type(result) in _ROUND_TRIP else values.decode(output)
                exc, kind = outcome
                record.attempts = attempt
                record.last_attempt_at = self.clock.now()
                record.error = error_text(exc)
                if kind is None and attempt > options.max_retries:
                    kind = "exhausted"
                if kind is not None:
                    record.status = "exhausted" if kind == "exhausted" else "failed"
                    record.error_kind = kind
                else:
                    record.status = "failed"
                self.history.write(record)
                await self._flush_locked(shielded)
            finally:
                self.running_steps -= 1
                if turn.waiters:
                    turn.give_back()
                else:
                    turn.busy = False  # `StepTurn.give_back` with nobody waiting
                self.host.step_finished(info)
            if kind is not None:
                await self.report(
                    StepErrorEvent(name, record.location, attempt, exc, False, None, None)
                )
                raise step_failure(record) from exc
            delay = options.backoff(attempt)
            await self.report(
                StepErrorEvent(
                    name, record.location, attempt, exc, True, delay, record.last_attempt_at + delay
                )
            )

    async def roll_back(self) -> None:
        """Run the rollback callbacks of completed steps, newest first, each once."""
        self.history.set_state("rolling_back")
        await self.flush()
        for record, callback in reversed(self.rollbacks):
            if record.rolled_back:
                continue
            info = StepInfo(record.name, record.location, record.attempts, "rollback")
            step_ctx = self.host.step_context(info)
            token = _in_step.set(record.name)
            try:
                assert record.output is not None
                result = callback(step_ctx, values.decode(record.output))
                if inspect.isawaitable(result):
                    await result
                record.rolled_back = True
                self.history.write(record)
                await self.flush()
            finally:
                _in_step.reset(token)
                self.host.step_finished(info)
