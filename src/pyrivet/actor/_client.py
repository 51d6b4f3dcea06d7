"""What ``c.client()`` returns: `ActorClient`, `ActorRef` and `ActorConnectionRef`.

Actor code calls other actors (and itself) through the same client outside code uses:
``pyrivet.client.Client`` over the runtime's in-process transport. These Protocols say
what that client offers, so that the definition API (L2) can type ``c.client()`` without
importing the client package (L3'), which sits beside the runtime, not below it; the
real `Client`, `ActorHandle` and `ActorConnection` satisfy them (the facade, which
plugs `Client` into the runtime, is type-checked against `ActorClient`).

```python
@coordinator.action
async def total(c, shard_keys: list[str]) -> int:
    client = c.client()
    counts = [await client.get_or_create("shard", [k]).get_count() for k in shard_keys]
    return sum(counts)
```

Attribute calls (``handle.increment(5)``) are typed loosely, as ``Callable[..., Awaitable]``;
``handle.call(increment, 5)`` has the action's return type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, Literal, ParamSpec, Protocol, TypeVar, overload

from ..types import KeyLike
from ._queue import SendResult

__all__ = ["ActionCaller", "ActorClient", "ActorConnectionRef", "ActorRef"]

P = ParamSpec("P")
R = TypeVar("R")


class ActionCaller(Protocol):
    """Calls actions: by name, by attribute, or typed by the action function."""

    async def action(self, name: str, *args: Any) -> Any:
        """Call action ``name`` with positional ``args`` and return its result."""
        ...

    @overload
    async def call(
        self,
        action: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R: ...

    @overload
    async def call(
        self, action: Callable[Concatenate[Any, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R: ...

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]: ...


class ActorConnectionRef(ActionCaller, Protocol):
    """A connection to an actor (`pyrivet.client.ActorConnection`): actions and events.

    Open it with ``async with`` (closed on exit) or ``await conn.open()``; a connection
    kept across actions (opened in ``on_wake``, say) should be closed in ``on_sleep``.
    Event callbacks run on the event loop, outside any action of the receiving actor.
    """

    @property
    def actor_id(self) -> str | None: ...

    @property
    def is_open(self) -> bool: ...

    async def open(self) -> ActorConnectionRef: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> ActorConnectionRef: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def on(self, event: str, callback: Callable[..., Any]) -> Callable[[], None]:
        """Call ``callback(*args)`` for each ``event``; returns an unsubscribe function."""
        ...

    def once(self, event: str, callback: Callable[..., Any]) -> Callable[[], None]:
        """Like `on`, for the next ``event`` only."""
        ...


class ActorRef(ActionCaller, Protocol):
    """A lazy reference to one actor (`pyrivet.client.ActorHandle`)."""

    async def resolve(self) -> str:
        """The actor's id (creating it for a get_or_create reference)."""
        ...

    def connect(self, *, params: Any = None) -> ActorConnectionRef:
        """A connection to this actor; open it with ``async with``."""
        ...

    @overload
    async def send(self, name: str, body: Any = None) -> None: ...
    @overload
    async def send(
        self, name: str, body: Any = None, *, wait: Literal[True], timeout: float | None = None
    ) -> SendResult: ...
    @overload
    async def send(
        self, name: str, body: Any = None, *, wait: bool, timeout: float | None = None
    ) -> SendResult | None: ...
    async def send(
        self, name: str, body: Any = None, *, wait: bool = False, timeout: float | None = None
    ) -> SendResult | None:
        """Send ``body`` to the actor's queue ``name`` (see `pyrivet.client.ActorHandle.send`)."""
        ...


class ActorClient(Protocol):
    """Reaches actors by name and key or by id (`pyrivet.client.Client`).

    Errors are the ones an outside client receives: `pyrivet.errors.ActorError`
    subclasses rebuilt from ``(group, code, message, metadata)``, so a `UserError`
    raised by the called actor arrives with its code and metadata.
    """

    def get(self, name: str, key: KeyLike = None, *, params: Any = None) -> ActorRef:
        """A reference to an existing actor (using it fails with ActorNotFoundError if absent)."""
        ...

    def get_or_create(
        self, name: str, key: KeyLike = None, *, input: Any = None, params: Any = None
    ) -> ActorRef:
        """A reference that creates the actor (with ``input``) on first use if absent."""
        ...

    async def create(
        self, name: str, key: KeyLike = None, *, input: Any = None, params: Any = None
    ) -> ActorRef:
        """Create a new actor now (DuplicateKeyError if the key is taken)."""
        ...

    def get_for_id(self, name: str, actor_id: str, *, params: Any = None) -> ActorRef:
        """A reference to the actor with this id."""
        ...
