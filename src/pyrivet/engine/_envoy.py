"""The envoy's connection to the Rivet Engine: commands in, events and KV out.

`Envoy` keeps one WebSocket to ``{endpoint}/envoys/connect`` open and reconnects with
backoff when it drops. Everything runs on the event loop of whoever entered
``async with Envoy(...)``; its tasks belong to one `TaskSupervisor` closed on exit.

What the engine expects, and how this module does it:

* Before each connection attempt: ``GET /metadata`` must report our envoy protocol
  version (else `EngineVersionError`, never retried) and the pool's runner config is
  created if missing.
* After the socket opens the envoy sends ``ToRivetMetadata`` (the actor names it hosts);
  the engine answers ``ToEnvoyInit``. On every Init the envoy resends every event not
  yet acknowledged and every KV request not yet answered.
* ``ToEnvoyPing`` is answered at once with ``ToRivetPong`` carrying the same ``ts``.
* ``ToEnvoyCommands``: the engine replays unacknowledged commands after a reconnect, so a
  command whose index is at or below the last one handled for its ``(actor, generation)``
  is dropped. The rest go, in order per actor, to the `EnvoyHandler`; after each batch
  the envoy acknowledges the last index of every actor (``ToRivetAckCommands``).
* Events (``ActorStateUpdate`` Running/Stopped, ``ActorIntent``, ``ActorSetAlarm``) get
  the next index of their actor and stay in a resend buffer until ``ToEnvoyAckEvents``
  covers them. One task sends them, in the order they were posted: the engine drops an
  event whose index is at or below the last it saw for the actor, so an event sent
  ahead of an earlier one would lose the earlier one.
* KV requests carry a request id; the answer resolves the matching future. A
  ``KvErrorResponse`` raises `EngineKVError`.
* A frame that does not decode is logged and the socket is reset (a fresh connection
  replays what was in flight); the envoy keeps serving.

`_transition` is the only place the connection state changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import uuid
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import quote

import websockets
from websockets.asyncio.client import ClientConnection

from .._codec.errors import InvalidMessageError
from .._util.backoff import Backoff
from .._util.clock import Clock, SystemClock
from .._util.tasks import TaskSupervisor
from ._admin import check_version, ensure_runner_config
from ._errors import EngineError, EngineKVError, EngineUnavailableError, EngineVersionError
from ._protocol import PROTOCOL_VERSION, decode_to_envoy, encode_to_rivet
from ._schema import Tagged

__all__ = ["ActorStart", "Envoy", "EnvoyConfig", "EnvoyHandler", "EnvoyState"]

log = logging.getLogger(__name__)

#: Close reasons after which reconnecting cannot help.
_FATAL_CLOSE: Final = ("ws.invalid_request", "ws.no_runner_config")
_BACKOFF: Final = Backoff(initial=0.25, maximum=10.0)
#: How many (actor, generation) command positions are remembered for replay dedup.
_HANDLED_MEMORY: Final = 100_000


@dataclass(frozen=True)
class EnvoyConfig:
    """Where and as what the envoy connects.

    Attributes:
        endpoint: the engine's HTTP URL (``http://127.0.0.1:6420``).
        namespace: the engine namespace (``RIVET_NAMESPACE``).
        pool: the pool (runner name) this envoy hosts actors for (``RIVET_POOL``).
        token: the engine's admin token (``RIVET_TOKEN``), or None.
        version: this deployment's version; the engine prefers envoys of the highest.
        envoy_key: this envoy's identity, stable across its reconnects.
        actor_names: the actor types this envoy hosts (sent in ``ToRivetMetadata``).
        backoff: waits between connection attempts.
        give_up_after: seconds of failed attempts after which `Envoy.run` raises
            `EngineUnavailableError` (None: retry forever).
        drain_timeout: how long closing waits for the engine to stop this envoy's actors.
        lost_write_timeout: after the envoy stopped its actors for being disconnected
            past the engine's lost threshold, how long their KV requests (the final
            save) still wait for a reconnect before they fail (`Envoy._watch_lost`).
    """

    endpoint: str
    namespace: str = "default"
    pool: str = "default"
    token: str | None = None
    version: int = 1
    envoy_key: str = field(default_factory=lambda: str(uuid.uuid4()))
    actor_names: tuple[str, ...] = ()
    backoff: Backoff = _BACKOFF
    give_up_after: float | None = None
    drain_timeout: float = 30.0
    lost_write_timeout: float = 10.0

    def connect_url(self) -> str:
        base = self.endpoint.rstrip("/").replace("http://", "ws://", 1)
        base = base.replace("https://", "wss://", 1)
        return (
            f"{base}/envoys/connect?protocol_version={PROTOCOL_VERSION}"
            f"&namespace={quote(self.namespace, safe='')}&envoy_key={quote(self.envoy_key)}"
            f"&version={self.version}&pool_name={quote(self.pool, safe='')}"
        )

    def subprotocols(self) -> list[str]:
        return ["rivet"] + ([f"rivet_token.{self.token}"] if self.token else [])


@dataclass(frozen=True)
class ActorStart:
    """A ``CommandStartActor``: which actor, which generation, and its config."""

    actor_id: str
    generation: int
    name: str
    key: str | None
    create_ts: int
    input: bytes | None
    preloaded_kv: dict[str, Any] | None
    #: ``(gateway_id, request_id)`` of the actor's WebSockets the engine's gateway kept
    #: open while it slept (``hibernating_requests``).
    hibernating_requests: tuple[tuple[bytes, bytes], ...] = ()


class EnvoyHandler(Protocol):
    """What hosts the actors: the envoy calls it for commands and tunnel traffic.

    The lifecycle hooks of one actor run one at a time, in command order, in a task
    owned by the envoy. If ``start_actor`` raises, the actor is reported
    ``Stopped(Error)`` with the message; if ``stop_actor`` raises, ``Stopped(Error)``
    too (the engine then applies the actor's crash policy).
    """

    async def start_actor(self, start: ActorStart) -> None:
        """Bring the actor up; return once it can serve requests."""
        ...

    async def stop_actor(self, actor_id: str, generation: int, reason: str) -> None:
        """Stop it: ``reason`` is a ``StopActorReason`` (``Destroy`` deletes it)."""
        ...

    def tunnel_message(self, message: dict[str, Any]) -> None:
        """A ``ToEnvoyTunnelMessage`` (gateway traffic); must not block."""
        ...


class EnvoyState(enum.Enum):
    """Where the connection is. Moves only through `Envoy._transition`."""

    IDLE = "idle"
    CONNECTING = "connecting"
    READY = "ready"  # connected and Init received
    BACKOFF = "backoff"  # waiting before the next attempt
    CLOSED = "closed"
    FAILED = "failed"


_ALLOWED: Final = {
    EnvoyState.IDLE: {EnvoyState.CONNECTING, EnvoyState.CLOSED},
    EnvoyState.CONNECTING: {
        EnvoyState.READY,
        EnvoyState.BACKOFF,
        EnvoyState.FAILED,
        EnvoyState.CLOSED,
    },
    EnvoyState.READY: {EnvoyState.BACKOFF, EnvoyState.CLOSED, EnvoyState.FAILED},
    EnvoyState.BACKOFF: {EnvoyState.CONNECTING, EnvoyState.FAILED, EnvoyState.CLOSED},
    EnvoyState.FAILED: {EnvoyState.CLOSED},
    EnvoyState.CLOSED: set(),
}


@dataclass
class _Actor:
    """What the envoy tracks per ``(actor_id, generation)``."""

    actor_id: str
    generation: int
    next_event: int = 0
    unacked: list[dict[str, Any]] = field(default_factory=list)
    work: asyncio.Task[None] | None = None
    stopped: bool = False
    received_stop: bool = False


@dataclass
class _KvCall:
    frame: Tagged
    future: asyncio.Future[Tagged]


class Envoy:
    """One envoy of one pool: ``async with Envoy(config, handler) as envoy``.

    Entering starts the connection loop in the background and returns at once; await
    `wait_ready` for the first Init. Exiting sends ``ToRivetStopping``, closes the
    socket and cancels every task the envoy owns.
    """

    def __init__(
        self, config: EnvoyConfig, handler: EnvoyHandler, *, clock: Clock | None = None
    ) -> None:
        self.config = config
        self._handler = handler
        self._clock: Clock = clock or SystemClock()
        self._tasks = TaskSupervisor("envoy")
        self._state = EnvoyState.IDLE
        self._ws: ClientConnection | None = None
        self._ready = asyncio.Event()
        self._failure: BaseException | None = None
        self._actors: dict[tuple[str, int], _Actor] = {}
        self._kv: dict[int, _KvCall] = {}
        #: Actors stopped as lost whose KV requests are refused here (`_withdraw`),
        #: until the engine starts them here again.
        self._withdrawn: set[str] = set()
        #: Last command index handled per (actor, generation), kept after the actor
        #: stopped: the engine replays commands it has not seen acknowledged.
        self._handled: OrderedDict[tuple[str, int], int] = OrderedDict()
        self._next_request = 0
        self._run_task: asyncio.Task[None] | None = None
        self._lost_watch: asyncio.Task[None] | None = None
        self._drained = False
        self._state_changed = asyncio.Condition()
        #: Events posted and not sent yet, in order; only `_flush` sends events.
        self._outbox: list[dict[str, Any]] = []
        self._flusher: asyncio.Task[None] | None = None
        #: Protocol metadata of the last Init (thresholds, max payload size).
        self.metadata: dict[str, Any] = {}
        #: How many connections reached Init (tests watch reconnects with it).
        self.connections = 0

    # -- lifetime -------------------------------------------------------------------

    @property
    def state(self) -> EnvoyState:
        return self._state

    async def __aenter__(self) -> Envoy:
        self._run_task = self._tasks.spawn(self._run_guarded(), name="envoy-run")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def drain(self) -> None:
        """Move this envoy's actors away before closing (idempotent).

        The envoy sends ``ToRivetStopping`` (the engine stops placing actors here) and
        asks to put each of its actors to sleep (``ActorIntent(Sleep)``); the engine
        answers each with ``StopActor(SleepIntent)``, the actor sleeps with its state
        committed and the next request wakes it on another envoy. (Rivet 2.3.19 does
        not stop an envoy's actors by itself on ``Stopping``; observed here.) Waits until
        every actor stopped, at most ``config.drain_timeout`` seconds; what is left is
        cut off when the socket closes (the engine treats it as lost after its
        threshold). A no-op unless connected.
        """
        ws = self._ws
        if self._drained or ws is None or self._state is not EnvoyState.READY:
            return
        self._drained = True
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(encode_to_rivet(Tagged("ToRivetStopping")))
        for actor in list(self._actors.values()):
            if not actor.stopped:
                self.post_intent(actor.actor_id, actor.generation, "sleep")
        if self._actors:
            try:
                async with asyncio.timeout(self.config.drain_timeout):
                    async with self._state_changed:
                        await self._state_changed.wait_for(self._all_stopped)
            except TimeoutError:
                log.warning(
                    "envoy: %d actors still running after the %g s drain; closing anyway",
                    len(self._actors),
                    self.config.drain_timeout,
                )

    async def aclose(self) -> None:
        """Drain (`drain`), close the socket, cancel everything."""
        await self.drain()
        ws = self._ws
        if self._state is not EnvoyState.CLOSED:
            await self._transition(EnvoyState.CLOSED, "closed by its owner")
        if ws is not None:
            await ws.close()
        await self._tasks.aclose()
        for call in self._kv.values():
            if not call.future.done():
                call.future.set_exception(
                    EngineError("the envoy closed before the engine answered")
                )
                call.future.exception()
        self._kv.clear()

    async def wait_ready(self) -> None:
        """Wait for the engine's Init.

        Raises:
            EngineVersionError / EngineUnavailableError / EngineError: the envoy gave up.
        """
        ready = asyncio.ensure_future(self._ready.wait())
        assert self._run_task is not None, "enter `async with Envoy(...)` first"
        try:
            await asyncio.wait({ready, self._run_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if self._failure is not None:
            raise self._failure
        if not self._ready.is_set():
            raise EngineError("the envoy stopped before it connected")

    async def wait_connections(self, count: int) -> None:
        """Wait until ``count`` connections in all have reached Init."""
        async with self._state_changed:
            await self._state_changed.wait_for(lambda: self.connections >= count)

    async def wait_state(self, state: EnvoyState) -> None:
        """Wait until the connection is in ``state``."""
        async with self._state_changed:
            await self._state_changed.wait_for(lambda: self._state is state)

    async def run_until_failed(self) -> None:
        """Wait until the envoy gives up (then raise why) or is closed."""
        assert self._run_task is not None, "enter `async with Envoy(...)` first"
        await asyncio.shield(self._run_task)
        if self._failure is not None:
            raise self._failure

    async def _transition(self, new: EnvoyState, why: str) -> None:
        """The one place the connection state changes (and the ready flag with it)."""
        old = self._state
        if new not in _ALLOWED[old]:
            raise AssertionError(f"envoy state {old.value} -> {new.value} is not allowed ({why})")
        self._state = new
        if new is EnvoyState.READY:
            self._ready.set()
        else:
            self._ready.clear()
        log.info("envoy %s: %s -> %s (%s)", self.config.envoy_key, old.value, new.value, why)
        async with self._state_changed:
            self._state_changed.notify_all()

    # -- the connection loop ----------------------------------------------------------

    async def _run_guarded(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except EngineError as exc:
            self._failure = exc
            log.error("envoy gave up: %s", exc)
            if self._state is not EnvoyState.CLOSED:
                await self._transition(EnvoyState.FAILED, str(exc))

    async def _run(self) -> None:
        config = self.config
        failures = 0
        failing_since: float | None = None
        while self._state is not EnvoyState.CLOSED:
            await self._transition(EnvoyState.CONNECTING, f"attempt {failures + 1}")
            connected_before = self.connections
            try:
                await check_version(config.endpoint, config.token)
                await ensure_runner_config(
                    config.endpoint, config.namespace, config.pool, config.token
                )
                reason = await self._session()
            except EngineVersionError:
                raise
            except websockets.InvalidURI as exc:
                raise EngineError(f"bad engine endpoint {config.endpoint!r}: {exc}") from None
            except (OSError, websockets.InvalidHandshake, EngineError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if self._closed():
                return
            if any(fatal in reason for fatal in _FATAL_CLOSE):
                raise EngineError(f"the engine refused this envoy ({reason}); not retrying")
            if self.connections > connected_before:  # it did connect: count afresh
                failures, failing_since = 0, None
            failures += 1
            now = self._clock.monotonic()
            failing_since = now if failing_since is None else failing_since
            limit = config.give_up_after
            if limit is not None and now - failing_since >= limit:
                raise EngineUnavailableError(
                    f"could not reach the Rivet Engine at {config.endpoint} for {limit:g} s "
                    f"(last error: {reason}); is `rivet-engine start` running there?"
                )
            was_ready = self.connections > connected_before
            await self._transition(EnvoyState.BACKOFF, reason)
            if was_ready and self._lost_watch is None:
                self._lost_watch = self._tasks.spawn(self._watch_lost(), name="envoy-lost")
            await self._clock.sleep(config.backoff.delay(failures))

    def _closed(self) -> bool:
        return self._state is EnvoyState.CLOSED

    async def _session(self) -> str:
        """One connection, from open to close; returns why it ended."""
        config = self.config
        async with websockets.connect(
            config.connect_url(),
            subprotocols=[websockets.Subprotocol(p) for p in config.subprotocols()],
            max_size=None,
            open_timeout=10,
        ) as ws:
            self._ws = ws
            try:
                names = {name: {"metadata": "{}"} for name in config.actor_names}
                await ws.send(
                    encode_to_rivet(
                        Tagged(
                            "ToRivetMetadata", {"prepopulate_actor_names": names, "metadata": None}
                        )
                    )
                )
                async for frame in ws:
                    if isinstance(frame, str):
                        log.warning("engine sent a text frame; resetting the socket")
                        return "text frame from the engine"
                    try:
                        message = decode_to_envoy(frame)
                    except InvalidMessageError as exc:
                        log.error("malformed frame from the engine (%s); resetting the socket", exc)
                        return f"malformed frame: {exc}"
                    await self._dispatch(message)
            except websockets.ConnectionClosed:
                pass
            finally:
                self._ws = None
            close = ws.close_reason or ""
            return f"socket closed ({ws.close_code} {close})".strip()

    # -- incoming -------------------------------------------------------------------

    async def _dispatch(self, message: Tagged) -> None:
        tag, val = message.tag, message.val
        if tag == "ToEnvoyPing":
            await self._send(Tagged("ToRivetPong", {"ts": val["ts"]}))
        elif tag == "ToEnvoyInit":
            self.metadata = val["metadata"]
            self.connections += 1
            # Every unacknowledged event goes again, first (the outbox holds a subset).
            self._outbox = [e for actor in self._actors.values() for e in actor.unacked]
            await self._transition(EnvoyState.READY, "Init received")
            if self._lost_watch is not None:
                self._lost_watch.cancel()
                self._lost_watch = None
            self._kick()
            for pending in list(self._kv.values()):
                await self._send(pending.frame)
        elif tag == "ToEnvoyCommands":
            await self._commands(val)
        elif tag == "ToEnvoyAckEvents":
            for checkpoint in val["last_event_checkpoints"]:
                actor = self._actors.get((checkpoint["actor_id"], checkpoint["generation"]))
                if actor is not None:
                    actor.unacked = [
                        e for e in actor.unacked if e["checkpoint"]["index"] > checkpoint["index"]
                    ]
                    self._maybe_forget(actor)
        elif tag == "ToEnvoyKvResponse":
            call = self._kv.pop(val["request_id"], None)
            if call is None:
                log.warning("KV response for unknown request %s", val["request_id"])
            elif not call.future.done():
                call.future.set_result(val["data"])
        elif tag == "ToEnvoyTunnelMessage":
            self._handler.tunnel_message(val)
        else:
            log.warning("ignoring %s: pyrivet does not use it", tag)

    async def _commands(self, commands: list[dict[str, Any]]) -> None:
        acks: set[tuple[str, int]] = set()
        for wrapper in commands:
            checkpoint = wrapper["checkpoint"]
            slot = (checkpoint["actor_id"], checkpoint["generation"])
            acks.add(slot)
            inner: Tagged = wrapper["inner"]
            log.debug("command %s for actor %s generation %s", inner.tag, *slot)
            actor = self._actors.get(slot)
            if checkpoint["index"] <= self._handled.get(slot, -1):
                continue  # replayed after a reconnect: handled already
            self._handled[slot] = checkpoint["index"]
            self._handled.move_to_end(slot)
            if len(self._handled) > _HANDLED_MEMORY:
                self._handled.popitem(last=False)
            if inner.tag == "CommandStartActor":
                self._withdrawn.discard(slot[0])
                actor = actor or _Actor(*slot)
                self._actors[slot] = actor
                config = inner.val["config"]
                start = ActorStart(
                    slot[0],
                    slot[1],
                    config["name"],
                    config["key"],
                    config["create_ts"],
                    config["input"],
                    inner.val["preloaded_kv"],
                    tuple(
                        (bytes(r["gateway_id"]), bytes(r["request_id"]))
                        for r in inner.val["hibernating_requests"]
                    ),
                )
                self._chain(actor, self._start(actor, start))
            elif actor is None:
                log.warning("stop command for unknown actor %s generation %s", *slot)
            else:
                actor.received_stop = True
                self._chain(actor, self._stop(actor, inner.val["reason"]))
        if acks:
            # Acknowledge the highest index handled per actor generation (a replay of
            # old commands only re-acknowledges them).
            checkpoints = [
                {"actor_id": slot[0], "generation": slot[1], "index": self._handled[slot]}
                for slot in sorted(acks)
                if slot in self._handled
            ]
            await self._send(
                Tagged("ToRivetAckCommands", {"last_command_checkpoints": checkpoints})
            )

    def _chain(self, actor: _Actor, step: Coroutine[Any, Any, None]) -> None:
        """Run ``step`` after the actor's previous lifecycle step, in a supervised task."""
        previous = actor.work

        async def run() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            await step

        actor.work = self._tasks.spawn(run(), name=f"envoy-actor-{actor.actor_id}")

    async def _start(self, actor: _Actor, start: ActorStart) -> None:
        try:
            await self._handler.start_actor(start)
        except Exception as exc:
            log.exception("actor %s failed to start", actor.actor_id)
            await self._stopped(actor, "Error", f"{type(exc).__name__}: {exc}")
            return
        self.post_event(actor.actor_id, actor.generation, _running())

    async def _stop(self, actor: _Actor, reason: str) -> None:
        if actor.stopped:
            # Stopped here already (the lost threshold) and reported: a later stop of
            # the same generation only ends it.
            if actor.received_stop:
                self._actors.pop((actor.actor_id, actor.generation), None)
            return
        code, message = ("Error", "envoy connection lost") if reason == "Lost" else ("Ok", None)
        try:
            await self._handler.stop_actor(actor.actor_id, actor.generation, reason)
        except Exception as exc:
            log.exception("actor %s failed to stop", actor.actor_id)
            code, message = "Error", f"{type(exc).__name__}: {exc}"
        await self._stopped(actor, code, message)

    async def _stopped(self, actor: _Actor, code: str, message: str | None) -> None:
        actor.stopped = True
        state = Tagged("ActorStateStopped", {"code": code, "message": message})
        self.post_event(
            actor.actor_id, actor.generation, Tagged("EventActorStateUpdate", {"state": state})
        )
        if actor.received_stop:
            # The engine acknowledges events in batches, so it may never ack these; a
            # stop it commanded ends the generation here (as RivetKit's envoy does).
            self._actors.pop((actor.actor_id, actor.generation), None)
        async with self._state_changed:
            self._state_changed.notify_all()

    async def _watch_lost(self) -> None:
        """Disconnected past the engine's lost threshold: the engine may have given our
        actors to other envoys, so stop them here (reason ``Lost``, after whatever
        lifecycle step each has running), lest two envoys run one actor. Each stop is
        reported ``Stopped(Error)`` and resent with the other unacknowledged events on
        the next Init: an engine that could not move them meanwhile (its leader was
        changing, so it recorded no envoy as lost) learns they stopped and wakes them
        on their next request, instead of routing requests here to an actor that is
        gone (``Error``, not ``Ok``: a ``Stopped(Ok)`` without an intent would destroy
        the actor). Cancelled when a new connection reaches Init in time."""
        threshold = self.metadata.get("envoy_lost_threshold", 15_000) / 1000
        await self._clock.sleep(threshold)
        self._lost_watch = None
        if self._state is EnvoyState.READY:
            return
        lost = [actor for actor in self._actors.values() if not actor.stopped]
        log.warning(
            "envoy: disconnected for %.1f s (the engine's lost threshold): stopping %d actors",
            threshold,
            len(lost),
        )
        for actor in lost:
            self._chain(actor, self._stop(actor, "Lost"))
        if not lost:
            return
        # Their stops save a last time, which waits for a reconnect (an engine that
        # did not move them accepts it). Bounded: past it their writes fail here and
        # are never resent, so a write not acknowledged by now is never acknowledged.
        await self._clock.sleep(self.config.lost_write_timeout)
        if self._ready.is_set():
            return
        for actor in lost:
            self._withdraw(actor.actor_id)

    def _withdraw(self, actor_id: str) -> None:
        """Fail every KV request of ``actor_id`` waiting for the engine and refuse new
        ones (until the engine starts it here again); a withdrawn request is not resent
        after a reconnect. (One sent before the socket dropped may have been applied
        by the engine: its outcome is unknown, as after a crash, but it is never
        reported as acknowledged.)"""
        self._withdrawn.add(actor_id)
        calls = [(rid, c) for rid, c in self._kv.items() if c.frame.val["actor_id"] == actor_id]
        log.error(
            "envoy: actor %s was stopped as lost and the engine is still unreachable after "
            "%g s more: failing its %d unacknowledged KV writes (its last changes are lost, "
            "as in a crash; none was acknowledged)",
            actor_id,
            self.config.lost_write_timeout,
            len(calls),
        )
        for request_id, call in calls:
            del self._kv[request_id]
            if not call.future.done():
                call.future.set_exception(_lost_error(actor_id))

    def _maybe_forget(self, actor: _Actor) -> None:
        if actor.stopped and not actor.unacked:
            self._actors.pop((actor.actor_id, actor.generation), None)

    def _all_stopped(self) -> bool:
        return all(actor.stopped for actor in self._actors.values())

    # -- outgoing -------------------------------------------------------------------

    async def _send(self, message: Tagged) -> bool:
        """Send a frame if connected; False if there is no socket (the caller buffers)."""
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(encode_to_rivet(message))
        except websockets.ConnectionClosed:
            return False
        return True

    def post_event(self, actor_id: str, generation: int, event: Tagged) -> None:
        """Report an actor event (never blocks): sent in posting order by the envoy's
        sender task, kept and resent until the engine acknowledges it."""
        actor = self._actors.get((actor_id, generation))
        if actor is None:
            actor = self._actors[(actor_id, generation)] = _Actor(actor_id, generation)
        wrapper = {
            "checkpoint": {
                "actor_id": actor_id,
                "generation": generation,
                "index": actor.next_event,
            },
            "inner": event,
        }
        actor.next_event += 1
        actor.unacked.append(wrapper)
        log.debug("event %s for actor %s generation %s", _describe(event), actor_id, generation)
        self._outbox.append(wrapper)
        self._kick()

    def post_intent(self, actor_id: str, generation: int, intent: str) -> None:
        """Ask the engine to stop the actor: ``intent`` is ``"sleep"`` or ``"stop"``."""
        tag = {"sleep": "ActorIntentSleep", "stop": "ActorIntentStop"}[intent]
        self.post_event(actor_id, generation, Tagged("EventActorIntent", {"intent": Tagged(tag)}))

    async def send_event(self, actor_id: str, generation: int, event: Tagged) -> None:
        """`post_event`, for callers in a coroutine."""
        self.post_event(actor_id, generation, event)

    async def send_intent(self, actor_id: str, generation: int, intent: str) -> None:
        """`post_intent`, for callers in a coroutine."""
        self.post_intent(actor_id, generation, intent)

    def _kick(self) -> None:
        """Start the sender task unless it runs (or the envoy is closed)."""
        if self._state is not EnvoyState.READY or not self._outbox:
            return  # the next Init resends every unacknowledged event
        if self._flusher is None or self._flusher.done():
            with contextlib.suppress(RuntimeError):  # closed: nothing more is sent
                self._flusher = self._tasks.spawn(self._flush(), name="envoy-events")

    async def _flush(self) -> None:
        while self._outbox and self._state is EnvoyState.READY:
            batch, self._outbox = self._outbox, []
            await self._send(Tagged("ToRivetEvents", batch))

    async def send_tunnel(self, message: dict[str, Any]) -> bool:
        """Send a ``ToRivetTunnelMessage``; False if the socket is down (it is lost)."""
        return await self._send(Tagged("ToRivetTunnelMessage", message))

    async def kv(self, actor_id: str, data: Tagged) -> Tagged:
        """One KV request for ``actor_id``; resent after a reconnect until answered.

        Raises:
            EngineKVError: the engine answered with ``KvErrorResponse``.
            EngineError: the envoy closed before an answer came, or the actor was
                stopped as lost and the engine stayed unreachable (`_withdraw`).
        """
        if actor_id in self._withdrawn:
            raise _lost_error(actor_id)
        request_id = self._next_request
        self._next_request = (self._next_request + 1) % (1 << 32)
        frame = Tagged(
            "ToRivetKvRequest", {"actor_id": actor_id, "request_id": request_id, "data": data}
        )
        future: asyncio.Future[Tagged] = asyncio.get_running_loop().create_future()
        self._kv[request_id] = _KvCall(frame, future)
        try:
            if self._state is EnvoyState.READY:
                await self._send(frame)
            answer = await future
        finally:
            self._kv.pop(request_id, None)
        if answer.tag == "KvErrorResponse":
            raise EngineKVError(
                f"the engine refused a {data.tag} for actor {actor_id}: {answer.val['message']}"
            )
        return answer


def _lost_error(actor_id: str) -> EngineError:
    return EngineError(
        f"actor {actor_id} was stopped here as lost (the engine unreachable past its lost "
        "threshold); its KV write was not acknowledged and is not sent"
    )


def _describe(event: Tagged) -> str:
    """``EventActorStateUpdate(ActorStateStopped Error)`` and the like, for debug logs."""
    inner = event.val.get("state") or event.val.get("intent") if event.val else None
    if not isinstance(inner, Tagged):
        return event.tag
    code = inner.val.get("code") if isinstance(inner.val, dict) else None
    return f"{event.tag}({inner.tag}{' ' + code if code else ''})"


def _running() -> Tagged:
    return Tagged("EventActorStateUpdate", {"state": Tagged("ActorStateRunning")})
