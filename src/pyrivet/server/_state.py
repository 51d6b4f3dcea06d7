"""`ServerState`: what every handler of one app shares (runtime, limits, policies)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .cors import CorsPolicy
from .gateway import ActorDirectory

if TYPE_CHECKING:
    from .._runtime.runtime import Runtime

__all__ = ["ServerOptions", "ServerState"]


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Tunables of the server (see `pyrivet.server.create_app`)."""

    cors: CorsPolicy | None
    client_endpoint: str | None
    max_raw_request_size: int
    max_send_queue: int


class ServerState:
    """The started runtime and the per-app helpers built around it."""

    __slots__ = ("directory", "max_incoming", "max_outgoing", "options", "runtime")

    def __init__(self, runtime: Runtime, options: ServerOptions) -> None:
        self.runtime = runtime
        self.options = options
        self.directory = ActorDirectory(runtime)
        self.max_incoming = runtime.registry.max_incoming_message_size
        self.max_outgoing = runtime.registry.max_outgoing_message_size
