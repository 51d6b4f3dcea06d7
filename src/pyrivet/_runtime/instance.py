"""`ActorInstance`: one awake actor: its state, lifecycle and the calls running on it.

The instance is a thin coordinator. It owns the lifecycle transitions (start, wake,
shutdown), runs actions and hooks, and decides when a unit of work is checkpointed.
What a checkpoint writes and releases is in ``checkpoint.py``; connections and events
in ``connections.py``; idle detection in ``idle.py``.

Everything here runs on the runtime's event loop. Actions run inline in the caller's
task (no task per call), so actions of one actor interleave at ``await`` points and
code between awaits is atomic, as in RivetKit.

Memory: an idle instance keeps only slot fields (160 bytes with its GC header); ``life``
(abort signal, background tasks, shutdown future), ``writes`` (pending KV, schedule and
event outputs), ``inflight`` (commits not durable yet) and ``conns`` exist only while
something needs them. What an awake idle actor costs in all (100,000 woken, see
``bench/bench_core.py``): this object, its state, its snapshot (the last submitted
encoding, shared with the durable one), its key, and an entry in the runtime's table;
the idle wheel only links the instance. Nothing of it is kept once the actor sleeps.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._codec.values import encode
from .._util.timeouts import run_with_timeout
from ..actor._definition import ActionSpec, ActorDefinition
from ..errors import (
    ActionNotFoundError,
    ActionTimeoutError,
    ActorError,
    ActorStoppingError,
    InternalError,
    InvalidArgumentsError,
)
from ..storage._base import ActorRecord
from . import checkpoint
from .context import ActorContextImpl
from .idle import IdleLink

if TYPE_CHECKING:
    from .checkpoint import InFlight
    from .committer import CommitTicket
    from .connections import ConnImpl
    from .services import Services
    from .writes import PendingWrites

__all__ = ["ActorInstance", "ActorStatus", "Lifecycle"]

log = logging.getLogger("pyrivet.actor")


class ActorStatus(enum.Enum):
    """Where an instance is in its life."""

    #: Hooks of a start or wake are running; requests wait for them.
    LOADING = "loading"
    #: Serving requests.
    RUNNING = "running"
    #: Shutting down (sleep or destroy); new requests wait and then wake it again.
    STOPPING = "stopping"
    #: Asleep: saved and dropped from memory.
    STOPPED = "stopped"
    #: Destroyed: its data is deleted.
    DESTROYED = "destroyed"


class Lifecycle:
    """The parts of an instance that exist only around starts, shutdowns and background work."""

    __slots__ = (
        "abort",
        "keep_awake",
        "last_save",
        "ready",
        "run_task",
        "save_timer",
        "stop_requested",
        "stopped",
        "tasks",
        "waiters",
    )

    def __init__(self) -> None:
        self.abort = asyncio.Event()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.stopped: asyncio.Future[None] | None = None
        self.run_task: asyncio.Task[Any] | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.keep_awake = 0
        self.waiters: list[asyncio.Future[None]] = []
        self.save_timer: Any = None
        #: Monotonic time of the last relaxed-mode save (-inf: none since the start).
        self.last_save = float("-inf")
        self.stop_requested: str | None = None


class ActorInstance(IdleLink):
    """One awake actor."""

    __slots__ = (
        "_key",
        "actor_id",
        "busy",
        "conns",
        "definition",
        "inflight",
        "life",
        "saved_state",
        "seq",
        "state",
        "status",
        "svc",
        "vars",
        "writes",
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
        self.status = ActorStatus.LOADING
        self.state: Any = None
        self.vars: Any = None
        self.seq = 0
        #: The snapshot of the latest submitted commit (what change detection compares to).
        self.saved_state: bytes | None = None
        #: Commits not durable yet; None once everything submitted is durable, so an
        #: idle actor keeps no ticket and no second snapshot.
        self.inflight: InFlight | None = None
        #: Actions, hooks and scheduled work in flight.
        self.busy = 0
        self.conns: dict[str, ConnImpl] | None = None
        self.writes: PendingWrites | None = None
        self.life: Lifecycle | None = Lifecycle()
        IdleLink.__init__(self)  # the idle sweeper's links; None while not filed

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def key(self) -> tuple[str, ...]:
        key = self._key
        return (key,) if isinstance(key, str) else key

    @property
    def last_commit(self) -> CommitTicket | None:
        """The ticket of the latest submitted commit while any commit is not durable."""
        inflight = self.inflight
        return None if inflight is None else inflight.ticket

    @property
    def durable_seq(self) -> int:
        """The seq of the latest durable commit."""
        inflight = self.inflight
        return self.seq if inflight is None else inflight.durable_seq

    @property
    def durable_state(self) -> bytes | None:
        """The snapshot of the latest durable commit (what a rollback restores)."""
        inflight = self.inflight
        return self.saved_state if inflight is None else inflight.durable_state

    @property
    def serving(self) -> bool:
        """Running with no sleep or destroy requested: new requests may start here.

        Once ``c.destroy()`` or ``c.sleep()`` was called, a new request waits for that
        shutdown (and then wakes the actor or finds it gone) instead of running on an
        instance whose changes a destroy would delete.
        """
        life = self.life
        return self.status is ActorStatus.RUNNING and (life is None or life.stop_requested is None)

    def context(self, conn: ConnImpl | None = None) -> ActorContextImpl:
        return ActorContextImpl(self, conn)

    def lifecycle(self) -> Lifecycle:
        if self.life is None:
            self.life = Lifecycle()
            self.life.ready.set_result(None)
        return self.life

    # -- starting ------------------------------------------------------------------

    async def first_start(self, record: ActorRecord, input_value: Any) -> None:
        """create_state -> on_create -> (creation commit) -> create_vars -> on_wake -> run.

        Raises whatever a hook raised (the caller that triggered creation receives it);
        nothing is persisted if create_state or on_create fails.
        """
        d = self.definition
        ctx = self.context()
        opts = d.options
        if d.create_state is not None:
            self.state = await self.call_hook(
                d.create_state, opts.create_state_timeout, "create_state", ctx, input_value
            )
        elif d.initial_state is not None:
            self.state = d.state_codec.decode(d.initial_state)
        hook = d.hooks.get("on_create")
        if hook is not None:
            await self.call_hook(hook, opts.on_create_timeout, "on_create", ctx, input_value)
        # The committer writes at the end of the loop iteration: the caller's first
        # action usually follows at once and shares this transaction (one fsync).
        checkpoint.checkpoint(self, "create", create=record)
        await self._wake_hooks(ctx)

    async def wake(self, seq: int, snapshot: bytes | None) -> None:
        """Restore the committed state, then create_vars -> on_wake -> run."""
        d = self.definition
        self.seq = seq
        self.saved_state = snapshot
        if snapshot is not None:
            self.state = d.state_codec.decode(snapshot)
        elif d.initial_state is not None:
            self.state = d.state_codec.decode(d.initial_state)
        await self._wake_hooks(self.context())

    async def _wake_hooks(self, ctx: ActorContextImpl) -> None:
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
            checkpoint.checkpoint_soon(self)
        self.status = ActorStatus.RUNNING
        run = d.hooks.get("run")
        life = self.life
        assert life is not None
        if run is not None:
            life.run_task = self.svc.spawn(self._run(run), f"run:{d.name}:{self.actor_id}")
            # A run that ended leaves the actor to the idle timeout (from that moment).
            life.run_task.add_done_callback(lambda _task: self.became_idle())
        life.ready.set_result(None)
        if run is None and not life.tasks:
            self.life = None
        self.became_idle()

    async def _run(self, run: Callable[..., Any]) -> None:
        try:
            result = run(self.context())
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception(
                "actor %s (%s): run failed; the actor will sleep", self.name, self.actor_id
            )
            if self.status is ActorStatus.RUNNING:
                self.request_stop("sleep")
        finally:
            checkpoint.checkpoint_soon(self)
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
        self.busy += 1
        try:
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
            log.error("actor %s (%s): %s failed", self.name, self.actor_id, what, exc_info=exc)
            raise InternalError() from None
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
    ) -> Any:
        """Run an action in the caller's task and return its result.

        In strict mode the result is returned only after the commit covering the
        action's changes (and every earlier change of this actor) is durable.

        Raises:
            ActorStoppingError: the actor is shutting down (the runtime retries).
            ActionTimeoutError: it ran longer than ``action_timeout`` (it is cancelled).
            UserError / ActorError: raised by the action, passed through.
            InternalError: the action raised anything else (logged with its traceback).
            EncodingError / CommitError: its changes could not be saved (rolled back).
        """
        if self.status is not ActorStatus.RUNNING and not (
            during_shutdown and self.status is ActorStatus.STOPPING
        ):
            raise ActorStoppingError(f"actor {self.name!r} is {self.status.value}")
        if encoded_args is None:
            encoded_args = encode(args, "the action arguments")
        self.busy += 1
        ctx = ActorContextImpl(self, conn)
        try:
            if spec.is_async:
                result = await run_with_timeout(
                    self.svc.clock, self.definition.options.action_timeout, spec.fn(ctx, *args)
                )
            else:
                result = spec.fn(ctx, *args)
        except TimeoutError:
            raise ActionTimeoutError(
                f"action {spec.name!r} of actor {self.name!r} timed out after "
                f"{self.definition.options.action_timeout} s"
            ) from None
        except ActorError:
            raise
        except Exception as exc:
            log.error(
                "actor %s (%s): action %s failed", self.name, self.actor_id, spec.name, exc_info=exc
            )
            raise InternalError() from None
        finally:
            self.busy -= 1
            self.after_work(spec.name, encoded_args, by or (conn.id if conn else None))
        gate = self.gate_ticket()  # `output_gate` without its coroutine: once per action
        if gate is not None:
            await gate
        return result

    def after_work(self, name: str, args: bytes | None, by: str | None) -> None:
        """End of a unit of work: checkpoint it (strict) or schedule a save (relaxed)."""
        if self.definition.options.durability == "strict":
            checkpoint.checkpoint(self, "action", name=name, args=args, by=by)
        else:
            checkpoint.request_save(self)
        if self.busy == 0:
            self.became_idle()

    def gate_ticket(self) -> CommitTicket | None:
        """What the output gate waits for: the latest commit while it is not durable, in
        strict mode; None when replies may go out now."""
        last = self.last_commit
        if last is None or last.done() or self.definition.options.durability != "strict":
            return None
        return last

    async def output_gate(self) -> None:
        """Wait until every change of this actor submitted so far is durable (strict)."""
        gate = self.gate_ticket()
        if gate is not None:
            await gate

    # -- idleness and shutdown -----------------------------------------------------

    def is_idle(self) -> bool:
        """RivetKit's can-sleep predicate: nothing in flight, no connections, no keep-awake."""
        if self.busy or self.conns or self.status is not ActorStatus.RUNNING:
            return False
        life = self.life
        if life is not None and (
            life.keep_awake or (life.run_task is not None and not life.run_task.done())
        ):
            return False
        return not self.definition.options.no_sleep

    def became_idle(self) -> None:
        """Called whenever work ends; starts the sleep countdown if the actor is idle."""
        if self.life is not None and self.life.waiters:
            self.notify()
        if self.is_idle():
            self.svc.idle.file(self)

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
        """Start a sleep (``"sleep"``) or destroy (``"destroy"``) in the background.

        Raises:
            ActorStoppingError: destroy was already requested.
        """
        life = self.lifecycle()
        if life.stop_requested is not None:
            if kind == "destroy" and life.stop_requested == "destroy":
                raise ActorStoppingError(f"actor {self.name!r} is already being destroyed")
            if kind == "sleep" or life.stop_requested == "destroy":
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
        life.stopped = asyncio.get_running_loop().create_future()
        self.status = ActorStatus.STOPPING
        life.abort.set()
        if life.save_timer is not None:
            life.save_timer.cancel()
            life.save_timer = None
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
            )
        for task in [*life.tasks, *([life.run_task] if life.run_task else [])]:
            task.cancel()
        try:
            checkpoint.checkpoint(self, "destroy" if destroy else "sleep")
            if self.last_commit is not None:
                await self.last_commit
            if destroy:
                await self.svc.store.destroy_actor(self.actor_id, self.svc.now_ms())
                self.svc.alarms.forget_actor(self.actor_id)
        except Exception:
            log.exception("actor %s (%s): final save failed", self.name, self.actor_id)
        finally:
            self.status = ActorStatus.DESTROYED if destroy else ActorStatus.STOPPED
            self.svc.forget(self)
            life.stopped.set_result(None)

    async def _graceful(self, ctx: ActorContextImpl, destroy: bool) -> None:
        from .connections import disconnect

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
                log.error("actor %s (%s): %s", self.name, self.actor_id, exc.message)
        for conn in list((self.conns or {}).values()):
            await disconnect(conn, "actor destroyed" if destroy else "actor sleeping")
        await self._drained()

    # -- background work -----------------------------------------------------------

    def track(self, awaitable: Awaitable[Any], what: str) -> asyncio.Task[Any]:
        """Run ``awaitable`` as a background task that shutdown waits for."""
        life = self.lifecycle()

        async def runner() -> Any:
            try:
                return await awaitable
            finally:
                checkpoint.checkpoint_soon(self)

        task: asyncio.Task[Any] = self.svc.spawn(runner(), f"{what}:{self.actor_id}")
        life.tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            life.tasks.discard(t)
            self.became_idle()

        task.add_done_callback(done)
        return task
