"""A registry's actors hosted for the Rivet Engine: `EnvoyHost`.

`EnvoyHost` is the `EnvoyHandler` of envoy mode: the engine's ``StartActor`` creates
(first start, with the engine's actor id) or wakes the actor in the `Runtime`;
``StopActor`` puts it to sleep, or destroys it for ``Destroy``; tunnelled gateway
traffic goes to the ASGI app of standalone mode through `AsgiTunnel`.

Runs on the event loop of ``async with EnvoyHost(...)``; the runtime must be started
before and closed after it. If the runtime's storage is an `EngineStore` (the default of
``pyrivet serve --engine``), the host binds it to its envoy and tells it which actors the
engine started here (``adopt`` / ``release``); the actor's stored schedules are loaded
into the runtime's scheduler when it starts here and dropped when it stops.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from .._codec import cbor
from .._codec.errors import InvalidMessageError
from .._runtime.runtime import Runtime
from ..errors import ActorNotFoundError
from ._envoy import ActorStart, Envoy, EnvoyConfig
from ._keys import parse_actor_key
from ._store import EngineStore
from ._tunnel import AsgiApp, AsgiTunnel

__all__ = ["EnvoyHost"]

log = logging.getLogger(__name__)


class EnvoyHost:
    """Hosts ``runtime``'s actors for the engine; serves tunnelled traffic with ``app``."""

    def __init__(self, runtime: Runtime, app: AsgiApp, config: EnvoyConfig) -> None:
        self.runtime = runtime
        if not config.actor_names:
            names = tuple(runtime.registry.definitions)
            config = dataclasses.replace(config, actor_names=names)
        self.envoy = Envoy(config, self)
        store = runtime.storage
        #: The engine-backed store, if the runtime uses one.
        self.store = store if isinstance(store, EngineStore) else None
        if self.store is not None:
            self.store.bind(self.envoy)
        self.tunnel = AsgiTunnel(app, self.envoy.send_tunnel)

    async def __aenter__(self) -> EnvoyHost:
        await self.envoy.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Actors first (their in-flight requests can finish while they go to sleep),
        # then answer what is still open, then close the socket.
        await self.envoy.drain()
        await self.tunnel.aclose()
        await self.envoy.aclose()

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
        if self.store is not None:
            self.store.adopt(start.actor_id)
            await self.runtime.track_alarms(start.actor_id)
        await self.runtime.host(start.actor_id, start.name, key, value)

    async def stop_actor(self, actor_id: str, generation: int, reason: str) -> None:
        """Sleep the actor (state saved), or destroy it and its data for ``Destroy``."""
        try:
            if reason == "Destroy":
                try:
                    await self.runtime.destroy(actor_id)
                except ActorNotFoundError:
                    log.info("destroy of actor %s: not stored here, nothing to delete", actor_id)
            else:
                await self.runtime.sleep(actor_id)
        finally:
            if self.store is not None:
                # Stopped here (even if its stop failed): the engine may start it
                # elsewhere, which fires its schedules; this envoy may not touch its KV.
                self.runtime.untrack_alarms(actor_id)
                await self.store.release(actor_id)

    def tunnel_message(self, message: dict[str, Any]) -> None:
        self.tunnel.handle(message)
