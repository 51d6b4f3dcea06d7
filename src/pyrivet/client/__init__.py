"""The Python client (L3'): handles, connections and the transport seam.

Imports only L0-L1 so it can be used without the runtime. ``Client(runtime)`` calls
actors in-process; ``Client("http://host:6420")`` (and `SyncClient`) over the network,
with the ``client`` extra installed (``pip install 'pyrivet[client]'``).
"""

from .._protocol.listing import ActorInfo as ActorInfo, ActorPage as ActorPage
from .._util.backoff import Backoff as Backoff
from ._client import Client as Client
from ._connection import ActorConnection as ActorConnection, EventStream as EventStream
from ._errors import (
    ConnectionClosedError as ConnectionClosedError,
    ConnectionLostError as ConnectionLostError,
    HttpRequestError as HttpRequestError,
    NetworkError as NetworkError,
)
from ._extensions import RawResponse as RawResponse, RawWebSocket as RawWebSocket
from ._handle import ActorHandle as ActorHandle, SendResult as SendResult
from ._options import NetworkOptions as NetworkOptions
from ._resume import EventGap as EventGap
from ._sync import (
    SyncActorConnection as SyncActorConnection,
    SyncActorHandle as SyncActorHandle,
    SyncClient as SyncClient,
    SyncRawWebSocket as SyncRawWebSocket,
)
from ._transport import (
    ConnectionListener as ConnectionListener,
    Transport as Transport,
    TransportConnection as TransportConnection,
    TransportSource as TransportSource,
)

__all__ = [
    "ActorConnection",
    "ActorInfo",
    "ActorPage",
    "EventStream",
    "EventGap",
    "ActorHandle",
    "Client",
    "SyncClient",
    "SendResult",
    "SyncActorHandle",
    "SyncActorConnection",
    "SyncRawWebSocket",
    "Backoff",
    "NetworkOptions",
    "RawResponse",
    "RawWebSocket",
    "ConnectionClosedError",
    "ConnectionLostError",
    "HttpRequestError",
    "NetworkError",
    "ConnectionListener",
    "Transport",
    "TransportConnection",
    "TransportSource",
]
