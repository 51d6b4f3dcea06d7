"""The workflow binding: a durable workflow as an actor's ``run`` handler.

```python
agent = actor("agent", state={"turns": 0}, queues=["prompts"])

@agent.run
@workflow
async def loop(ctx):
    ...
```

When ``run`` is a `pyrivet.workflow.Workflow`, the instance starts `run_workflow`
instead of calling it: a `WorkflowEngine` over an `ActorWorkflowHost`, the host that
gives the engine the actor's world. Everything runs on the runtime's event loop, in the
actor's run task (join and race branches in tasks of the engine's own).

How the host keeps the engine's contract (``workflow/_host.py``):

* **flush** hands the history writes to a checkpoint of the actor's journal, made at
  once, so a step's history entry, the state it changed, its KV writes
  and the queue messages it consumed land in **one** commit (one transaction), in strict
  and relaxed mode alike; it returns once that commit is durable.
* **step bodies** get the full actor context ``c`` (state, KV, broadcast, queues,
  ``c.client()``). While one runs, the journal is *held*: actions that interleave at its
  awaits still run, but their commits wait for the step's flush, which covers them, so
  a commit never holds half a step.
* **waits** (``ctx.sleep``, retry backoff, queue waits) let the actor sleep: the run task
  is *parked*, the idle timeout may put the actor to sleep, and the wait then raises
  `WorkflowEvicted`. A durable alarm (kind ``"workflow"``, one per actor) wakes the
  actor again. While the workflow runs, the alarm says "at once" (written with the
  actor's creation commit, or with the first flush of a run that a wake started), so a
  crash or restart resumes it; when it unloads, the alarm moves to
  the earliest deadline its waits have (join branches may wait for several), or goes
  away if they all wait for messages (a send wakes the actor). Waking starts ``run``,
  and the engine replays to where it was.
* **receives** take messages with an in-flight hold; a plain receive deletes them in
  the commit that records it (a crash before loses neither), a completable one when
  the workflow completes it.

What happens on failure: a workflow that fails (a step exhausted its retries, the code
raised) is recorded ``failed`` and logged; the actor keeps serving and may sleep; its
history stays readable and `Runtime.replay_workflow` runs it again. A history that no
longer matches the code (`HistoryDivergedError`) is logged with the step it names and
nothing is written; the alarm stays, so the fixed code resumes after a restart.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Awaitable, Generator, Mapping, Sequence
from typing import Any, Protocol

from .._codec.values import encode
from .._util.clock import Clock
from .._util.timeouts import run_with_timeout
from ..errors import (
    ActorStoppingError,
    CommitError,
    HistoryDivergedError,
    WorkflowCancelledError,
    WorkflowEvicted,
    WorkflowUsageError,
)
from ..storage._base import AlarmRecord
from ..workflow import QueueMessage, StepInfo, Workflow, WorkflowEngine, WorkflowHost, Writes
from .committer import CommitTicket
from .context import ActorContextImpl
from .hibernation import workflow_records
from .journal import Journal, WorkflowWrites
from .lifecycle import Lifecycle
from .metrics import bump
from .queue import Mailbox, ReceivedMessage
from .services import Services

__all__ = [
    "WORKFLOW_ALARM_KIND",
    "ActorWorkflowHost",
    "WorkflowBinding",
    "WorkflowOwner",
    "run_workflow",
    "stage_created_workflow",
    "workflow_alarm_id",
]

log = logging.getLogger("pyrivet.workflow")

#: The `AlarmRecord.kind` of the alarm that wakes an actor for its workflow.
WORKFLOW_ALARM_KIND = "workflow"

#: `ActorWorkflowHost` alarm bookkeeping: the durable alarm is "resume now".
_ACTIVE = -1
#: ... or not known yet (a new host stages the first change it needs).
_UNKNOWN = -2

_NO_ARGS = encode([])

#: Workflow states after which nothing is left to resume.
_ENDED = frozenset({"completed", "failed", "cancelled"})


def workflow_alarm_id(actor_id: str) -> str:
    """The id of the alarm that wakes ``actor_id`` for its workflow (one per actor)."""
    return f"workflow:{actor_id}"


class WorkflowOwner(Protocol):
    """What the host needs of its actor (implemented by `ActorInstance`)."""

    __slots__ = ()

    actor_id: str
    svc: Services
    journal: Journal
    mailbox: Mailbox | None
    life: Lifecycle | None

    @property
    def name(self) -> str: ...

    def context(self) -> ActorContextImpl:
        """A new actor context with no connection."""
        ...

    @property
    def log_fields(self) -> dict[str, Any]:
        """``extra`` for log records about this actor: actor, actor_key, actor_id."""
        ...

    def became_idle(self) -> None:
        """Work ended: start the sleep countdown if nothing else runs."""
        ...

    def accepts_saves(self) -> bool:
        """Whether changes can still be committed (running or stopping)."""
        ...


def _workflow_writes(writes: Writes) -> WorkflowWrites:
    """``writes`` as a commit carries them: (puts, deleted keys)."""
    if None not in writes.values():  # a step's flush: puts only
        puts: tuple[tuple[str, bytes], ...] = tuple(writes.items())  # type: ignore[arg-type]
        return puts, ()
    deletes = tuple(key for key, value in writes.items() if value is None)
    puts = tuple((key, value) for key, value in writes.items() if value is not None)
    return puts, deletes


@types.coroutine
def _wait_durable(ticket: CommitTicket, turn: bool) -> Generator[Any, None, None]:
    """Wait for a flush's commit; raise what the flush raises if it failed.

    ``turn``: the batch is written at the start of the next loop iteration. As an
    action's output gate does, give the loop one turn first: a batch written inline is
    durable after it, and the step goes on in this iteration instead of the next (no
    wake-up through a future).

    A generator-based coroutine with a bare ``yield`` for the turn: one object alive
    across the loop turn (a ``async def`` awaiting `LOOP_TURN` makes two, a coroutine
    and the turn's generator), which at 64 steps in flight is 64 objects fewer for
    each young collection to walk.
    """
    if turn:
        yield  # the task reschedules itself with `call_soon`, as `LOOP_TURN` does
    if not ticket.done():
        try:
            yield from ticket.__await__()
        except BaseException as exc:
            if exc is not ticket.exception():
                raise  # cancelled while waiting
    error = ticket.exception()
    if error is not None:
        raise _flush_error(error)


def _flush_error(error: BaseException) -> BaseException:
    """What a flush whose commit failed raises."""
    if isinstance(error, CommitError | ActorStoppingError):
        return error
    return CommitError(f"the workflow history could not be saved: {error}")


class ActorWorkflowHost(WorkflowHost[ActorContextImpl]):
    """The `WorkflowHost` of one awake actor; see the module docstring."""

    def __init__(self, owner: WorkflowOwner, *, fresh: bool = False) -> None:
        self._owner = owner
        #: The actor type's name (the metrics' key).
        self._name = owner.name
        #: The actor was created by this start: storage holds no records for it yet, so
        #: the first `load` needs no read (a later one, after a failed flush, reads).
        self._fresh = fresh
        #: The attempt between `step_context` and `step_finished`, if any.
        self._step: StepInfo | None = None
        self._step_ctx: ActorContextImpl | None = None
        #: The context every step attempt gets, made at the first (see `step_context`).
        self._ctx: ActorContextImpl | None = None
        #: Whether a flush ran since the current attempt began.
        self._flushed = False
        #: Holders of messages received without ``completable``: consumed by the next flush.
        self._consumed: list[object] = []
        #: Completable messages received and not completed yet, by id (with the holder
        #: object the mailbox knows their receive by).
        self._held: dict[int, tuple[object, ReceivedMessage]] = {}
        #: What the durable alarm is known to be: `_ACTIVE`, a deadline (epoch ms), None
        #: (no alarm) or `_UNKNOWN`. A new actor's creation commit carried `_ACTIVE`
        #: (`stage_created_workflow`).
        self._alarm: int | None = _ACTIVE if fresh else _UNKNOWN
        #: Deadlines (epoch ms) of the waits in progress, by wait: a wait's alarm is
        #: stored only when the workflow unloads (`_evicted`); while the actor is awake
        #: the durable alarm says "resume at once" (see `flush`), which covers a crash.
        self._deadlines: dict[object, int] = {}
        #: Set when a step could not start because the actor is stopping.
        self._step_wanted = False
        #: The engine this host serves (set by `WorkflowBinding`): its state tells a
        #: flush that ends the workflow from the others.
        self.engine: WorkflowEngine[ActorContextImpl] | None = None

    # -- time and storage ------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        return self._owner.svc.clock

    async def load(self) -> Mapping[str, bytes]:
        if self._fresh:
            self._fresh = False
            return {}
        owner = self._owner
        return workflow_records(await owner.svc.store.load_workflow(owner.actor_id))

    # -- steps -----------------------------------------------------------------------

    def step_context(self, step: StepInfo) -> ActorContextImpl:
        """The actor context for a step attempt; holds the journal until it finishes.

        Raises:
            WorkflowEvicted: the actor is shutting down: the step is not started (the
                next wake runs it).
        """
        owner = self._owner
        life = owner.life
        if life is None or life.abort.is_set():
            self._step_wanted = True
            raise self._evicted()
        metrics = owner.svc.metrics
        name = self._name
        counts = metrics.workflow_steps  # `bump`, written out: once per step
        counts[name] = counts.get(name, 0) + 1
        if step.attempt > 1:
            bump(metrics.workflow_retries, name)
        life.keep_awake += 1  # a step in progress keeps the actor awake
        owner.journal.held += 1  # `Journal.hold`, written out
        # One context for the host's steps (it holds nothing but the actor): steps never
        # overlap, and `step_finished` releases what each received through it.
        ctx = self._ctx
        if ctx is None:
            ctx = self._ctx = owner.context()
        self._step = step
        self._step_ctx = ctx
        self._flushed = False
        return ctx

    def step_finished(self, step: StepInfo) -> None:
        owner = self._owner
        ctx = self._step_ctx
        if self._step is None or ctx is None:
            return  # step_context raised: nothing was held
        self._step = None
        self._step_ctx = None
        life = owner.life
        # An attempt that ends without a flush while the actor stops was interrupted:
        # its half-done changes must not reach the final save.
        interrupted = not self._flushed and life is not None and life.abort.is_set()
        owner.journal.release(discard=interrupted)
        mailbox = owner.mailbox
        if mailbox is not None and mailbox.held_by:
            mailbox.release(ctx)
        if life is None:
            owner.became_idle()
            return
        life.keep_awake -= 1
        # `became_idle` only matters if a shutdown waits for work to end, or if the actor
        # may be idle now: the run task (which runs this step, or the join it waits in)
        # ended, or a branch of it is parked in a wait. Otherwise it would find the run
        # task busy and do nothing (a property read and four tests, once per step).
        run = life.run_task
        if life.waiters or life.run_parked or run is None or run.done():
            owner.became_idle()

    def error_context(self) -> ActorContextImpl:
        return self._owner.context()

    # -- the durability point ----------------------------------------------------------

    def flush(self, writes: Writes) -> Awaitable[None] | None:
        """Commit ``writes`` with the actor's state, KV and queue changes; None if that
        commit is durable already (written inline), else what to await until it is.

        Raises (from the call, or the awaitable for a commit that settles later):
            ActorStoppingError: the actor has stopped; nothing was written.
            CommitError: the commit failed; the actor rolled back to its last durable
                state (and nothing of this flush is stored).
            EncodingError: the state cannot be encoded; nothing was written.
        """
        owner = self._owner
        if not owner.accepts_saves():
            raise ActorStoppingError(f"actor {owner.name!r} has stopped; nothing was written")
        journal = owner.journal
        if self._consumed:
            consumed, self._consumed = self._consumed, []
            mailbox = owner.mailbox
            if mailbox is not None:
                for holder in consumed:
                    mailbox.consume(holder)
        step = self._step
        if step is not None:
            self._flushed = True
        # The checkpoint below commits the alarm's change: no save queued for it. A
        # step's flush (the usual one) never ends the workflow: with the alarm "at
        # once" already, it has nothing to change (no look at the engine's state).
        if step is None or self._alarm != _ACTIVE:
            if self.engine is not None and self.engine.state in _ENDED:
                self._set_alarm(None, schedule=False)  # the last flush: nothing to resume
            elif self._alarm != _ACTIVE:
                self._set_alarm(_ACTIVE, schedule=False)
        if None not in writes.values():  # a step's flush: puts only (`_workflow_writes`)
            records: WorkflowWrites = (tuple(writes.items()), ())  # type: ignore[arg-type]
        else:
            records = _workflow_writes(writes)
        # The records ride in the commit this forces (no `Contribution`: the commit's
        # ticket tells their outcome; the journal heard it first).
        committer = owner.svc.committer
        try:
            ticket = journal.checkpoint(
                "workflow",
                name=step.name if step else None,
                force=True,
                workflow=records,
            )
        finally:
            # The checkpoint's submit was lazy: write now if nothing else is queued in
            # this iteration (the step goes on at once), else in the next.
            written = committer.flush_owed()
        assert ticket is not None  # it carries the records
        if not ticket.done():
            # A flush queued for the next iteration: as an action's output gate does,
            # give the loop one turn first (a batch written inline is durable after it).
            return _wait_durable(ticket, not written and committer.flush_scheduled)
        error = ticket.exception()
        if error is not None:
            raise _flush_error(error)
        return None

    # -- waiting ---------------------------------------------------------------------

    async def sleep_until(self, deadline: float) -> None:
        """Wait until ``deadline``, letting the actor sleep meanwhile.

        Raises:
            WorkflowEvicted: the actor is shutting down; its alarm wakes it at
                ``deadline`` and the workflow resumes waiting.
        """
        owner = self._owner
        remaining = deadline - self.clock.now()
        if remaining <= 0:
            return
        life = owner.life
        token = object()
        self._deadlines[token] = int(deadline * 1000)
        try:
            if life is None or life.abort.is_set():
                raise self._evicted()
            life.run_parked += 1
            owner.became_idle()
            try:
                await run_with_timeout(self.clock, remaining, life.abort.wait())
            except TimeoutError:
                return
            finally:
                life.run_parked -= 1
            raise self._evicted()
        finally:
            del self._deadlines[token]

    async def receive(
        self, names: Sequence[str] | None, count: int, deadline: float | None, completable: bool
    ) -> Sequence[QueueMessage]:
        """Wait for messages on the actor's queue (see `WorkflowHost.receive`).

        Raises:
            WorkflowUsageError: the actor type declares no queues.
            WorkflowEvicted: the actor is shutting down; a message or (with a deadline)
                the alarm wakes it again.
        """
        owner = self._owner
        mailbox = owner.mailbox
        if mailbox is None:
            raise WorkflowUsageError(
                f"actor {owner.name!r} declares no queues; declare them with "
                "actor(..., queues=[...]) to receive in its workflow"
            )
        wanted = None if names is None else frozenset(names)
        clock = self.clock
        timeout_at = None if deadline is None else clock.monotonic() + deadline - clock.now()
        holder = object()
        if deadline is not None:
            self._deadlines[holder] = int(deadline * 1000)
        try:
            while True:
                found = mailbox.take(wanted, count, True, holder)
                if found:
                    if completable:
                        for message in found:
                            self._held[message.id] = (holder, message)
                    else:
                        self._consumed.append(holder)
                    return [
                        QueueMessage(m.id, m.name, m.body, m.created_at_ms / 1000) for m in found
                    ]
                if mailbox.closed:
                    raise self._evicted()
                if not await mailbox.wait(timeout_at):
                    if mailbox.closed:
                        raise self._evicted()
                    if timeout_at is not None and clock.monotonic() >= timeout_at:
                        return []
        finally:
            self._deadlines.pop(holder, None)

    async def complete_message(self, message_id: int, response: Any) -> None:
        """Complete a message received with ``completable=True``; idempotent."""
        held = self._held.pop(message_id, None)
        message = None if held is None else held[1]
        mailbox = self._owner.mailbox
        if message is None:
            if mailbox is None:
                return
            record = mailbox.messages.get(message_id)
            if record is None:
                return  # completed before a restart: nothing left to do
            message = ReceivedMessage(mailbox, record, None, True)
        await message.complete(response)

    # -- the wake-up alarm -------------------------------------------------------------

    def _evicted(self) -> WorkflowEvicted:
        """The actor is stopping and the workflow unloads: leave the alarm that must
        wake it. The earliest deadline any branch waits for; none if they all wait for
        messages (a send wakes the actor); at once if a branch was about to run a step
        (none waits then, or the step would wait behind it)."""
        deadlines = self._deadlines.values()
        running = self._step_wanted
        self._set_alarm(_ACTIVE if running else (min(deadlines) if deadlines else None))
        return WorkflowEvicted()

    def _set_alarm(self, fire_at_ms: int | None, *, schedule: bool = True) -> None:
        """Stage the workflow alarm: `_ACTIVE` (resume at once after a restart), a
        deadline (epoch ms) or None (no alarm: the workflow ended).

        ``schedule=False``: the caller checkpoints at once (see `Journal.stage_alarm_put`).
        """
        if fire_at_ms == self._alarm:
            return
        self._alarm = fire_at_ms
        owner = self._owner
        if fire_at_ms is None:
            owner.journal.stage_alarm_delete(workflow_alarm_id(owner.actor_id), schedule=schedule)
            return
        _stage_alarm(owner, fire_at_ms, schedule=schedule)

    def ended(self) -> None:
        """The workflow finished for good (completed, failed, cancelled): drop its alarm."""
        self._set_alarm(None)

    def release_messages(self) -> None:
        """The run ended: messages received but not recorded or completed go back."""
        mailbox = self._owner.mailbox
        consumed, self._consumed = self._consumed, []
        held, self._held = self._held, {}
        if mailbox is None:
            return
        for holder in [*consumed, *(holder for holder, _ in held.values())]:
            mailbox.release(holder)


def _stage_alarm(owner: WorkflowOwner, fire_at_ms: int, *, schedule: bool = True) -> None:
    """Stage the workflow alarm at ``fire_at_ms`` (epoch ms; `_ACTIVE`: now); see
    `Journal.stage_alarm_put` for ``schedule``."""
    now_ms = owner.svc.now_ms()
    owner.journal.stage_alarm_put(
        AlarmRecord(
            owner.actor_id,
            workflow_alarm_id(owner.actor_id),
            now_ms if fire_at_ms == _ACTIVE else fire_at_ms,
            WORKFLOW_ALARM_KIND,
            "",
            _NO_ARGS,
            now_ms,
        ),
        schedule=schedule,
    )


def stage_created_workflow(owner: WorkflowOwner) -> None:
    """Stage the "resume at once" alarm of a workflow actor being created.

    Called before its creation checkpoint, so the alarm is in the creation commit: a
    crash at any point after it (before the first step's commit, during a first step
    that waits long) leaves an actor that the restart wakes and whose workflow runs,
    with no request. The host of that first start (``fresh``) knows the alarm is there.
    The caller checkpoints right after (so no save is queued for it).
    """
    _stage_alarm(owner, _ACTIVE, schedule=False)


class WorkflowBinding:
    """An actor's workflow: its engine and host, kept on the instance's `Lifecycle`."""

    __slots__ = ("engine", "host")

    def __init__(self, owner: WorkflowOwner, definition: Workflow, *, fresh: bool = False) -> None:
        """``fresh``: the actor was just created (see `ActorWorkflowHost`)."""
        self.host = ActorWorkflowHost(owner, fresh=fresh)
        self.engine: WorkflowEngine[ActorContextImpl] = WorkflowEngine(definition, self.host)
        self.host.engine = self.engine


async def run_workflow(owner: WorkflowOwner, binding: WorkflowBinding) -> None:
    """Run (or resume) the actor's workflow until it ends or the actor stops.

    Never raises an `Exception`: the outcome is logged (a failed workflow leaves the actor
    serving; see the module docstring). Cancellation propagates.
    """
    host = binding.host
    engine = binding.engine
    try:
        await engine.run()
    except WorkflowEvicted:
        return  # the actor is stopping; the alarm or a message resumes the workflow
    except WorkflowCancelledError:
        host.ended()
        engine.unload()
    except HistoryDivergedError as exc:
        log.error(
            "actor %s (%s): workflow history diverged: %s. Deploy code that matches the "
            "history, or reset it with Runtime.replay_workflow()",
            owner.name,
            owner.actor_id,
            exc,
            extra=owner.log_fields,
        )
    except ActorStoppingError:
        return
    except Exception:
        log.exception(
            "actor %s (%s): workflow failed; the actor keeps serving. Read its history with "
            "Runtime.workflow_history() and run it again with Runtime.replay_workflow()",
            owner.name,
            owner.actor_id,
            extra=owner.log_fields,
        )
        host.ended()
        engine.unload()
    else:
        host.ended()
        # Its history is in storage: `workflow_history` reads it there, a replay loads it.
        engine.unload()
    finally:
        host.release_messages()
