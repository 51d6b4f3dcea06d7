"""The values workflow code receives and returns: loop control, try results, events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

__all__ = [
    "Failure",
    "FailureKind",
    "Loop",
    "LoopBreak",
    "LoopContinue",
    "Ok",
    "RaceResult",
    "StepErrorEvent",
    "WorkflowErrorEvent",
    "WorkflowMessage",
]

T = TypeVar("T")
FailureKind = Literal["critical", "timeout", "exhausted", "rollback", "join", "race"]


@dataclass(frozen=True, slots=True)
class LoopBreak(Generic[T]):
    """Returned by a loop body to end the loop with ``value`` (what ``ctx.loop`` returns)."""

    value: T


@dataclass(frozen=True, slots=True)
class LoopContinue(Generic[T]):
    """Returned by a loop body to run another iteration with ``state``."""

    state: T


class Loop:
    """Loop control for ``ctx.loop`` bodies.

    ```python
    async def body(ctx, count):
        if count == 10:
            return Loop.break_(count)
        await ctx.step("tick", tick)
        return Loop.continue_(count + 1)
    ```

    Returning None continues with the same state.
    """

    @staticmethod
    def break_(value: T) -> LoopBreak[T]:
        return LoopBreak(value)

    @staticmethod
    def continue_(state: T) -> LoopContinue[T]:
        return LoopContinue(state)


@dataclass(frozen=True, slots=True)
class Ok(Generic[T]):
    """A ``try_step`` or ``try_`` that succeeded with ``value``."""

    value: T
    ok: Literal[True] = True


@dataclass(frozen=True, slots=True)
class Failure:
    """A ``try_step`` or ``try_`` whose failure was caught.

    Attributes:
        kind: ``critical``, ``timeout``, ``exhausted``, ``rollback`` (a step failed that
            way), ``join`` or ``race`` (in a ``try_`` block).
        step: the failed step's (or join's, race's) name.
        attempts: attempts the step ran (0 for join and race).
        error: the error as text.
    """

    kind: FailureKind
    step: str
    attempts: int
    error: str
    ok: Literal[False] = False


@dataclass(frozen=True, slots=True)
class RaceResult(Generic[T]):
    """What ``ctx.race`` returns: the branch that finished first and its value."""

    winner: str
    value: T


@dataclass(frozen=True, slots=True)
class StepErrorEvent:
    """Given to ``on_error`` when a step attempt fails (never during replay).

    Attributes:
        step: the step's name; location: its full location.
        attempt: the attempt that failed (1 = the first).
        error: the exception it raised.
        will_retry: whether another attempt follows.
        retry_delay: seconds until it (None when not retrying).
        retry_at: epoch seconds when it is due (None when not retrying).
    """

    step: str
    location: tuple[str | int, ...]
    attempt: int
    error: BaseException
    will_retry: bool
    retry_delay: float | None
    retry_at: float | None


@dataclass(frozen=True, slots=True)
class WorkflowErrorEvent:
    """Given to ``on_error`` when the workflow as a whole fails."""

    error: BaseException


@dataclass(frozen=True, slots=True)
class WorkflowMessage:
    """A queue message received by ``ctx.queue.next``/``next_batch`` (or replayed).

    ``await message.complete(response)`` completes a message received with
    ``completable=True`` and answers a sender waiting for it.
    """

    id: int
    name: str
    body: Any
    created_at: float
    _complete: Callable[[int, Any], Awaitable[None]] = field(repr=False, compare=False)

    async def complete(self, response: Any = None) -> None:
        await self._complete(self.id, response)
