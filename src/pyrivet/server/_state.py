"""`ServerState`: what every handler of one app shares (runtime, limits, policies)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .cors import CorsPolicy
from .gateway import ActorDirectory
from .inspector.hubs import LiveHubs

if TYPE_CHECKING:
    from .._runtime.runtime import Runtime

__all__ = ["ServerOptions", "ServerState"]


class Leaving(Protocol):
    """A live ``connect`` WebSocket, as `ServerState.go_away` sees it."""

    def go_away(self) -> None:
        """Close the socket (after in-flight replies) with ``ws.going_away``."""

    async def wait_closed(self) -> None:
        """Return once the close frame is sent or the client is gone."""


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Tunables of the server (see `pyrivet.server.create_app`)."""

    cors: CorsPolicy | None
    client_endpoint: str | None
    max_raw_request_size: int
    max_send_queue: int
    #: The bearer token of ``/inspector`` routes; None turns the inspector off.
    inspector_token: str | None = None
    #: Send an action's reply ahead of the events released with it (`Outbox`).
    reply_before_events: bool = False


class ServerState:
    """The started runtime and the per-app helpers built around it."""

    __slots__ = (
        "directory",
        "going_away",
        "inspector_hubs",
        "max_incoming",
        "max_outgoing",
        "options",
        "runtime",
        "sockets",
    )

    def __init__(self, runtime: Runtime, options: ServerOptions) -> None:
        self.runtime = runtime
        self.options = options
        self.directory = ActorDirectory(runtime)
        self.max_incoming = runtime.registry.max_incoming_message_size
        self.max_outgoing = runtime.registry.max_outgoing_message_size
        #: The live ``connect`` WebSockets (added at accept, removed at close).
        self.sockets: set[Leaving] = set()
        #: Set by `go_away`: sockets accepted from then on are closed at once.
        self.going_away = False
        #: The live inspectors' hubs (one per watched actor).
        self.inspector_hubs = LiveHubs()

    async def go_away(self, timeout: float) -> None:
        """Close every ``connect`` WebSocket with 1012 ``ws.going_away`` (the server stops).

        Each socket closes once its in-flight actions replied; this waits for the
        close frames for at most ``timeout`` seconds (the caller's shutdown then
        closes whatever is left). RivetKit's client reads ``ws.going_away`` as "the
        server goes away, reconnect": it reconnects, and retries with backoff if an
        attempt is closed the same way.
        """
        self.going_away = True
        sockets = list(self.sockets)
        for sock in sockets:
            sock.go_away()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                for sock in sockets:
                    await sock.wait_closed()
