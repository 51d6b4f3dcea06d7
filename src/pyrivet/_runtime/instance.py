"""`ActorInstance`: one awake actor: its state, lifecycle and the calls running on it.

The instance is a thin coordinator. It owns the lifecycle transitions (start, wake,
shutdown; `set_status` is the one place the status changes), runs actions and hooks,
and says when a unit of work ends. Its `Journal` (``journal.py``) owns durability: what
a commit writes, when it is durable and what it releases. Connections and events are in
``connections.py``; idle detection in ``idle.py``. The modules below the instance see
it only through the Protocols they define (`JournalOwner`, `ConnHost`, `ContextHost`,
`IdleLink`), which it implements; none of them imports this module.

Everything here runs on the runtime's event loop. Actions run inline in the caller's
task (no task per call), so actions of one actor interleave at ``await`` points and
code between awaits is atomic, as in RivetKit.

Memory: an idle instance keeps only slot fields (136 bytes with its GC header) and its
journal (80 bytes); ``life`` (abort signal, background tasks, shutdown future), the
journal's pending writes and in-flight commits, and ``conns`` exist only while
something needs them. What an awake idle actor costs in all (100,000 woken, see
``bench/bench_core.py``): this object, its state, its snapshot (the last submitted
encoding, shared with the durable one), its key, and an entry in the runtime's table;
the idle wheel only links the instance. Nothing of it is kept once the actor sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .._codec.values import decode, encode, encode_unchecked
from .._util.loop_turn import LOOP_TURN
from .._util.timeouts import run_with_timeout
from ..actor._definition import ActionSpec, ActorDefinition
from ..errors import (
    ActionNotFoundError,
    ActionTimeoutError,
    ActorError,
    ActorStoppingError,
    InternalError,
    InvalidArgumentsError,
    QueueError,
    UserError,
)
from ..storage._base import ActorRecord, AlarmRecord, StoredQueue
from ..types import ConnRequest
from ..workflow import Workflow
from .alarms import next_cron_fire
from .committer import CommitTicket
from .connections import ConnImpl, disconnect
from .context import ActorContextImpl, ContextHost, StateChangeContext, state_mutation_reentrant
from .hibernation import Realtime, RealtimeHost, forget, hibernate, release, restore
from .idle import IdleLink
from .journal import Journal
from .lifecycle import TRANSITIONS, ActorStatus, Lifecycle
from .metrics import bump, perf_counter
from .migrate import restore_state
from .queue import Mailbox
from .services import Services
from .tracing import actor_attributes
from .watcher import Watcher
from .workflow_host import (
    WORKFLOW_ALARM_KIND,
    WorkflowBinding,
    WorkflowOwner,
    run_workflow,
    stage_created_workflow,
)
from .writes import Outgoing

__all__ = ["ActorInstance", "ActorStatus", "Lifecycle"]

log = logging.getLogger("pyrivet.actor")
schedule_log = logging.getLogger("pyrivet.schedule")

#: RivetKit's message for ``actor/action_timed_out`` (clients may compare it).
ACTION_TIMED_OUT = "Action timed out"


class ActorInstance(IdleLink, ContextHost, WorkflowOwner, RealtimeHost):
    """One awake actor."""

    __slots__ = (
        "_key",
        "actor_id",
        "busy",
        "conns",
        "definition",
        "held",
        "journal",
        "life",
        "mailbox",
        "realtime",
        "state",
        "status",
        "svc",
        "vars",
        "watcher",
    )

    def __init__(
        self, svc: Services, definition: ActorDefinition[Any], actor_id: str, key: tuple[str, ...]
    ) -> None:
        self.svc = svc
        self.definition = definition
        self.actor_id = actor_id
        # A one-part key (the usual case) is kept as its string: a tuple would cost
        # each awake actor another 48 bytes.
        self._key: str | tuple[str, ...] = key[0] if len(key) == 1 else key
        #: Changed only by `set_status`.
        self.status = ActorStatus.LOADING
        self.state: Any = None
        self.vars: Any = None
        #: Owns durability: seq, snapshots, commits in flight, pending writes.
        self.journal = Journal(self)
        #: Actions, hooks and scheduled work in flight.
        self.busy = 0
        self.conns: dict[str, ConnImpl] | None = None
        #: Open connections that keep the actor awake (not hibernatable).
        self.held = 0
        #: Event sequence and stored connections (``hibernation.py``); None until used.
        self.realtime: Realtime | None = None
        self.life: Lifecycle | None = Lifecycle()
        #: The durable queue, for actor types that declare queues (None otherwise).
        self.mailbox: Mailbox | None = None
        #: A live inspector of this actor (see `inspect_hooks.Watcher`); None, and so
        #: free, while nobody watches.
        self.watcher: Watcher | None = None
        IdleLink.__init__(self)  # the idle sweeper's links; None while not filed

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def key(self) -> tuple[str, ...]:
        key = self._key
        return (key,) if isinstance(key, str) else key

    @property
    def log_fields(self) -> dict[str, Any]:
        """``extra`` for log records about this actor (the names ``c.log`` uses too):
        ``actor`` (its type), ``actor_key`` (a list) and ``actor_id``."""
        return {"actor": self.name, "actor_key": list(self.key), "actor_id": self.actor_id}

    @property
    def serving(self) -> bool:
        """Running with no sleep or destroy requested: new requests may start here.

        Once ``c.destroy()`` or ``c.sleep()`` was called, a new request waits for that
        shutdown (and then wakes the actor or finds it gone) instead of running on an
        instance whose changes a destroy would delete.
        """
        life = self.life
        return self.status is ActorStatus.RUNNING and (life is None or life.stop_requested is None)

    def set_status(self, status: ActorStatus) -> None:
        """Move to ``status``: the one place the status changes (see `TRANSITIONS`).

        Raises:
            RuntimeError: the move is not allowed from the current status (a bug).
        """
        if status not in TRANSITIONS[self.status]:
            raise RuntimeError(
                f"actor {self.name!r} ({self.actor_id}) cannot go from {self.status.value} "
                f"to {status.value}"
            )
        self.status = status

    def stop_unless_stopped(self) -> None:
        """Go to STOPPED from wherever it is, unless already stopped or destroyed (a start
        that failed, a creation commit that failed)."""
        if self.status not in (ActorStatus.STOPPED, ActorStatus.DESTROYED):
            self.set_status(ActorStatus.STOPPED)

    def finish_stopping(self, destroy: bool) -> None:
        """The end of a shutdown: STOPPING -> DESTROYED or STOPPED (no-op if not stopping)."""
        if self.status is ActorStatus.STOPPING:
            self.set_status(ActorStatus.DESTROYED if destroy else ActorStatus.STOPPED)

    def add_conn(self, conn: ConnImpl) -> None:
        conns = self.conns
        if conns is None:
            conns = self.conns = {}
        conns[conn.id] = conn
        if not conn.hibernatable:
            self.held += 1
        if self.watcher is not None:
            self.watcher.connections_changed()

    def remove_conn(self, conn: ConnImpl) -> None:
        conns = self.conns
        if conns is not None:
            if conns.pop(conn.id, None) is not None and not conn.hibernatable:
                self.held -= 1
            if not conns:
                self.conns = None  # an actor with no connection keeps no dict
        forget(self, conn.id)
        if self.watcher is not None:
            self.watcher.connections_changed()

    def context(
        self, conn: ConnImpl | None = None, request: ConnRequest | None = None
    ) -> ActorContextImpl:
        return ActorContextImpl(self, conn, request)

    # -- what the journal asks (JournalOwner) --------------------------------------

    def accepts_saves(self) -> bool:
        return self.status is ActorStatus.RUNNING or self.status is ActorStatus.STOPPING

    def deliver(self, outgoing: Outgoing) -> None:
        release(self, outgoing)
        if self.watcher is not None:
            self.watcher.emitted(outgoing)

    def state_changed(self, snapshot: bytes) -> None:
        """Run ``on_state_change`` (if defined) after a commit carrying a new snapshot.

        Assigning ``c.state`` in the hook raises ``actor/state_mutation_reentrant`` there;
        a change made in place is undone (the committed snapshot is restored) and logged
        with the same error.
        """
        hook = self.definition.hooks.get("on_state_change")
        if hook is None:
            return
        try:
            result = hook(StateChangeContext(self), self.state)
            if inspect.iscoroutine(result):
                result.close()
                log.error(
                    "actor %s: on_state_change must be a plain function; its coroutine was not run",
                    self.name,
                    extra=self.log_fields,
                )
        except Exception:
            log.exception(
                "actor %s (%s): on_state_change failed",
                self.name,
                self.actor_id,
                extra=self.log_fields,
            )
        codec = self.definition.state_codec
        if codec.encode(self.state) != snapshot:
            log.error(
                "actor %s (%s): %s The change was undone; change state in actions.",
                self.name,
                self.actor_id,
                state_mutation_reentrant().message,
                extra=self.log_fields,
            )
            self.state = codec.decode(snapshot)

    def lifecycle(self) -> Lifecycle:
        if self.life is None:
            self.life = Lifecycle()
            self.life.ready.set_result(None)
        return self.life

    # -- starting ------------------------------------------------------------------

    async def first_start(
        self,
        record: ActorRecord,
        input_value: Any,
        on_created: Callable[[CommitTicket], None] | None = None,
    ) -> None:
        """create_state -> on_create -> (creation commit) -> create_vars -> on_wake -> run.

        ``on_created(ticket)`` is called when the creation commit is durable or failed
        (before anything awaiting it resumes).

        Raises whatever a hook raised (the caller that triggered creation receives it);
        nothing is persisted if create_state or on_create fails.
        """
        self.lifecycle().driver = asyncio.current_task()
        d = self.definition
        if d.has_db:
            await self.svc.dbs.attach(self, 0, None, fresh=True)  # runs on_migrate
        ctx = self.context()
        opts = d.options
        if d.queues:
            self.mailbox = Mailbox(self, StoredQueue(0, []))
        if d.create_state is not None:
            self.state = await self.call_hook(
                d.create_state, opts.create_state_timeout, "create_state", ctx, input_value
            )
        elif d.initial_state is not None:
            self.state = d.state_codec.decode(d.initial_state)
        hook = d.hooks.get("on_create")
        if hook is not None:
            await self.call_hook(hook, opts.on_create_timeout, "on_create", ctx, input_value)
        if isinstance(d.hooks.get("run"), Workflow):
            stage_created_workflow(self)  # its "resume at once" alarm: in this commit
        # The committer writes at the end of the loop iteration: the caller's first
        # action usually follows at once and shares this transaction (one fsync).
        ticket = self.journal.checkpoint("create", create=record)
        if ticket is not None and on_created is not None:
            ticket.add_done_callback(on_created)
        await self._wake_hooks(ctx, fresh=True)

    async def wake(self, seq: int, snapshot: bytes | None) -> None:
        """Restore the committed state, then create_vars -> on_wake -> run.

        A state stored at an older version is migrated and committed first (see
        ``migrate.py``). Raises `StateMigrationError` (nothing written, no hook run)
        if the stored state cannot become the current version's.
        """
        self.lifecycle().driver = asyncio.current_task()
        d = self.definition
        if d.has_db:
            # Rolls the store forward if it lost commits the database holds; on_migrate.
            seq, snapshot = await self.svc.dbs.attach(self, seq, snapshot, fresh=False)
        self.journal.restore(seq, snapshot)
        if d.queues:
            self.mailbox = Mailbox(self, await self.svc.store.load_queue(self.actor_id))
        if snapshot is not None:
            migrated = restore_state(self.journal, snapshot)
            if migrated is not None:
                await migrated  # durable before any hook runs
        elif d.initial_state is not None:
            self.state = d.state_codec.decode(d.initial_state)
        await restore(self)  # hibernated connections and the event log
        await self._wake_hooks(self.context())

    async def _wake_hooks(self, ctx: ActorContextImpl, *, fresh: bool = False) -> None:
        """create_vars -> on_wake -> run; ``fresh``: the actor was created by this start."""
        d = self.definition
        if d.create_vars is not None:
            self.vars = await self.call_hook(
                d.create_vars, d.options.create_vars_timeout, "create_vars", ctx
            )
        elif d.static_vars is not None:
            self.vars = copy.deepcopy(d.static_vars)
        hook = d.hooks.get("on_wake")
        if hook is not None:
            await self.call_hook(hook, d.options.on_wake_timeout, "on_wake", ctx)
            # State changed by on_wake is committed like any change outside an action.
            self.journal.soon()
        if self.status is not ActorStatus.LOADING:
            # Its creation commit failed while the wake hooks ran.
            raise ActorStoppingError(f"actor {self.name!r} is {self.status.value}")
        self.set_status(ActorStatus.RUNNING)
        run = d.hooks.get("run")
        life = self.life
        assert life is not None
        if run is not None:
            if isinstance(run, Workflow):
                life.workflow = WorkflowBinding(self, run, fresh=fresh)
            self.start_run()
            if fresh and life.workflow is not None:
                # Its first step (if the workflow reaches it without waiting) commits
                # in the creation's transaction.
                self.svc.committer.defer_flush()
        life.driver = None  # started: do not keep the requester's task alive
        life.ready.set_result(None)
        if run is None and not life.tasks:
            self.life = None
        self.became_idle()

    def start_run(self) -> None:
        """Start the ``run`` handler (or its workflow) as the instance's run task."""
        life = self.lifecycle()
        d = self.definition
        binding = life.workflow
        coro = run_workflow(self, binding) if binding is not None else self._run(d.hooks["run"])
        # `_run_ended` runs from the supervisor's done callback: one loop callback less.
        life.run_task = self.svc.spawn(coro, f"run:{d.name}:{self.actor_id}", self._run_ended)

    def _run_ended(self, task: asyncio.Task[Any]) -> None:
        """The run task ended: forget it (an actor that stays awake keeps no finished task
        and coroutine), and leave the actor to the idle timeout from this moment."""
        life = self.life
        if life is not None and life.run_task is task:
            life.run_task = None
        self.became_idle()

    async def _run(self, run: Callable[..., Any]) -> None:
        ctx = self.context()
        try:
            result = run(ctx)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception(
                "actor %s (%s): run failed; the actor will sleep",
                self.name,
                self.actor_id,
                extra=self.log_fields,
            )
            if self.status is ActorStatus.RUNNING:
                self.request_stop("sleep")
        finally:
            if self.mailbox is not None:
                self.mailbox.release(ctx)
            self.journal.soon()
            self.notify()

    # -- hooks and actions ---------------------------------------------------------

    async def call_hook(
        self, fn: Callable[..., Any], timeout: float | None, what: str, *args: Any
    ) -> Any:
        """Call a lifecycle hook with a time limit.

        Raises:
            ActorError: the hook raised an `ActorError` (passed through) or timed out.
            InternalError: the hook raised anything else (logged with its traceback).
        """
        tracer = self.svc.tracer
        if tracer is not None:
            attributes = actor_attributes(self.name, self.key, self.actor_id)
            attributes["pyrivet.hook"] = what
            span = tracer.span(f"hook {self.name}.{what}", attributes)
        else:
            span = contextlib.nullcontext()
        self.busy += 1
        try:
            with span:
                result = fn(*args)
                if inspect.isawaitable(result):
                    result = await run_with_timeout(self.svc.clock, timeout, result)
            return result
        except TimeoutError:
            raise ActorError(
                f"actor {self.name!r}: {what} did not finish within {timeout} s",
                code="callback_timed_out",
            ) from None
        except ActorError:
            raise
        except Exception as exc:
            log.error(
                "actor %s (%s): %s failed",
                self.name,
                self.actor_id,
                what,
                exc_info=exc,
                extra=self.log_fields,
            )
            raise InternalError() from exc
        finally:
            self.busy -= 1

    def check_call(self, name: str, args: tuple[Any, ...] | list[Any]) -> ActionSpec:
        """The action ``name`` if it exists and accepts ``len(args)`` arguments.

        Raises:
            ActionNotFoundError, InvalidArgumentsError: with a message naming the fix.
        """
        spec = self.definition.actions.get(name)
        if spec is None:
            known = ", ".join(sorted(self.definition.actions)) or "none"
            raise ActionNotFoundError(
                f"actor {self.name!r} has no action {name!r} (actions: {known})"
            )
        count = len(args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            raise InvalidArgumentsError(
                f"action {name!r} of actor {self.name!r} takes {spec.arity_text()} "
                f"argument(s), got {count}"
            )
        return spec

    async def invoke(
        self,
        spec: ActionSpec,
        args: tuple[Any, ...] | list[Any],
        conn: ConnImpl | None,
        encoded_args: bytes | None = None,
        by: str | None = None,
        *,
        during_shutdown: bool = False,
        traced: bool = False,
    ) -> Any:
        """Run an action in the caller's task and return its result.

        In strict mode the result is returned only after the commit covering the
        action's changes (and every earlier change of this actor) is durable.

        Raises:
            ActorStoppingError: the actor is shutting down (the runtime retries).
            InvalidArgumentsError: an argument does not fit its parameter's annotated
                type (``actor/validation_error``); nothing ran.
            ActionTimeoutError: it ran longer than ``action_timeout`` (it is cancelled).
            UserError / ActorError: raised by the action, passed through.
            InternalError: the action raised anything else (logged with its traceback).
            EncodingError / CommitError: its changes could not be saved (rolled back).

        Counted in ``svc.metrics`` (and timed once someone scraped them); with tracing
        on, it runs inside an ``action`` span (``traced``: that span is open).
        """
        svc = self.svc
        if svc.tracer is not None and not traced:
            attributes = actor_attributes(self.name, self.key, self.actor_id)
            attributes["pyrivet.action"] = spec.name
            with svc.tracer.span(f"action {self.name}.{spec.name}", attributes):
                return await self.invoke(
                    spec, args, conn, encoded_args, by, during_shutdown=during_shutdown, traced=True
                )
        if self.status is not ActorStatus.RUNNING and not (
            during_shutdown and self.status is ActorStatus.STOPPING
        ):
            raise ActorStoppingError(f"actor {self.name!r} is {self.status.value}")
        if encoded_args is None:
            try:
                encoded_args = encode_unchecked(args)  # without `encode`'s call
            except (TypeError, ValueError, OverflowError):
                encoded_args = encode(args, "the action arguments")  # raises, with the message
        if spec.arguments is not None:
            args = spec.arguments(args)  # into the annotated types; the log keeps them plain
        metrics = svc.metrics
        started = perf_counter() if metrics.timing else 0.0
        self.busy += 1
        ctx = ActorContextImpl(self, conn)
        try:
            if spec.is_async:
                result = await run_with_timeout(
                    self.svc.clock, self.definition.options.action_timeout, spec.fn(ctx, *args)
                )
            else:
                svc.sync_actor = self  # see `Journal.emit`
                result = spec.fn(ctx, *args)
        except TimeoutError:
            # Clients compare RivetKit's wire message; the details go to the log.
            log.warning(
                "actor %s (%s): action %s timed out after %s s",
                self.name,
                self.actor_id,
                spec.name,
                self.definition.options.action_timeout,
                extra=self.log_fields,
            )
            metrics.action_failed(spec, "timeout", started)
            raise ActionTimeoutError(ACTION_TIMED_OUT) from None
        except ActorError as exc:
            metrics.action_failed(
                spec, "user_error" if isinstance(exc, UserError) else "actor_error", started
            )
            raise
        except Exception as exc:
            metrics.action_failed(spec, "internal_error", started)
            log.error(
                "actor %s (%s): action %s failed",
                self.name,
                self.actor_id,
                spec.name,
                exc_info=exc,
                extra=self.log_fields,
            )
            # The cause stays attached for in-process callers (their traceback shows it);
            # the wire form of an InternalError carries no details.
            raise InternalError() from exc
        finally:
            svc.sync_actor = None
            self.busy -= 1
            mailbox = self.mailbox
            if mailbox is not None and mailbox.held_by:
                # Completable messages this call received and did not complete.
                mailbox.release(ctx)
            try:
                self.after_work(spec.name, encoded_args, by or (conn.id if conn else None), True)
            finally:
                # What the output gate waits for (`output_gate` without its coroutine),
                # read before the write: a failed commit rolls the journal back, which
                # then forgets its ticket. The checkpoint's submit was lazy: write now
                # if nothing else is queued in this iteration (see `after_work`).
                gate = self.journal.gate_ticket()
                committer = self.svc.committer
                written = gate is not None and committer.flush_owed()
        if gate is not None:
            if not written and committer.flush_scheduled:
                # The flush was queued for the next iteration (other work is queued in
                # this one): after one bare yield a batch written inline (the usual
                # case) is durable, and the reply goes out in that iteration instead of
                # the next (no future, no wake-up).
                await LOOP_TURN
            try:
                await gate
            except BaseException:
                metrics.action_failed(spec, "commit_error", started)
                raise
        metrics.actions_ok[spec] += 1
        if started:
            metrics.observe_action(spec, started)
        return result

    def after_work(self, name: str, args: bytes | None, by: str | None, lazy: bool = False) -> None:
        """End of a unit of work: the journal commits it (strict) or schedules a save.

        ``lazy`` (an action, whose caller waits at the output gate next): in strict mode
        the commit is submitted without queueing its write; the caller then calls
        `Committer.flush_owed`, whether this raised or not, which writes it at once when
        nothing else is queued in the event loop's iteration, else queues the write for
        the next (see `Committer.submit`).

        `Journal.end_of_work` written out: this runs once per action, and the extra
        call measured 2% of a relaxed in-process action.
        """
        if self.definition.options.durability == "strict":
            self.journal.checkpoint("action", name=name, args=args, by=by, lazy=lazy)
        else:
            self.journal.request_save()
        if self.busy == 0:
            self.became_idle()

    async def output_gate(self) -> None:
        """Wait until every change of this actor submitted so far is durable (strict)."""
        gate = self.journal.gate_ticket()
        if gate is not None:
            await gate

    # -- idleness and shutdown -----------------------------------------------------

    def is_idle(self) -> bool:
        """RivetKit's can-sleep predicate: nothing in flight, no connections, no keep-awake."""
        if self.busy or self.held or self.status is not ActorStatus.RUNNING:
            return False
        life = self.life
        if life is not None and (
            life.keep_awake
            or (
                life.run_task is not None
                and not life.run_task.done()
                # A run loop waiting on its queue or a workflow sleep may sleep (a send
                # or the workflow's alarm wakes the actor).
                and not life.run_parked
            )
        ):
            return False
        return not self.definition.options.no_sleep

    def became_idle(self) -> None:
        """Called whenever work ends; starts the sleep countdown if the actor is idle."""
        if self.life is not None and self.life.waiters:
            self.notify()
        if self.is_idle():
            self.svc.idle.file(self, self.definition.options.sleep_timeout)

    def notify(self) -> None:
        """Wake shutdown waiting for in-flight work to end."""
        life = self.life
        if life is None:
            return
        waiters, life.waiters = life.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def request_stop(self, kind: str) -> None:
        """Start a sleep (``"sleep"``) or destroy (``"destroy"``) in the background; in
        envoy mode, ask the runtime's `Placement` for it instead (once per kind).

        Raises:
            ActorStoppingError: destroy was already requested.
        """
        life = self.lifecycle()
        if life.stop_requested is not None:
            if kind == "destroy" and life.stop_requested == "destroy":
                raise ActorStoppingError(f"actor {self.name!r} is already being destroyed")
            if kind == "sleep" or life.stop_requested == "destroy":
                return
        placement = self.svc.placement
        if placement is not None:
            # Envoy mode: the engine stops the actor (see ``placement.py``).
            if life.intent == "destroy" and kind == "destroy":
                raise ActorStoppingError(f"actor {self.name!r} is already being destroyed")
            if life.intent == "destroy" or life.intent == kind:
                return
            life.intent = kind
            placement.request_stop(self.actor_id, kind)
            return
        life.stop_requested = kind
        self.svc.spawn(self.shutdown(kind == "destroy"), f"{kind}:{self.name}:{self.actor_id}")

    async def _drained(self) -> None:
        """Wait until no work, background task or keep-awake is left."""
        life = self.lifecycle()
        while True:
            pending = [t for t in life.tasks if not t.done()]
            if life.run_task is not None and not life.run_task.done():
                pending.append(life.run_task)
            if not pending and not self.busy and not life.keep_awake:
                return
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            life.waiters.append(waiter)

            def wake(_task: asyncio.Task[Any], waiter: asyncio.Future[None] = waiter) -> None:
                if not waiter.done():
                    waiter.set_result(None)

            for task in pending:
                task.add_done_callback(wake)
            await waiter

    async def shutdown(self, destroy: bool) -> None:
        """The shared sleep/destroy sequence (RivetKit §6.4).

        Abort signal -> on_sleep/on_destroy -> connections closed -> wait for run,
        wait_until tasks, keep-awake and in-flight calls (within ``sleep_grace_period``;
        then they are cancelled) -> final save -> (destroy: delete all data) -> dropped
        from memory. Errors in hooks are logged; the shutdown always completes.
        """
        if self.status in (ActorStatus.STOPPING, ActorStatus.STOPPED, ActorStatus.DESTROYED):
            life = self.lifecycle()
            if life.stopped is not None:
                await asyncio.shield(life.stopped)
            return
        life = self.lifecycle()
        life.driver = asyncio.current_task()
        life.stopped = asyncio.get_running_loop().create_future()
        self.set_status(ActorStatus.STOPPING)
        life.abort.set()
        if self.mailbox is not None:
            self.mailbox.close()
        if life.save_timer is not None:
            life.save_timer.cancel()
            life.save_timer = None
        if self.realtime is not None and self.realtime.timer is not None:
            self.realtime.timer.cancel()
            self.realtime.timer = None
        d = self.definition
        ctx = self.context()
        try:
            await run_with_timeout(
                self.svc.clock, d.options.sleep_grace_period, self._graceful(ctx, destroy)
            )
        except TimeoutError:
            log.warning(
                "actor %s (%s): shutdown grace period of %s s elapsed; cancelling remaining work",
                self.name,
                self.actor_id,
                d.options.sleep_grace_period,
                extra=self.log_fields,
            )
        for task in [*life.tasks, *([life.run_task] if life.run_task else [])]:
            task.cancel()
        destroyed = False
        try:
            self.journal.checkpoint("destroy" if destroy else "sleep")
            last = self.journal.last_commit
            if last is not None:
                await last
            if destroy:
                await self.svc.store.destroy_actor(self.actor_id, self.svc.now_ms())
                self.svc.alarms.forget_actor(self.actor_id)
                self.svc.queue_waiters.actor_destroyed(
                    self.actor_id,
                    QueueError(
                        f"actor {self.name!r} was destroyed before the message was completed",
                        code="completion_waiter_dropped",
                    ),
                )
            destroyed = destroy
        except Exception:
            log.exception(
                "actor %s (%s): final save failed", self.name, self.actor_id, extra=self.log_fields
            )
        finally:
            if d.has_db:
                self.svc.dbs.close(self.actor_id, delete=destroyed)
            # Unless a failed creation commit stopped it meanwhile.
            self.finish_stopping(destroy)
            metrics = self.svc.metrics
            bump(metrics.destroys if destroy else metrics.sleeps, self.name)
            self.svc.forget(self.actor_id, self)
            life.stopped.set_result(None)

    async def _graceful(self, ctx: ActorContextImpl, destroy: bool) -> None:
        hook = self.definition.hooks.get("on_destroy" if destroy else "on_sleep")
        if hook is not None:
            try:
                await self.call_hook(
                    hook,
                    self.definition.options.sleep_grace_period,
                    "on_destroy" if destroy else "on_sleep",
                    ctx,
                )
            except ActorError as exc:
                log.error(
                    "actor %s (%s): %s",
                    self.name,
                    self.actor_id,
                    exc.message,
                    extra=self.log_fields,
                )
        closing = list((self.conns or {}).values()) if destroy else hibernate(self)
        for conn in closing:
            await disconnect(conn, "actor destroyed" if destroy else "actor sleeping")
        await self._drained()

    # -- schedules -----------------------------------------------------------------

    async def fire_alarm(self, alarm: AlarmRecord) -> None:
        """Claim a due alarm durably, then run its action with no connection.

        A one-off alarm is deleted, a cron alarm moved to its next tick from now, in a
        commit that is durable before the action runs (so it fires at most once per
        tick). Errors of the action are logged (there is no caller to receive them).
        """
        if alarm.kind == WORKFLOW_ALARM_KIND:
            # Waking the actor started its workflow, which replays to where it waits;
            # the alarm stays stored until the workflow moves it or ends.
            return
        journal = self.journal
        if alarm.kind == "cron" and alarm.cron is not None:
            next_at = next_cron_fire(alarm.cron, alarm.timezone or "UTC", self.svc.clock.now())
            journal.stage_alarm_put(
                AlarmRecord(
                    alarm.actor_id,
                    alarm.alarm_id,
                    int(next_at * 1000),
                    alarm.kind,
                    alarm.action,
                    alarm.args,
                    alarm.created_at_ms,
                    alarm.cron,
                    alarm.timezone,
                )
            )
        else:
            journal.stage_alarm_delete(alarm.alarm_id)
        by = f"schedule:{alarm.alarm_id}"
        self.busy += 1
        try:
            claim = journal.checkpoint("schedule", name=alarm.action, by=by)
            if claim is not None:
                await claim
            spec = self.definition.actions.get(alarm.action)
            if spec is None:
                schedule_log.error(
                    "actor %s (%s): scheduled action %r no longer exists; schedule %s dropped",
                    self.name,
                    self.actor_id,
                    alarm.action,
                    alarm.alarm_id,
                    extra=self.log_fields,
                )
                return
            args = decode(alarm.args)
            # The schedule is claimed: run it even if a shutdown began meanwhile
            # (shutdown waits for it, as for any work in flight).
            await self.invoke(
                spec, args, None, encoded_args=alarm.args, by=by, during_shutdown=True
            )
        except ActorError as exc:
            schedule_log.error(
                "actor %s (%s): scheduled action %r failed: %s",
                self.name,
                self.actor_id,
                alarm.action,
                exc.message,
                extra=self.log_fields,
            )
        finally:
            self.busy -= 1
            self.became_idle()

    # -- background work -----------------------------------------------------------

    def track(self, awaitable: Awaitable[Any], what: str) -> asyncio.Task[Any]:
        """Run ``awaitable`` as a background task that shutdown waits for."""
        life = self.lifecycle()

        async def runner() -> Any:
            try:
                return await awaitable
            finally:
                self.journal.soon()

        task: asyncio.Task[Any] = self.svc.spawn(runner(), f"{what}:{self.actor_id}")
        life.tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            life.tasks.discard(t)
            self.became_idle()

        task.add_done_callback(done)
        return task
