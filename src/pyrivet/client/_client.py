"""`Client`: the entry point for calling actors from Python.

```python
async with Client(runtime) as client:            # in-process
    room = client.get_or_create("counter", ["room-1"])
    print(await room.increment(5))

async with Client("http://127.0.0.1:6420", encoding="cbor") as client:   # over the network
    ...
```

The network client needs the ``client`` extra (``pip install 'pyrivet[client]'``).
"""

from __future__ import annotations

from typing import Any, Unpack

from .._protocol.listing import DEFAULT_PAGE, MAX_PAGE, ActorPage
from .._protocol.query import ActorQuery, normalize_key
from ..types import KeyLike
from ._handle import ActorHandle
from ._options import NetworkOptions
from ._transport import Transport, TransportSource

__all__ = ["Client"]


class Client:
    """Creates handles to actors over one transport.

    Args:
        target: a running `pyrivet.Runtime` (in-process calls), the URL of a server
            (``"http://127.0.0.1:6420"``: HTTP and WebSocket, the RivetKit client
            protocol), or any `Transport`.
        **network: options of the network client, only with a URL (see
            `NetworkOptions`): ``encoding`` (``"bare"`` default, ``"cbor"``,
            ``"json"``), ``namespace``, ``token``, ``headers``, ``pool_name``, ``clock``,
            ``backoff`` (reconnect `Backoff`), ``max_input_size``, ``timeout``,
            ``metadata_lookup``.

    Raises:
        ImportError: a URL was given but the ``client`` extra is not installed.
    """

    def __init__(
        self, target: TransportSource | Transport | str, **network: Unpack[NetworkOptions]
    ) -> None:
        if isinstance(target, str):
            from ._http import HttpTransport  # needs aiohttp/websockets: import on use

            self._transport: Transport = HttpTransport(target, **network)
            return
        if network:
            raise TypeError(f"{sorted(network)} only apply to Client(url)")
        if isinstance(target, TransportSource):
            self._transport = target.client_transport()
        else:
            self._transport = target

    def get(self, name: str, key: KeyLike = None, *, params: Any = None) -> ActorHandle:
        """A handle to an existing actor; using it fails with ActorNotFoundError if absent."""
        return ActorHandle(self._transport, ActorQuery("get", name, normalize_key(key)), params)

    def get_or_create(
        self, name: str, key: KeyLike = None, *, input: Any = None, params: Any = None
    ) -> ActorHandle:
        """A handle that creates the actor (with ``input``) on first use if it is absent."""
        query = ActorQuery("get_or_create", name, normalize_key(key), input)
        return ActorHandle(self._transport, query, params)

    async def create(
        self, name: str, key: KeyLike = None, *, input: Any = None, params: Any = None
    ) -> ActorHandle:
        """Create a new actor now and return a handle bound to its id.

        Raises:
            DuplicateKeyError: a live actor already has this name and key.
        """
        query = ActorQuery("create", name, normalize_key(key), input)
        actor_id = await self._transport.resolve(query)
        return self.get_for_id(name, actor_id, params=params)

    def get_for_id(self, name: str, actor_id: str, *, params: Any = None) -> ActorHandle:
        """A handle to the actor with this id."""
        query = ActorQuery("get_for_id", name, actor_id=actor_id)
        return ActorHandle(self._transport, query, params)

    async def list_actors(
        self, name: str | None = None, *, cursor: str | None = None, limit: int = DEFAULT_PAGE
    ) -> ActorPage:
        """A page of live actors (of type ``name`` if given), oldest first, without
        waking any. Pass ``page.cursor`` back as ``cursor`` for the next page; it is
        None after the last one.

        Raises:
            ValueError: ``limit`` is not from 1 to 1000.
            ActorError: a cursor that no page returned (``actor/invalid_request``).
        """
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be from 1 to {MAX_PAGE}, got {limit}")
        actors, following = await self._transport.list_actors(name, cursor, limit)
        return ActorPage(actors, following)

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
