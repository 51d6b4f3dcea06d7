"""A registry's actors hosted for the Rivet Engine: `EnvoyHost`.

`EnvoyHost` is the `EnvoyHandler` of envoy mode: the engine's ``StartActor`` creates
(first start, with the engine's actor id) or wakes the actor in the `Runtime`;
``StopActor`` puts it to sleep, or destroys it for ``Destroy``; tunnelled gateway
traffic goes to the ASGI app of standalone mode through `AsgiTunnel`. WebSockets the
gateway kept open while the actor slept (``StartActor.hibernatingRequests``) are
handed back to the tunnel once the actor is up (`AsgiTunnel.restore`): their
connections were parked by the runtime and are attached again by its wake. Those this
process does not hold (the envoy restarted, or the actor moved here) are revived
first from the socket records stored with their connections (`_revive_sockets`).

The engine owns the actors' lifecycle (the host is the runtime's `Placement`):

* an actor that wants to sleep (idle past ``sleep_timeout``, ``c.sleep()``) or be
  destroyed (``c.destroy()``) keeps serving while the envoy reports
  ``ActorIntent(Sleep)`` / ``ActorIntent(Stop)``; it sleeps (or is destroyed) when the
  engine answers ``StopActor(SleepIntent)`` / ``StopActor(StopIntent)``. (The engine
  ignores intents once it began stopping an actor: a destroy asked after a sleep intent
  goes through its API, ``DELETE /actors/{id}``, which turns that sleep into a destroy.)
  Requests that arrive meanwhile are served; the engine marks the actor sleeping at the intent and
  wakes it again after the stop if a request came for it (``rewake_after_stop``);
* the runtime wakes an actor only between the engine's ``StartActor`` and its
  ``StopActor``. A request that reaches the actor after that (it was tunnelled while
  the actor stopped) is answered 503 ``guard.actor_stopped_while_waiting``, which the
  engine's gateway retries once the engine started the actor again (on any envoy);
* the actor's earliest schedule is reported with ``ActorSetAlarm`` whenever it
  changes and when the actor stops, so the engine wakes a sleeping actor at that time;
  the runtime fires only schedules of actors it hosts (due ones at once on wake).

Runs on the event loop of ``async with EnvoyHost(...)``; the runtime must be started
before and closed after it. If the runtime's storage is an `EngineStore` (the default of
``pyrivet serve --engine``), the host binds it to its envoy and tells it which actors the
engine started here (``adopt`` / ``release``); the actor's stored schedules are loaded
into the runtime's scheduler when it starts here and dropped when it stops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any, Self

import msgspec

from .._codec import cbor
from .._codec.errors import InvalidMessageError
from .._runtime.hibernation import CONN_PREFIX, ConnRecord
from .._runtime.placement import Placement
from .._runtime.runtime import Runtime
from .._util.tasks import TaskSupervisor
from ..actor._client import ActorClient
from ..errors import ActorError, ActorNotFoundError
from ._admin import destroy_actor
from ._envoy import ActorStart, Envoy, EnvoyConfig, EnvoyHandler
from ._errors import EngineError
from ._keys import parse_actor_key
from ._schema import Tagged
from ._socket_record import SocketRecord, decode_socket
from ._store import EngineStore
from ._tunnel import AsgiApp, AsgiTunnel

__all__ = ["EnvoyHost"]

log = logging.getLogger(__name__)

#: Seconds a start waits for the app to take the sockets it revives (`_revive_sockets`).
_REVIVE_TIMEOUT = 10.0


class EnvoyHost(EnvoyHandler, Placement):
    """Hosts ``runtime``'s actors for the engine; serves tunnelled traffic with ``app``."""

    def __init__(
        self,
        runtime: Runtime,
        app: AsgiApp,
        config: EnvoyConfig,
        *,
        actor_client: ActorClient | None = None,
    ) -> None:
        """``actor_client`` (optional, owned by the caller) is what ``c.client()`` of the
        hosted actors returns: a `pyrivet.client.Client` of the engine's gateway, which
        wakes the callee wherever the engine places it. Without it, calls between actors
        stay in this process and reach only actors the engine started here."""
        self.runtime = runtime
        self.actor_client = actor_client
        if not config.actor_names:
            names = tuple(runtime.registry.definitions)
            config = dataclasses.replace(config, actor_names=names)
        self.envoy = Envoy(config, self)
        store = runtime.storage
        #: The engine-backed store, if the runtime uses one.
        self.store = store if isinstance(store, EngineStore) else None
        if self.store is not None:
            self.store.bind(self.envoy)
        self.tunnel = AsgiTunnel(app, self.envoy.send_tunnel, self._max_payload)
        #: The generation the engine started each hosted actor with, from its
        #: ``StartActor`` until its ``StopActor`` (while it may be woken here).
        self._generations: dict[str, int] = {}
        #: The alarm last reported per actor in its current generation.
        self._alarms: dict[str, int | None] = {}
        #: Hosted actors that asked to be destroyed (``c.destroy()``).
        self._destroying: set[str] = set()
        #: Calls of the engine's API made beside a stop (see `stop_actor`).
        self._tasks = TaskSupervisor("envoy host")

    async def __aenter__(self) -> Self:
        self.runtime.attach_placement(self, self.actor_client)
        await self.envoy.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Actors first (their in-flight requests can finish while they go to sleep),
        # then answer what is still open, then close the socket.
        await self.envoy.drain()
        await self.tunnel.aclose()
        await self.envoy.aclose()
        await self._tasks.aclose()

    def _max_payload(self) -> int | None:
        limit = self.envoy.metadata.get("max_response_payload_size")
        return int(limit) if limit else None

    # -- EnvoyHandler ---------------------------------------------------------------------

    async def start_actor(self, start: ActorStart) -> None:
        """Create or wake the actor; raises (reported ``Stopped(Error)``) if it cannot."""
        key = parse_actor_key(start.key)
        value: Any = None
        if start.input is not None:
            try:
                value = cbor.decode(start.input)
            except InvalidMessageError as exc:
                raise ValueError(f"the actor input is not CBOR: {exc}") from None
        self._generations[start.actor_id] = start.generation
        self._alarms.pop(start.actor_id, None)
        try:
            if self.store is not None:
                self.store.adopt(start.actor_id)
                await self.runtime.track_alarms(start.actor_id)
            await self._revive_sockets(start)
            await self.runtime.host(start.actor_id, start.name, key, value)
            await self.tunnel.restore(start.actor_id, start.hibernating_requests)
        except BaseException:
            self._end_generation(start.actor_id, start.generation)
            await self._release_storage(start.actor_id)
            raise

    async def _revive_sockets(self, start: ActorStart) -> None:
        """Before the actor wakes: serve again each socket the gateway kept open for it
        that this process does not hold (the envoy restarted, or the actor moved here),
        from the socket record stored with its connection (``_socket_record.py``). A
        socket without a record, or whose revival fails, is closed by the tunnel's
        `restore` after the wake (its client reconnects)."""
        wanted = {g + r for g, r in start.hibernating_requests if not self.tunnel.holds(g, r)}
        if not wanted:
            return
        actor_id = start.actor_id
        self.tunnel.sleeping(actor_id)  # their messages wait for the wake
        revivals: list[asyncio.Future[None]] = []
        for data in (await self.runtime.storage.load_workflow(actor_id)).items():
            found = _socket_of(actor_id, *data)
            if found is None:
                continue
            conn, socket = found
            if socket.gateway_id + socket.request_id in wanted:
                revivals.append(
                    self.tunnel.revive(actor_id, socket, conn.id, sequenced=conn.sequenced)
                )
        if not revivals:
            return
        done, pending = await asyncio.wait(revivals, timeout=_REVIVE_TIMEOUT)
        for future in pending:
            future.cancel()
        failed = [f.exception() for f in done if f.exception() is not None]
        for error in failed:
            log.warning("actor %s: a hibernated WebSocket was not revived: %s", actor_id, error)
        log.info(
            "actor %s: %d of %d hibernated WebSockets served again here",
            actor_id,
            len(done) - len(failed),
            len(start.hibernating_requests),
        )

    async def stop_actor(self, actor_id: str, generation: int, reason: str) -> None:
        """Sleep the actor (state saved), or destroy it and its data for ``Destroy`` and
        ``StopIntent`` (the engine destroys an actor that stops after a stop intent)."""
        try:
            await self._stop(actor_id, generation, reason)
        finally:
            # Stopped here (even if its stop failed): the engine may start it elsewhere,
            # which fires its schedules; this envoy may not touch its KV any more.
            await self._release_storage(actor_id)

    async def _stop(self, actor_id: str, generation: int, reason: str) -> None:
        if reason == "SleepIntent" and actor_id in self._destroying:
            # The engine took the sleep intent and ignored the later stop intent. Its API
            # turns the pending sleep into a destroy; it answers only once the actor is
            # destroyed, i.e. after our Stopped event, so the call runs beside the stop.
            self._tasks.spawn(self._destroy_in_engine(actor_id), name=f"destroy:{actor_id}")
            reason = "StopIntent"
        if reason in ("Destroy", "StopIntent"):
            try:
                await self.runtime.destroy(actor_id)
            except ActorNotFoundError:
                log.info("destroy of actor %s: not stored here, nothing to delete", actor_id)
            finally:
                self._end_generation(actor_id, generation)
            return
        # From here on a request for the actor is refused (retried by the gateway) rather
        # than waking it here behind the engine's back.
        self._end_generation(actor_id, generation)
        self.tunnel.sleeping(actor_id)
        await self.runtime.sleep(actor_id)
        if reason == "Lost":
            # The engine gave the actor to another envoy: nothing to tell it, and its
            # sockets here are not restored (what came for them is refused now).
            await self.tunnel.restore(actor_id, ())
            return
        # Its last word before Stopped: when the engine must wake it (None: only on
        # demand). Sent even if unchanged, as the sleep's final commit may have moved it.
        alarm = self.runtime.earliest_alarm(actor_id)
        self.envoy.post_event(actor_id, generation, _set_alarm(alarm))

    async def _release_storage(self, actor_id: str) -> None:
        """Forget the engine store's hold on ``actor_id`` (no-op with local storage)."""
        if self.store is not None:
            self.runtime.untrack_alarms(actor_id)
            await self.store.release(actor_id)

    def tunnel_message(self, message: dict[str, Any]) -> None:
        self.tunnel.handle(message)

    async def _destroy_in_engine(self, actor_id: str) -> None:
        config = self.envoy.config
        try:
            await destroy_actor(config.endpoint, config.namespace, actor_id, config.token)
        except (OSError, EngineError) as exc:
            log.error(
                "actor %s was destroyed here, but the engine refused to destroy it (%s): "
                "its next start begins afresh",
                actor_id,
                exc,
            )

    def _end_generation(self, actor_id: str, generation: int) -> None:
        """Forget what this host kept for the actor's ``generation`` (a later one stays)."""
        if self._generations.get(actor_id) == generation:
            del self._generations[actor_id]
            self._alarms.pop(actor_id, None)
            self._destroying.discard(actor_id)

    # -- Placement ------------------------------------------------------------------------

    def request_stop(self, actor_id: str, kind: str) -> None:
        generation = self._generations.get(actor_id)
        if generation is None:
            log.debug("actor %s asks to %s but is not hosted here; ignored", actor_id, kind)
            return
        if kind == "destroy":
            self._destroying.add(actor_id)
        self.envoy.post_intent(actor_id, generation, "sleep" if kind == "sleep" else "stop")

    def refuse_wake(self, actor_id: str) -> BaseException | None:
        if actor_id in self._generations:
            return None
        return ActorError(
            f"actor {actor_id} is not running on this envoy (it stopped while the request "
            "was on its way); the engine's gateway retries once the actor runs again",
            group="guard",
            code="actor_stopped_while_waiting",
        )

    def alarm_changed(self, actor_id: str, fire_at_ms: int | None) -> None:
        generation = self._generations.get(actor_id)
        if generation is None or self._alarms.get(actor_id, -1) == fire_at_ms:
            return
        self._alarms[actor_id] = fire_at_ms
        self.envoy.post_event(actor_id, generation, _set_alarm(fire_at_ms))


def _socket_of(actor_id: str, key: str, data: bytes) -> tuple[ConnRecord, SocketRecord] | None:
    """The stored connection at ``key`` of the actor's records and its socket record,
    if it is a connection with one (a record that does not decode is logged)."""
    if not key.startswith(CONN_PREFIX):
        return None
    try:
        conn = msgspec.msgpack.decode(data, type=ConnRecord)
        if conn.socket is None:
            return None
        return conn, decode_socket(conn.socket)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.error(
            "actor %s: stored connection %s does not decode (%s); skipped", actor_id, key, exc
        )
        return None


def _set_alarm(fire_at_ms: int | None) -> Tagged:
    return Tagged("EventActorSetAlarm", {"alarm_ts": fire_at_ms})
