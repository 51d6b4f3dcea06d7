"""The Python client (L3'): handles, connections and the transport seam.

Imports only L0-L1 so it can be used without the runtime.
"""

from ._client import Client as Client
from ._connection import ActorConnection as ActorConnection
from ._handle import ActorHandle as ActorHandle
from ._transport import (
    ConnectionListener as ConnectionListener,
    Transport as Transport,
    TransportConnection as TransportConnection,
    TransportSource as TransportSource,
)

__all__ = [
    "ActorConnection",
    "ActorHandle",
    "Client",
    "ConnectionListener",
    "Transport",
    "TransportConnection",
    "TransportSource",
]
