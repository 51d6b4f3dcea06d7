"""A registry's actors hosted for the Rivet Engine: `EnvoyHost`.

`EnvoyHost` is the `EnvoyHandler` of envoy mode: the engine's ``StartActor`` creates
(first start, with the engine's actor id) or wakes the actor in the `Runtime`;
``StopActor`` puts it to sleep, or destroys it for ``Destroy``; tunnelled gateway
traffic goes to the ASGI app of standalone mode through `AsgiTunnel`.

Runs on the event loop of ``async with EnvoyHost(...)``; the runtime must be started
before and closed after it. What the runtime stores stays in the runtime's own storage
driver (not yet the engine's KV), so an actor's state lives on the envoy that wrote it.
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
        self.tunnel = AsgiTunnel(app, self.envoy.send_tunnel, self._max_payload)

    async def __aenter__(self) -> EnvoyHost:
        await self.envoy.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Actors first (their in-flight requests can finish while they go to sleep),
        # then answer what is still open, then close the socket.
        await self.envoy.drain()
        await self.tunnel.aclose()
        await self.envoy.aclose()

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
        await self.runtime.host(start.actor_id, start.name, key, value)

    async def stop_actor(self, actor_id: str, generation: int, reason: str) -> None:
        """Sleep the actor (state saved), or destroy it and its data for ``Destroy``."""
        if reason == "Destroy":
            try:
                await self.runtime.destroy(actor_id)
            except ActorNotFoundError:
                log.info("destroy of actor %s: not stored here, nothing to delete", actor_id)
        else:
            await self.runtime.sleep(actor_id)

    def tunnel_message(self, message: dict[str, Any]) -> None:
        self.tunnel.handle(message)
