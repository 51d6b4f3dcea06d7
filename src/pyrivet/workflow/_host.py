"""What the workflow engine needs from whatever runs it: the `WorkflowHost` Protocol.

The engine (`WorkflowEngine`) knows nothing of actors. A host gives it time, storage,
durable waiting and a queue; in an actor the host is the actor's runtime, and the
test/reference host is `MemoryWorkflowHost`.

The contract, in the order things happen:

1. **Load.** `load` returns every record the host stored for this workflow (the bytes
   it was given by earlier `flush` calls, as they were). It is called once, before the
   first run, and again after a `flush` failed.
2. **Step bodies.** Each attempt of a step calls ``fn(host.step_context(info))``; the
   object is opaque to the engine (in an actor it exposes state, KV, broadcast...).
   `step_finished(info)` follows once the attempt is over, after the flush recording
   its outcome (or after the attempt alone if it was interrupted, or for an ephemeral
   step, which flushes later). Between the two the host's working state may hold half
   a step: a host that commits that state for other reasons (an actor's actions) must
   hold such commits until `step_finished`, or a crash could keep half a step whose
   re-run then applies it again. Step attempts never overlap (join and race branches
   take turns for their step bodies).
3. **Flush.** When a step completes, fails an attempt, or the workflow records anything
   that must outlive a crash (a sleep's deadline, a received message, a race's winner,
   the end state), the engine calls `flush(writes)` and waits for it **before** it
   returns the step's result to workflow code or moves on. ``writes`` maps keys to bytes
   (store) or None (delete). The host must apply a flush atomically, **together with any
   state the step changed** (in actor mode: in the same commit as the actor's state), so
   once `flush` returns, the step's effect and its history entry are durable together,
   and a crash before that loses both: the step then runs again. Flushes of one workflow
   are issued one at a time except inside ``join``/``race``, whose branches may flush
   concurrently; the host must apply them in call order.
4. **Waiting.** `sleep_until(deadline)` returns at or after ``deadline`` (epoch seconds
   of `clock`), or raises `pyrivet.errors.WorkflowEvicted` to unload the workflow; the
   host then re-runs it later (a durable alarm at ``deadline``): replay finds the
   recorded deadline and continues. `receive` does the same for queue waits.
5. **Errors.** If `flush` raises, the engine considers the writes **not** made: the
   step's result is not returned, nothing later runs, the exception propagates out of
   `WorkflowEngine.run` unchanged, and the next run reloads the history with `load`.
   A host whose flush fails must therefore not have applied any of it. Exceptions from
   `sleep_until`/`receive` propagate out of `run` the same way (nothing is recorded).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

from .._util.clock import Clock

__all__ = ["QueueMessage", "StepInfo", "WorkflowHost", "Writes"]

S_co = TypeVar("S_co", covariant=True)

#: A batch of history writes: key -> bytes to store, or None to delete the key.
Writes = Mapping[str, bytes | None]


class StepInfo(NamedTuple):
    """Which step an attempt belongs to (given to `WorkflowHost.step_context`).

    Immutable; a named tuple rather than a frozen dataclass because the engine makes
    one per step attempt, and a frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field) cost four times as much.

    Attributes:
        name: the step's name.
        location: the step's full location (see `pyrivet.workflow.EntryRecord`).
        attempt: 1 for the first attempt, 2 for the first retry...
        purpose: ``"run"`` for the step itself, ``"rollback"`` for its rollback callback.
    """

    name: str
    location: tuple[str | int, ...]
    attempt: int
    purpose: str = "run"


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """A message a host's queue delivered to a workflow.

    Attributes:
        id: the queue's id of the message (monotonic per queue owner).
        name: the queue name it was sent to.
        body: the decoded body (plain data).
        created_at: epoch seconds when it was sent.
    """

    id: int
    name: str
    body: Any
    created_at: float


class WorkflowHost(Protocol[S_co]):
    """Runs a workflow's side of the world; see the module docstring for the contract.

    ``S_co`` is the type of the step context the host passes to step callbacks.
    """

    @property
    def clock(self) -> Clock:
        """The clock that times steps, retries and sleeps (``now()`` is stored)."""
        ...

    async def load(self) -> Mapping[str, bytes]:
        """Every record stored for this workflow by earlier `flush` calls."""
        ...

    def step_context(self, step: StepInfo) -> S_co:
        """The object passed to a step's callback (or its rollback callback).

        Called once per attempt, just before it runs. In actor mode it gives the step
        the actor's state and side effects; the orchestration context never does. May
        raise `pyrivet.errors.WorkflowEvicted` to unload the workflow instead of starting
        the attempt (an actor that is shutting down); `step_finished` is still called.
        """
        ...

    def step_finished(self, step: StepInfo) -> None:
        """The attempt `step_context` was called for is over (see the module docstring).

        Called exactly once per `step_context` call; must not raise.
        """
        ...

    def error_context(self) -> object:
        """The object passed as the first argument of the workflow's ``on_error``."""
        ...

    def flush(self, writes: Writes) -> Awaitable[None] | None:
        """Make ``writes`` durable, atomically with the state the current step changed.

        Returns None if they are durable already, else an awaitable that completes
        once they are (an ``async def flush`` is fine: its coroutine is that
        awaitable). Raises, from the call or the awaitable, if nothing was written
        (then the engine forgets the writes and the run ends with that exception).
        """
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return at or after ``deadline`` (epoch seconds of `clock`).

        May instead raise `pyrivet.errors.WorkflowEvicted` to unload the workflow; the
        host must then run it again at ``deadline`` (the engine already flushed the
        deadline, so the new run resumes waiting for the same instant).
        """
        ...

    async def receive(
        self, names: Sequence[str] | None, count: int, deadline: float | None, completable: bool
    ) -> Sequence[QueueMessage]:
        """Wait for up to ``count`` queued messages (any queue when ``names`` is None).

        Returns as soon as at least one message is available (the lowest ids first),
        or an empty sequence at ``deadline`` (None: wait forever). A non-completable
        receive consumes the messages: the host should delete them in the commit of
        the first `flush` *called* after `receive` returned. The engine puts the
        record of the messages into that very flush (it queues the record before it
        awaits anything), so the deletion and the record are durable together and a
        crash loses no message. (A flush called earlier, e.g. by a concurrent branch,
        must not carry the deletion even if it commits later.) A completable receive
        leaves them queued until `complete_message`. May raise
        `pyrivet.errors.WorkflowEvicted` like `sleep_until`.
        """
        ...

    async def complete_message(self, message_id: int, response: Any) -> None:
        """Complete a message received with ``completable=True``; answer its sender.

        Must be idempotent: after a crash, replayed workflow code completes the same
        message again, and a message already completed is ignored.
        """
        ...
