"""`Runtime`: hosts the actors of a `Registry` in this process.

```python
async with registry.runtime(data_dir=".pyrivet") as runtime:
    client = Client(runtime)
    ...
```

The runtime owns the storage driver, the committer (group commit), the alarm
scheduler, the idle sweeper and every awake `ActorInstance`. Transports (the in-process
client transport, the server) call its public coroutines: `resolve`, `call_action`,
`connect`, `destroy`. Everything runs on one event loop.

Activation is start-and-wait-ready: the first request for a sleeping actor wakes it
(create_vars, on_wake) and requests wait until it is ready; if a hook fails, every
waiting request receives that error and the actor stays asleep.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine
from typing import Any

from .._codec.values import encode
from .._protocol.query import ActorQuery
from .._util.clock import Clock, SystemClock
from .._util.ids import new_id
from .._util.tasks import TaskSupervisor
from ..actor._client import ActorClient
from ..actor._definition import ActorDefinition
from ..errors import (
    ActorError,
    ActorNotFoundError,
    ActorStoppingError,
    DatabaseError,
    DuplicateKeyError,
    WorkflowUsageError,
)
from ..storage._base import ActorRecord, ActorStore, AlarmRecord, HistoryEntry
from ..storage._sqlite import SQLiteDriver
from ..types import ConnRequest
from ..workflow import Workflow, WorkflowHistory, read_history
from .actor_client import new_actor_client
from .actor_db import ActorDb
from .alarms import AlarmScheduler
from .catalog import ActorTypes
from .committer import Committer, CommitTicket
from .connections import ConnImpl, EventSink, disconnect, open_conn
from .hibernation import Resume, baseline, detach, greet, take_over, workflow_records
from .history import HistoryRecord, state_at, to_record
from .idle import IdleLink, IdleSweeper
from .inspect_hooks import clear_queue, replace_state
from .instance import ActorInstance
from .lifecycle import ActorStatus, Lifecycle
from .local_transport import LocalRuntime, LocalTransport
from .metrics import RuntimeMetrics, bump
from .placement import Placement
from .queue import SendOutcome, publish
from .services import Services
from .traced_transport import TracedTransport
from .tracing import make_tracer
from .watcher import Watcher
from .workflow_host import WORKFLOW_ALARM_KIND, WorkflowBinding

__all__ = ["Runtime"]

log = logging.getLogger("pyrivet.runtime")

#: `Runtime._instances` is rebuilt smaller only once it has held more than this many.
_SHRINK_MIN = 1024


class Runtime(LocalRuntime):
    """Runs the actors of a registry; an async context manager."""

    def __init__(
        self,
        registry: ActorTypes,
        *,
        storage: ActorStore | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
        region: str = "local",
        tracer_provider: Any = None,
    ) -> None:
        self.registry = registry
        #: An OpenTelemetry tracer provider for spans (None: the global one, if any; see
        #: ``tracing.py``).
        self._tracer_provider = tracer_provider
        #: Counters read by ``/metrics`` (see ``metrics.py``).
        self.metrics = RuntimeMetrics()
        if storage is None:
            strict = any(d.options.durability == "strict" for d in registry.definitions.values())
            storage = SQLiteDriver(
                data_dir if data_dir is not None else ".pyrivet",
                synchronous="FULL" if strict else "NORMAL",
            )
        self.storage = storage
        self.clock: Clock = clock or SystemClock()
        self._region = region
        self._instances: dict[str, ActorInstance] = {}
        #: The most instances awake at once since `_instances` was last rebuilt.
        self._instances_peak = 0
        #: (name, key) -> actor_id for actors whose creation commit is not durable yet.
        self._fresh: dict[tuple[str, tuple[str, ...]], str] = {}
        self._resolving: dict[tuple[str, tuple[str, ...]], asyncio.Future[str]] = {}
        self._started = False
        self._closing = False
        self._svc: Services | None = None
        #: Live inspectors by actor id (`watch`); handed to each instance as it wakes.
        self._watchers: dict[str, Watcher] = {}

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Open storage, start the committer and load durable schedules."""
        if self._started:
            raise RuntimeError("this runtime was already started")
        self._started = True
        await self.storage.open()
        tracer = make_tracer(self._tracer_provider)
        committer = Committer(self.storage, metrics=self.metrics, tracer=tracer)
        transport = self.client_transport() if tracer is None else TracedTransport(self, tracer)
        scheduler = AlarmScheduler(self.clock, self._on_alarm_due, self._handled_in_memory)
        self._svc = Services(
            store=self.storage,
            clock=self.clock,
            committer=committer,
            alarms=scheduler,
            idle=IdleSweeper(self.clock),
            tasks=TaskSupervisor("pyrivet runtime"),
            forget=self._forget,
            region=self._region,
            max_outgoing_message_size=self.registry.max_outgoing_message_size,
            client=new_actor_client(transport),
            metrics=self.metrics,
            tracer=tracer,
        )
        if any(d.has_db for d in self.registry.definitions.values()):
            committer.barrier = self._svc.dbs.barrier
        add_settler = getattr(self.clock, "add_settler", None)
        if add_settler is not None:
            add_settler(committer.settler)
            # Storage work on another thread (SQLite) started by a timer, e.g. waking
            # an actor for a due schedule, counts as in flight for MockClock.advance.
            store_settler = getattr(self.storage, "settler", None)
            if store_settler is not None:
                add_settler(store_settler)
        scheduler.load(await self.storage.list_alarms())

    async def aclose(self) -> None:
        """Put every awake actor to sleep (state committed), then close storage."""
        if self._svc is None or self._closing:
            return
        self._closing = True
        svc = self._svc
        svc.alarms.close()
        svc.idle.close()
        instances = list(self._instances.values())
        await asyncio.gather(
            *(i.shutdown(False) for i in instances if i.status is ActorStatus.RUNNING),
            return_exceptions=True,
        )
        await svc.tasks.aclose()
        await svc.committer.aclose()
        svc.dbs.close_all()
        remove_settler = getattr(self.clock, "remove_settler", None)
        if remove_settler is not None:
            remove_settler(svc.committer.settler)
            store_settler = getattr(self.storage, "settler", None)
            if store_settler is not None:
                remove_settler(store_settler)
        await self.storage.close()

    def attach_placement(self, placement: Placement, client: ActorClient | None = None) -> None:
        """Let ``placement`` stop and wake this runtime's actors (envoy mode; see
        ``placement.py``). Call it after `start`, before any actor is awake. ``client``
        (if given) is what ``c.client()`` returns from now on: in envoy mode, a client of
        the engine's gateway, which wakes actors wherever the engine places them.

        Raises:
            RuntimeError: the runtime is not started, already has a placement, or has
                awake actors.
        """
        svc = self._services
        if svc.placement is not None or self._instances:
            raise RuntimeError("attach a placement once, before any actor is awake")
        svc.placement = placement
        if client is not None:
            svc.client = client
        svc.alarms.restrict()
        svc.alarms.on_earliest = placement.alarm_changed

    def earliest_alarm(self, actor_id: str) -> int | None:
        """The earliest pending schedule of ``actor_id`` (epoch ms), None if none."""
        return self._services.alarms.earliest(actor_id)

    @property
    def _services(self) -> Services:
        if self._svc is None:
            raise RuntimeError("the runtime is not started; use `async with runtime:`")
        if self._closing:
            raise ActorStoppingError("the runtime is shutting down", code="stopping")
        return self._svc

    # -- scheduler callbacks -------------------------------------------------------

    def _handled_in_memory(self, alarm: AlarmRecord) -> bool:
        """Whether a committed alarm is a due workflow alarm of an actor running here:
        its "resume at once" alarm, which `_on_alarm_due` would skip (the run it would
        resume is in memory). The scheduler then arms no timer for it.

        Only a running actor: one that is starting or stopping may leave memory, and
        its alarm must then wake it. One that stops later while its workflow runs
        stages its alarm again if it changes (`ActorWorkflowHost._evicted`); one whose
        alarm stays "at once" is resumed by its next wake or by a restart, as when the
        skipped fire came first.
        """
        if alarm.kind != WORKFLOW_ALARM_KIND:
            return False
        inst = self._instances.get(alarm.actor_id)
        return (
            inst is not None
            and inst.status is ActorStatus.RUNNING
            and alarm.fire_at_ms <= self.clock.now() * 1000
        )

    def _on_alarm_due(self, alarm: AlarmRecord) -> None:
        svc = self._services
        if svc.placement is not None and alarm.actor_id not in self._instances:
            # Envoy mode: the actor left memory since its alarm was armed; the engine
            # wakes it for the alarm (it was told with `alarm_changed`).
            svc.alarms.done_firing(alarm.alarm_id)
            return
        if alarm.kind == WORKFLOW_ALARM_KIND and alarm.actor_id in self._instances:
            # A workflow's alarm only wakes its actor, which is awake: its "resume at
            # once" alarm fires right after its creation commit or a woken run's first
            # flush, so skip the task.
            svc.alarms.done_firing(alarm.alarm_id)
            return
        svc.spawn(self._dispatch_alarm(alarm), f"alarm:{alarm.alarm_id}")

    async def _dispatch_alarm(self, alarm: AlarmRecord) -> None:
        svc = self._services
        try:
            inst = await self._instance(alarm.actor_id)
            await inst.fire_alarm(alarm)
        except ActorNotFoundError:
            svc.alarms.forget_actor(alarm.actor_id)
        except Exception:
            log.exception("schedule %s of actor %s failed to run", alarm.alarm_id, alarm.actor_id)
        finally:
            svc.alarms.done_firing(alarm.alarm_id)

    def _add_instance(self, inst: ActorInstance) -> None:
        instances = self._instances
        instances[inst.actor_id] = inst
        svc = self._svc
        if svc is not None and svc.placement is not None:
            svc.alarms.resume(inst.actor_id)
        if self._watchers:
            inst.watcher = self._watchers.get(inst.actor_id)
        if len(instances) > self._instances_peak:
            self._instances_peak = len(instances)

    def _forget(self, actor_id: str, inst: IdleLink) -> None:
        instances = self._instances
        if instances.get(actor_id) is inst:
            del instances[actor_id]
            # A dict never shrinks when items are deleted: after most actors went to
            # sleep (e.g. 100,000 woken, then idle), copy what is left into a dict sized
            # for it, so the table's memory is given back. Amortised O(1): a rebuild of
            # n items follows at least 7n deletions.
            if self._instances_peak > _SHRINK_MIN and len(instances) * 8 < self._instances_peak:
                self._instances = dict(instances)
                self._instances_peak = len(instances)
        if self._svc is not None:
            self._svc.idle.discard(inst)
            if actor_id not in instances:
                self._svc.alarms.suspend(actor_id)

    # -- addressing ----------------------------------------------------------------

    def definition(self, name: str) -> ActorDefinition[Any]:
        """The definition named ``name``.

        Raises:
            ActorNotFoundError: no actor type of that name is registered.
        """
        definition = self.registry.definitions.get(name)
        if definition is None:
            known = ", ".join(sorted(self.registry.definitions)) or "none"
            raise ActorNotFoundError(
                f"no actor type named {name!r} is registered (registered: {known})",
                code="not_found",
            )
        return definition

    async def resolve(self, query: ActorQuery, *, durable: bool = True) -> str:
        """The actor id for ``query``, creating the actor if the query says so.

        With ``durable=False`` a newly created actor's id is returned before its
        creation commit is durable (the caller's next reply waits for it).

        Raises:
            ActorNotFoundError: unknown actor type, or no such actor (get, get_for_id).
            DuplicateKeyError: ``create`` of a key a live actor has.
            ActorError / InternalError: a creation hook failed.
        """
        definition = self.definition(query.name)
        if query.mode == "get_for_id":
            if query.actor_id is None:
                raise ActorNotFoundError("get_for_id needs an actor id")
            await self._instance(query.actor_id, expect_name=query.name)
            return query.actor_id
        slot = (query.name, query.key)
        while (pending := self._resolving.get(slot)) is not None:
            self._refuse_resolving_from_own_start(slot)
            try:
                actor_id = await asyncio.shield(pending)
            except Exception:
                continue
            if query.mode == "create":
                raise _duplicate(query)
            return actor_id
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._resolving[slot] = future
        try:
            actor_id = await self._resolve_slot(definition, query, durable)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        else:
            future.set_result(actor_id)
            return actor_id
        finally:
            del self._resolving[slot]

    def _refuse_resolving_from_own_start(self, slot: tuple[str, tuple[str, ...]]) -> None:
        """The creation of ``slot``'s actor is under way: refuse to wait for it from
        its own start hooks (see `_refuse_waiting_on_itself`)."""
        actor_id = self._fresh.get(slot)
        inst = None if actor_id is None else self._instances.get(actor_id)
        if inst is not None and inst.life is not None and inst.status is ActorStatus.LOADING:
            _refuse_waiting_on_itself(inst, inst.life, "starting")

    async def _resolve_slot(
        self, definition: ActorDefinition[Any], query: ActorQuery, durable: bool
    ) -> str:
        actor_id = self._fresh.get((query.name, query.key))
        if actor_id is None:
            record = await self._services.store.find_actor(query.name, query.key)
            actor_id = record.actor_id if record is not None else None
        if actor_id is not None:
            if query.mode == "create":
                raise _duplicate(query)
            return actor_id
        if query.mode == "get":
            raise ActorNotFoundError(
                f"no actor {query.name!r} with key {list(query.key)!r}; create it with "
                "create() or get_or_create()"
            )
        return await self._create(definition, query, durable)

    async def host(self, actor_id: str, name: str, key: tuple[str, ...], input: Any = None) -> None:
        """Start the actor with this exact id: create it on its first start, else wake it.

        For envoy mode (`pyrivet.engine`), where the Rivet Engine chose the id and asks
        this process to host the actor; returns once the actor serves requests.

        Raises:
            ActorNotFoundError: the registry has no actor type ``name``.
            ActorError / InternalError: a creation or wake hook failed.
        """
        if await self._services.store.get_actor(actor_id) is None:
            query = ActorQuery("create", name, key, input)
            await self._create(self.definition(name), query, True, actor_id=actor_id)
        else:
            await self._instance(actor_id, expect_name=name)

    async def track_alarms(self, actor_id: str) -> None:
        """Load ``actor_id``'s stored schedules into the scheduler, replacing what it
        held for it. For envoy mode: the engine starts actors whose schedules this
        process did not load at start.

        Raises:
            StorageError: the schedules cannot be read.
        """
        svc = self._services
        alarms = await svc.store.list_alarms(actor_id)
        svc.alarms.forget_actor(actor_id)
        svc.alarms.load(alarms)

    def untrack_alarms(self, actor_id: str) -> None:
        """Drop ``actor_id``'s schedules from the scheduler (it is hosted elsewhere now)."""
        if self._svc is not None:
            self._svc.alarms.forget_actor(actor_id)

    async def _create(
        self,
        definition: ActorDefinition[Any],
        query: ActorQuery,
        durable: bool,
        *,
        actor_id: str | None = None,
    ) -> str:
        svc = self._services
        actor_id = actor_id or new_id()
        input_bytes = encode(query.input, "the actor input") if query.input is not None else None
        record = ActorRecord(actor_id, query.name, query.key, svc.now_ms(), input_bytes, True)
        inst = ActorInstance(svc, definition, actor_id, query.key)
        self._add_instance(inst)
        slot = (query.name, query.key)
        self._fresh[slot] = actor_id

        def created(ticket: CommitTicket) -> None:
            self._fresh.pop(slot, None)
            if ticket.exception() is not None:
                # The actor never existed: drop the instance so the next request creates it.
                self._forget(actor_id, inst)
                inst.stop_unless_stopped()

        bump(self.metrics.creates, query.name)
        try:
            await inst.first_start(record, query.input, created)
        except BaseException as exc:
            self._fail_activation(inst, exc)
            last = inst.journal.last_commit
            if inst.journal.seq == 0:
                self._fresh.pop(slot, None)
            elif isinstance(exc, Exception) and last is not None:
                # create_vars/on_wake failed after the creation commit was submitted: let
                # it land first, so a retry after this error finds (and wakes) the actor.
                await asyncio.gather(asyncio.shield(last), return_exceptions=True)
            raise
        if durable:
            await inst.output_gate()
        return actor_id

    def _fail_activation(self, inst: ActorInstance, exc: BaseException) -> None:
        self._forget(inst.actor_id, inst)
        if inst.definition.has_db:
            self._services.dbs.close(inst.actor_id)
        inst.stop_unless_stopped()
        life = inst.life
        if life is not None and not life.ready.done():
            life.ready.set_exception(exc)
            life.ready.exception()

    async def _instance(self, actor_id: str, expect_name: str | None = None) -> ActorInstance:
        """The awake instance of ``actor_id``, waking it if needed."""
        while True:
            inst = self._instances.get(actor_id)
            if inst is None:
                return await self._wake(actor_id, expect_name)
            if expect_name is not None and inst.name != expect_name:
                raise _not_found_id(actor_id)
            status = inst.status
            if inst.serving:
                return inst
            life = inst.lifecycle()
            if status is ActorStatus.LOADING:
                _refuse_waiting_on_itself(inst, life, "starting")
                await asyncio.shield(life.ready)
            elif life.stopped is not None:
                _refuse_waiting_on_itself(inst, life, "stopping")
                await asyncio.shield(life.stopped)
            else:
                await asyncio.sleep(0)

    async def _wake(self, actor_id: str, expect_name: str | None) -> ActorInstance:
        svc = self._services
        if svc.placement is not None:
            refused = svc.placement.refuse_wake(actor_id)
            if refused is not None:
                raise refused
        record = await svc.store.get_actor(actor_id)
        if record is None or (expect_name is not None and record.name != expect_name):
            raise _not_found_id(actor_id)
        existing = self._instances.get(actor_id)
        if existing is not None:
            return await self._instance(actor_id, expect_name)
        definition = self.registry.definitions.get(record.name)
        if definition is None:
            raise ActorNotFoundError(
                f"actor {actor_id} is of type {record.name!r}, which this registry does not "
                "define; add it to the Registry"
            )
        inst = ActorInstance(svc, definition, actor_id, record.key)
        self._add_instance(inst)
        bump(self.metrics.wakes, record.name)
        try:
            stored = await svc.store.load_state(actor_id)
            await inst.wake(stored.seq, stored.snapshot)
        except BaseException as exc:
            self._fail_activation(inst, exc)
            raise
        return inst

    # -- calls ---------------------------------------------------------------------

    async def call_action(
        self,
        actor_id: str,
        name: str,
        args: list[Any] | tuple[Any, ...],
        *,
        params: Any = None,
        encoded_args: bytes | None = None,
        request: ConnRequest | None = None,
    ) -> Any:
        """Run action ``name`` on ``actor_id`` and return its result.

        The call runs with a transient connection (its hooks run) when the actor type
        defines connection hooks or connection state, or when ``params`` are given;
        ``request`` (the HTTP request of the call, if any) is ``c.request`` in its hooks.

        Raises:
            ActorNotFoundError, ActionNotFoundError, InvalidArgumentsError: bad address
                or call; nothing ran.
            ActionTimeoutError, UserError, InternalError, EncodingError, CommitError:
                see `ActorInstance.invoke`.
        """
        while True:
            inst = self._instances.get(actor_id)
            if inst is None or not inst.serving:
                inst = await self._instance(actor_id)
            spec = inst.check_call(name, args)
            if params is None and not inst.definition.uses_connections:
                try:
                    return await inst.invoke(spec, args, None, encoded_args)
                except ActorStoppingError:
                    if inst.status is ActorStatus.RUNNING:
                        raise  # raised by the action itself, not by a shutdown
                    await self._wait_stopped(inst)
                    continue
            return await self._call_with_transient_conn(
                inst, spec.name, args, params, encoded_args, request
            )

    async def send_queue(
        self,
        actor_id: str,
        name: str,
        body: Any,
        *,
        wait: bool = False,
        timeout: float | None = None,
        request: ConnRequest | None = None,
    ) -> SendOutcome:
        """Send a message to queue ``name`` of ``actor_id``, waking the actor if needed.

        See `pyrivet._runtime.queue.publish` for what it returns and raises.
        """
        while True:
            inst = self._instances.get(actor_id)
            if inst is None or not inst.serving:
                inst = await self._instance(actor_id)
            ctx = inst.context(None, request)
            try:
                return await publish(inst, inst.mailbox, ctx, name, body, wait, timeout)
            except ActorStoppingError:
                if inst.status is ActorStatus.RUNNING:
                    raise
                await self._wait_stopped(inst)

    async def _call_with_transient_conn(
        self,
        inst: ActorInstance,
        name: str,
        args: Any,
        params: Any,
        encoded_args: bytes | None,
        request: ConnRequest | None,
    ) -> Any:
        conn = await open_conn(inst, params, None, None, request)
        try:
            return await inst.invoke(inst.check_call(name, args), args, conn, encoded_args)
        finally:
            await disconnect(conn, None)

    async def _wait_stopped(self, inst: ActorInstance) -> None:
        life = inst.lifecycle()
        if life.stopped is not None:
            await asyncio.shield(life.stopped)
        else:
            await asyncio.sleep(0)

    async def connect(
        self,
        actor_id: str,
        params: Any,
        sink: EventSink,
        subscriptions: set[str] | None = None,
        request: ConnRequest | None = None,
        resume: Resume | None = None,
    ) -> ConnImpl:
        """Open a connection to ``actor_id`` whose events go to ``sink``.

        ``subscriptions`` are in place before on_connect runs, so events it sends reach
        them. ``request`` (the HTTP request that opened it, if any) is ``c.request``.
        ``resume`` (pyrivet's resume extension; the sink must be a `HibernatableSink`):
        the connection it names is taken over when its token matches (no hooks run),
        else a new one is opened; either way the sink then gets ``hello`` and the events
        missed since the cursor (``hibernation.greet``).

        Raises:
            ActorNotFoundError: no such actor.
            ActorError / UserError / InternalError: a connection hook rejected it.
        """
        while True:
            inst = await self._instance(actor_id)
            try:
                if resume is None:
                    return await open_conn(inst, params, sink, subscriptions, request)
                start = baseline(inst)
                conn = take_over(inst, resume, sink)
                resumed = conn is not None
                if conn is None:
                    conn = await open_conn(inst, params, sink, subscriptions, request)
                elif subscriptions:
                    conn.subscriptions.update(subscriptions)
                greet(inst, conn, sink, resume, start, resumed)
                return conn
            except ActorStoppingError:
                if inst.status is ActorStatus.RUNNING:
                    raise  # raised by a connection hook, not by a shutdown
                await self._wait_stopped(inst)

    async def wake_parked(self, actor_id: str, conn_id: str, sink: EventSink) -> ConnImpl:
        """Wake the actor of a hibernated connection whose client sent a message; the
        wake hands the socket its connection back (``sink.attach``), returned here.

        Raises:
            ActorNotFoundError: the actor is gone (destroyed while it slept).
            ActorError: the connection was not restored (its record was lost).
        """
        while True:
            inst = await self._instance(actor_id)
            conn = (inst.conns or {}).get(conn_id)
            if conn is not None and conn.sink is sink:
                return conn
            if inst.status is ActorStatus.RUNNING:
                raise ActorError(
                    "the actor woke without this connection (its saved record was lost); reconnect",
                    group="connection",
                    code="lost",
                )
            await self._wait_stopped(inst)

    async def wait_conn_settled(self, conn: ConnImpl) -> None:
        """Wait until the shutdown of ``conn``'s actor (if one runs) has ended."""
        await self._wait_stopped(_instance_of(conn))

    def conn_waiting(self, conn: ConnImpl, waiting: bool) -> None:
        """A raw WebSocket hook of a hibernatable connection waits for its client's next
        message (``waiting``), or got it. While it waits it does not keep the actor
        awake: the actor may sleep, and the hook's ``receive`` then ends it."""
        inst = _instance_of(conn)
        if waiting:
            inst.busy -= 1
            inst.became_idle()
        else:
            inst.busy += 1

    def park(self, actor_id: str, conn_id: str, sink: EventSink) -> None:
        """Park ``sink`` as the socket of the stored connection ``conn_id`` of a
        sleeping actor (a socket another process served before: ``handoff.py``); the
        actor's next wake attaches it without running ``on_connect``.

        Raises:
            ActorError: the actor is in memory (its wake already restored its
                connections), so the socket cannot be attached this way.
        """
        if actor_id in self._instances:
            raise ActorError(
                f"actor {actor_id} is already awake; a socket handed over from another "
                "process is parked before its wake",
                group="connection",
                code="lost",
            )
        self._services.parking.park(actor_id, conn_id, sink)

    def parked_left(self, actor_id: str, conn_id: str, sink: EventSink) -> None:
        """The client of a hibernated connection is gone; the actor is not woken (its
        ``on_disconnect`` runs at the next wake)."""
        self._services.parking.left(actor_id, conn_id, sink)

    def detach(self, conn: ConnImpl) -> None:
        """The server closes ``conn``'s socket while stopping: keep the connection (if
        hibernatable) for its client to resume after the restart."""
        detach(conn)

    def call_on_conn(
        self, conn: ConnImpl, name: str, args: list[Any], encoded_args: bytes | None = None
    ) -> Coroutine[Any, Any, Any]:
        """Run an action over an open connection: await the result (see `call_action` for
        errors).

        Not a coroutine function itself (one coroutine less on every WebSocket call):
        a closed connection or a call `ActorInstance.check_call` refuses raises here,
        when it is called, which ``await runtime.call_on_conn(...)`` cannot tell apart.
        """
        if not conn.is_open:
            raise ActorError("the connection is closed", group="connection", code="closed")
        inst = _instance_of(conn)
        return inst.invoke(inst.check_call(name, args), args, conn, encoded_args)

    def runs_without_waiting(self, conn: ConnImpl, name: str) -> bool:
        """Whether a call of ``name`` over ``conn`` may start in the task that read it
        (`TaskSupervisor.spawn_eager`): the action is a plain function (or unknown, and
        the call fails at once), so it runs to its end without yielding to the loop and
        depends on no task of its own, as `run_with_timeout` and ``c.db`` transactions
        of a coroutine action do. What `call_on_conn` awaits after it (the commit, in
        strict mode) runs in a task again."""
        spec = _instance_of(conn).definition.actions.get(name)
        return spec is None or not spec.is_async

    async def call_hook_on_conn(
        self, conn: ConnImpl, hook: str, arg: Any, *, timeout: float | None
    ) -> Any:
        """Run a raw handler hook (``on_request`` / ``on_websocket``) for ``conn``.

        The hook is called as ``hook(c, arg)`` with ``c.conn`` set to ``conn``. Its
        changes are committed like an action's: in strict mode this returns only once
        they are durable. ``timeout=None`` sets no limit (a WebSocket handler runs as
        long as its socket).

        Raises:
            ActorError: the actor defines no such hook (``actor/handler_not_found``), the
                connection is closed (``connection/closed``), the hook timed out
                (``actor/callback_timed_out``) or raised an `ActorError`.
            InternalError: the hook raised anything else (logged with its traceback).
        """
        if not conn.is_open:
            raise ActorError("the connection is closed", group="connection", code="closed")
        inst = _instance_of(conn)
        fn = inst.definition.hooks.get(hook)
        if fn is None:
            raise ActorError(
                f"actor {inst.name!r} defines no {hook} handler", code="handler_not_found"
            )
        try:
            result = await inst.call_hook(fn, timeout, hook, inst.context(conn), arg)
        finally:
            inst.after_work(hook, None, conn.id)
        await inst.output_gate()
        return result

    async def commit_on_conn(self, conn: ConnImpl, what: str) -> None:
        """Commit what ``conn``'s actor changed so far; in strict mode wait until durable.

        A raw WebSocket handler calls this before each frame it sends, so a frame that
        reports a change leaves only once the change is durable (the output gate).

        Raises:
            ActorError: the connection is closed (``connection/closed``).
            EncodingError / CommitError: the state cannot be saved (it is rolled back).
        """
        if not conn.is_open:
            raise ActorError("the connection is closed", group="connection", code="closed")
        inst = _instance_of(conn)
        inst.after_work(what, None, conn.id)
        await inst.output_gate()

    def client_transport(self) -> LocalTransport:
        """The in-process transport for ``pyrivet.client.Client(runtime)``."""
        return LocalTransport(self)

    async def destroy(self, actor_id: str) -> None:
        """Destroy an actor: on_destroy runs, then all its data is deleted.

        Raises:
            ActorNotFoundError: no such actor.
        """
        inst = await self._instance(actor_id)
        life = inst.lifecycle()
        if life.stop_requested != "destroy":
            life.stop_requested = "destroy"
            await inst.shutdown(True)
        elif life.stopped is not None:
            await asyncio.shield(life.stopped)

    async def actor_database(self, actor_id: str) -> ActorDb:
        """The SQL database of an actor (waking it), for the inspector.

        Raises:
            ActorNotFoundError: no such actor.
            DatabaseError: its type has no database (``sqlite/not_enabled``), or it
                cannot be opened.
        """
        inst = await self._instance(actor_id)
        db = self._services.dbs.get(actor_id)
        if db is None:
            raise DatabaseError(
                f"actor {inst.name!r} has no SQL database (its type is not declared with "
                "db=True or on_migrate)",
                code="not_enabled",
            )
        return db

    async def sleep(self, actor_id: str) -> None:
        """Put an awake actor to sleep now (no-op if it is asleep)."""
        inst = self._instances.get(actor_id)
        if inst is not None and inst.serving:
            inst.lifecycle().stop_requested = "sleep"
            await inst.shutdown(False)
        elif inst is not None:
            await self._wait_stopped(inst)

    # -- introspection -------------------------------------------------------------

    def is_awake(self, actor_id: str) -> bool:
        """Whether the actor is in memory (loading, running or stopping)."""
        return actor_id in self._instances

    @property
    def awake_count(self) -> int:
        return len(self._instances)

    @property
    def tracing(self) -> bool:
        """Whether this runtime makes OpenTelemetry spans (see ``tracing.py``)."""
        return self._svc is not None and self._svc.tracer is not None

    def gauges(self) -> dict[str, dict[str, int]]:
        """What is awake now, by actor type: ``{"awake": {...}, "connections": {...},
        "queue_depth": {...}}`` (queue depth counts the queues of awake actors)."""
        awake: dict[str, int] = {}
        conns: dict[str, int] = {}
        depth: dict[str, int] = {}
        for inst in self._instances.values():
            name = inst.name
            awake[name] = awake.get(name, 0) + 1
            if inst.conns:
                conns[name] = conns.get(name, 0) + len(inst.conns)
            if inst.mailbox is not None:
                depth[name] = depth.get(name, 0) + len(inst.mailbox.messages)
        return {"awake": awake, "connections": conns, "queue_depth": depth}

    async def history(
        self, actor_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[HistoryRecord]:
        """The actor's committed changes, oldest first, decoded (see `HistoryRecord`)."""
        svc = self._services
        await svc.committer.drain()
        entries: list[HistoryEntry] = await svc.store.read_history(actor_id, after_seq, limit)
        definition = None
        record = await svc.store.get_actor(actor_id)
        if record is not None:
            definition = self.registry.definitions.get(record.name)
        return [to_record(entry, definition) for entry in entries]

    async def state_at(self, actor_id: str, seq: int) -> Any:
        """The actor's state as of history entry ``seq`` (within the retained history).

        Raises:
            LookupError: no retained entry at or before ``seq`` has a state snapshot.
        """
        return state_at(await self.history(actor_id, limit=None), seq, actor_id)

    # -- workflows -----------------------------------------------------------------

    async def workflow_history(self, actor_id: str) -> WorkflowHistory:
        """The workflow history of an actor whose ``run`` is a workflow, awake or asleep:
        its state (``running``, ``sleeping``, ``completed``...) and every entry with its
        outcome. Entries carry the keys `replay_workflow` takes.

        Raises:
            ActorNotFoundError: no such actor.
            WorkflowUsageError: the actor's ``run`` is not a workflow.
        """
        svc = self._services
        inst = self._instances.get(actor_id)
        binding = _workflow_of(inst.life) if inst is not None else None
        if binding is not None and binding.engine.state != "pending":
            return binding.engine.history()
        record = await svc.store.get_actor(actor_id)
        if record is None:
            raise _not_found_id(actor_id)
        self._workflow_definition(record.name)
        await svc.committer.drain()
        return read_history(workflow_records(await svc.store.load_workflow(actor_id)))

    async def replay_workflow(self, actor_id: str, from_entry: str | None = None) -> None:
        """Reset an actor's workflow to before the entry ``from_entry`` (an `EntryView.key`
        from `workflow_history`; None: the beginning) and run it again from there.

        Entries before it replay as recorded; it and every later entry run again. Wakes
        the actor if it sleeps; restarts a workflow that ended (completed, failed or
        cancelled).

        Raises:
            ActorNotFoundError: no such actor.
            WorkflowUsageError: the actor's ``run`` is not a workflow, or no entry has
                that key.
            EntryInProgressError: a step is running now; retry once it finished.
        """
        inst = await self._instance(actor_id)
        binding = self._binding(inst)
        await binding.engine.replay_from(from_entry)
        life = inst.lifecycle()
        if (life.run_task is None or life.run_task.done()) and inst.serving:
            inst.start_run()

    async def cancel_workflow(self, actor_id: str) -> None:
        """Cancel an actor's workflow for good (state ``cancelled``; `replay_workflow`
        starts it again). The actor keeps serving.

        Raises:
            ActorNotFoundError: no such actor.
            WorkflowUsageError: the actor's ``run`` is not a workflow.
            EntryInProgressError: a step is running now; retry once it finished.
        """
        inst = await self._instance(actor_id)
        await self._binding(inst).engine.cancel()

    def _workflow_definition(self, name: str) -> ActorDefinition[Any]:
        definition = self.definition(name)
        if not isinstance(definition.hooks.get("run"), Workflow):
            raise WorkflowUsageError(
                f"actor {name!r} has no workflow: its run handler is not a @workflow"
            )
        return definition

    def _binding(self, inst: ActorInstance) -> WorkflowBinding:
        binding = _workflow_of(inst.life)
        if binding is None:
            self._workflow_definition(inst.name)
            raise WorkflowUsageError(f"actor {inst.name!r} ({inst.actor_id}) is not running")
        return binding

    # -- inspector hooks -----------------------------------------------------------

    def watch(self, actor_id: str, watcher: Watcher | None) -> None:
        """Attach a live inspector to ``actor_id`` (None: detach), now and on every wake."""
        if watcher is None:
            self._watchers.pop(actor_id, None)
        else:
            self._watchers[actor_id] = watcher
        inst = self._instances.get(actor_id)
        if inst is not None:
            inst.watcher = watcher

    async def drain(self) -> None:
        """Wait until every commit submitted so far is durable (reads see them)."""
        await self._services.committer.drain()

    def awake_instance(self, actor_id: str) -> ActorInstance | None:
        """The actor's instance if it is awake and serving (read only, for inspection)."""
        inst = self._instances.get(actor_id)
        return inst if inst is not None and inst.serving else None

    async def replace_state(
        self,
        actor_id: str,
        value: Any,
        *,
        kind: str = "inspector",
        name: str | None = "state.replace",
        args: list[Any] | None = None,
    ) -> int:
        """Replace the actor's state with ``value`` (plain data), waking it, and commit it
        with a history entry ``kind``/``name``; returns the commit's seq once durable.

        Raises:
            ActorNotFoundError: no such actor.
            ActorError: ``inspector/invalid_state`` or ``inspector/no_state`` (see
                `inspect_hooks.replace_state`); nothing changed.
        """
        return await replace_state(await self._instance(actor_id), value, kind, name, args)

    async def clear_queue(self, actor_id: str) -> int:
        """Delete the actor's queued messages (waking it); returns how many, once durable."""
        return await clear_queue(await self._instance(actor_id))

    def committer_stats(self) -> tuple[int, int]:
        """(batches, records) written by the committer so far."""
        committer = self._services.committer
        return (committer.batches, committer.records)


def _workflow_of(life: Lifecycle | None) -> WorkflowBinding | None:
    binding = None if life is None else life.workflow
    return binding if isinstance(binding, WorkflowBinding) else None


def _instance_of(conn: ConnImpl) -> ActorInstance:
    # Connections are opened only by `open_conn` on an ActorInstance (their ConnHost);
    # read without `cast` and the `owner` property, two calls on every action.
    return conn._inst  # type: ignore[return-value]


def _refuse_waiting_on_itself(inst: ActorInstance, life: Lifecycle, doing: str) -> None:
    """Raise if this task is the one running ``inst``'s start or shutdown.

    A call made (directly, or through other actors) from an actor's own start hooks
    (create_state, on_create, create_vars, on_wake) or shutdown hooks (on_sleep,
    on_destroy) would wait for the very hook that made it: fail it at once instead.

    Raises:
        ActorError: ``actor/call_cycle``.
    """
    if life.driver is not None and life.driver is asyncio.current_task():
        raise ActorError(
            f"actor {inst.name!r} ({inst.actor_id}) is {doing}, and this call comes from "
            f"its own {doing} hooks (directly or through other actors); it would wait for "
            "itself. Make the call from an action or from run instead",
            code="call_cycle",
        )


def _duplicate(query: ActorQuery) -> DuplicateKeyError:
    return DuplicateKeyError(
        f"an actor {query.name!r} with key {list(query.key)!r} already exists; use "
        "get_or_create() to reach it or choose another key"
    )


def _not_found_id(actor_id: str) -> ActorNotFoundError:
    return ActorNotFoundError(f"actor {actor_id} was not found (it may have been destroyed)")
