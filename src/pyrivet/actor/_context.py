"""The interfaces actor code sees: `ActorContext` (``c``), `Conn`, `Schedule`, `KV`.

They are Protocols: ``pyrivet._runtime`` implements them (its classes subclass these, so
mypy checks they agree), the definition API never imports the runtime, and actor code
can be unit-tested against a fake context. Each declares ``__slots__ = ()`` so that its
implementations stay slotted.

Every hook and action receives a context as its first argument. It is valid for the
duration of that call; background work that outlives the call (``run``, tasks passed to
``wait_until``) may keep using it until the actor stops.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Generic, Literal, Protocol, TypeVar

from .._util.clock import Clock
from ..types import ConnRequest
from ._client import ActorClient
from ._database import Database
from ._queue import ActorQueue

__all__ = ["KV", "AbortSignal", "ActorContext", "Conn", "KeyType", "Schedule", "ScheduleEntry"]

S = TypeVar("S")
T = TypeVar("T")

#: How a KV listing returns keys: ``"text"`` (str) or ``"binary"`` (bytes).
KeyType = Literal["text", "binary"]
#: What a KV listing returns (an alias: inside `KV`, ``list`` names the method).
_Listing = list[tuple[Any, Any]]


class AbortSignal(Protocol):
    """Set when the actor starts shutting down (sleep or destroy)."""

    __slots__ = ()

    def is_set(self) -> bool:
        """Whether shutdown has begun."""
        ...

    async def wait(self) -> bool:
        """Wait until shutdown begins; returns True."""
        ...


class Conn(Protocol):
    """A client connection to the actor (a `connect()` socket or a transient HTTP call)."""

    __slots__ = ()

    @property
    def id(self) -> str: ...

    @property
    def params(self) -> Any:
        """The connection parameters the client sent (None if none)."""
        ...

    state: Any
    """Per-connection state from ``conn_state`` / ``create_conn_state`` (never persisted)."""

    def send(self, event: str, *args: Any) -> None:
        """Send an event to this connection only (released under the output gate)."""
        ...

    async def disconnect(self, reason: str | None = None) -> None:
        """Close the connection; ``on_disconnect`` runs before this returns."""
        ...


class ScheduleEntry(Protocol):
    """A pending schedule as listed by `Schedule.list`."""

    __slots__ = ()

    @property
    def id(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def args(self) -> list[Any]: ...
    @property
    def fire_at(self) -> float:
        """Next fire time, epoch seconds."""
        ...

    @property
    def cron(self) -> str | None: ...


class Schedule(Protocol):
    """Durable timers that call an action of this actor, waking it if it sleeps.

    Scheduling is part of the current unit of work: it becomes durable with the state
    change of the action that scheduled it (and is released to the caller only then).
    ``action`` is an action name or the action function itself.
    """

    __slots__ = ()

    def after(self, delay: float, action: str | Callable[..., Any], *args: Any) -> str:
        """Call ``action(*args)`` once, ``delay`` seconds from now; returns the id."""
        ...

    def at(self, timestamp: float, action: str | Callable[..., Any], *args: Any) -> str:
        """Call ``action(*args)`` once at epoch seconds ``timestamp``; returns the id."""
        ...

    def cron(
        self,
        expression: str,
        action: str | Callable[..., Any],
        *args: Any,
        name: str | None = None,
        timezone: str = "UTC",
    ) -> str:
        """Call ``action(*args)`` on every tick of a 5-field cron expression.

        A job with the same ``name`` is replaced. Ticks missed while the actor's
        process was down fire once on start, not once per missed tick. Returns the id
        (the name when given).
        """
        ...

    def cancel(self, schedule_id: str) -> bool:
        """Cancel a pending schedule; returns whether it existed."""
        ...

    def list(self) -> list[ScheduleEntry]:
        """Pending schedules, soonest first."""
        ...


class KV(Protocol):
    """The actor's own ordered key/value space, committed together with its state.

    Keys are str (stored as its UTF-8 bytes) or bytes, ordered by their bytes; values
    are any encodable value and come back as they were put (str as str, bytes as bytes).
    Writes are visible to this actor at once and become durable with the current unit
    of work. Every operation checks all of its input first: one that raises `KVError`
    (``code``: ``invalid_key``, ``key_too_large``, ``value_too_large``,
    ``batch_too_large``, ``payload_too_large``, ``invalid_argument``) changed nothing.
    The limits are in ``docs/kv.md``.

    Listings return ``(key, value)`` pairs with the whole key. ``key_type`` says how
    keys come back: ``"text"`` (str) or ``"binary"`` (bytes); by default text when the
    prefix (or range start) is a str, else binary. ``limit`` defaults to 16 384.
    """

    __slots__ = ()

    async def get(self, key: str | bytes) -> Any:
        """The value of ``key``, or None."""
        ...

    async def get_batch(self, keys: Iterable[str | bytes]) -> list[Any]:
        """The values of ``keys`` in the same order, None for each missing key."""
        ...

    async def put(self, key: str | bytes, value: Any) -> None:
        """Set ``key`` to ``value``."""
        ...

    async def put_batch(
        self, items: Mapping[str | bytes, Any] | Iterable[tuple[str | bytes, Any]]
    ) -> None:
        """Set every ``(key, value)`` of ``items``, all or none; a later duplicate wins."""
        ...

    async def delete(self, key: str | bytes) -> None:
        """Remove ``key`` (no error if absent)."""
        ...

    async def delete_batch(self, keys: Iterable[str | bytes]) -> None:
        """Remove every key of ``keys``, all or none (absent ones are fine)."""
        ...

    async def delete_range(self, start: str | bytes, end: str | bytes) -> None:
        """Remove every key ``k`` with ``start <= k < end``; nothing if ``start >= end``."""
        ...

    async def list(
        self,
        prefix: str | bytes = b"",
        *,
        reverse: bool = False,
        limit: int | None = None,
        key_type: KeyType | None = None,
    ) -> _Listing:
        """``(key, value)`` pairs whose key starts with ``prefix``, in key byte order
        (descending if ``reverse``), at most ``limit`` (the first ones in that order)."""
        ...

    async def list_range(
        self,
        start: str | bytes,
        end: str | bytes,
        *,
        reverse: bool = False,
        limit: int | None = None,
        key_type: KeyType | None = None,
    ) -> _Listing:
        """``(key, value)`` pairs with ``start <= key < end``, in key byte order
        (descending if ``reverse``), at most ``limit`` (the first ones in that order)."""
        ...


class ActorContext(Protocol, Generic[S]):
    """What ``c`` offers to hooks and actions."""

    __slots__ = ()

    @property
    def state(self) -> S:
        """The actor's persisted state; mutate it in place or assign a new value."""
        ...

    @state.setter
    def state(self, value: S) -> None: ...

    @property
    def vars(self) -> Any:
        """Ephemeral per-instance values from ``vars`` / ``create_vars``; never persisted."""
        ...

    @vars.setter
    def vars(self, value: Any) -> None: ...

    @property
    def name(self) -> str: ...
    @property
    def key(self) -> tuple[str, ...]: ...
    @property
    def actor_id(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]: ...

    @property
    def conn(self) -> Conn | None:
        """The connection that made this call; None for schedules and lifecycle hooks."""
        ...

    @property
    def request(self) -> ConnRequest | None:
        """The HTTP request behind this call's connection: its URL, method and headers.

        Set in the connection hooks (``on_before_connect``, ``create_conn_state``,
        ``on_connect``) and actions of a connection opened over the network, including
        the transient connection of an HTTP action call; None in-process and in
        lifecycle hooks and schedules.
        """
        ...

    @property
    def conns(self) -> Mapping[str, Conn]:
        """Open connections by id."""
        ...

    @property
    def schedule(self) -> Schedule: ...
    @property
    def kv(self) -> KV: ...
    @property
    def queue(self) -> ActorQueue:
        """This actor's durable queues (see `ActorQueue`)."""
        ...

    @property
    def db(self) -> Database:
        """This actor's own SQL database (actor types declared with ``db=True`` or an
        ``on_migrate`` hook; see `Database`)."""
        ...

    @property
    def clock(self) -> Clock:
        """The runtime's clock: ``now()`` (epoch seconds), ``monotonic()``, ``await sleep(s)``.

        Use it instead of ``time`` and ``asyncio.sleep`` for timing inside an actor (a
        ``run`` loop's tick, a timestamp), so that tests on a `MockClock` control it.
        """
        ...

    @property
    def abort_signal(self) -> AbortSignal: ...

    @property
    def aborted(self) -> bool:
        """True once shutdown has begun; ``run`` loops should check it."""
        ...

    def broadcast(self, event: str, *args: Any) -> None:
        """Send an event to every connection subscribed to it (after the output gate)."""
        ...

    def sleep(self) -> None:
        """Ask the actor to go to sleep once the current work allows; idempotent."""
        ...

    def destroy(self) -> None:
        """Ask the actor to be destroyed: on_destroy runs, then all its data is deleted."""
        ...

    def wait_until(self, awaitable: Awaitable[Any]) -> None:
        """Run ``awaitable`` in the background; shutdown waits for it (within grace)."""
        ...

    def keep_awake(self, awaitable: Awaitable[T]) -> Awaitable[T]:
        """Await ``awaitable`` while preventing idle sleep; returns its result."""
        ...

    async def save_state(self) -> None:
        """Commit the current state now and wait until it is durable."""
        ...

    def client(self) -> ActorClient:
        """A client for calling actors from here: other actors, or this one.

        The same API as ``pyrivet.client.Client`` (get / get_or_create / create /
        get_for_id, actions, connect), in-process, one per runtime (cheap to call).
        A call made from an action interleaves with this actor's other actions at its
        ``await``, so a cycle (A calls B, which calls A) completes. The reply of the
        called actor is released only once its changes are durable (strict mode), so a
        reply that depends on it is too. See docs/actor-to-actor.md.
        """
        ...
