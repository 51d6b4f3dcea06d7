"""`ActorContextImpl`: the runtime's implementation of ``c`` (`pyrivet.actor.ActorContext`).

A context is a small view (instance, connection, request) created per call; all state
lives on the instance. It is cheap by design: one is made for every action. What it
needs of the instance is the `ContextHost` Protocol (implemented by `ActorInstance`), so
this module never imports the instance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from typing import Any, Protocol, TypeVar

from .._util.clock import Clock
from ..actor._client import ActorClient
from ..actor._context import AbortSignal, ActorContext
from ..errors import ActorError, ActorStoppingError, DatabaseError, QueueError
from ..types import ConnRequest
from .actor_db import ActorDb
from .connections import ConnHost, ConnImpl, emit
from .kv import KVImpl
from .lifecycle import ActorStatus, Lifecycle
from .queue import Mailbox, QueueImpl
from .schedule import ScheduleImpl

__all__ = ["AbortSignalImpl", "ActorContextImpl", "ContextHost", "StateChangeContext"]

T = TypeVar("T")
_logger = logging.getLogger("pyrivet.actor")


#: The statuses in which ``c.save_state()`` may commit.
_SAVING = (ActorStatus.RUNNING, ActorStatus.STOPPING, ActorStatus.LOADING)


class ContextHost(ConnHost, Protocol):
    """What ``c`` needs of its actor, beyond what connections need."""

    __slots__ = ()

    vars: Any
    life: Lifecycle | None
    mailbox: Mailbox | None

    @property
    def key(self) -> tuple[str, ...]: ...

    def request_stop(self, kind: str) -> None:
        """Start a sleep (``"sleep"``) or destroy (``"destroy"``) in the background."""
        ...

    def track(self, awaitable: Awaitable[Any], what: str) -> asyncio.Task[Any]:
        """Run ``awaitable`` as a background task that shutdown waits for."""
        ...


class AbortSignalImpl(AbortSignal):
    """`AbortSignal` over the instance's lifecycle event."""

    __slots__ = ("_event",)

    def __init__(self, event: asyncio.Event) -> None:
        self._event = event

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> bool:
        return await self._event.wait()


class ActorContextImpl(ActorContext[Any]):
    """What actor code receives as ``c``. See `pyrivet.actor.ActorContext`."""

    __slots__ = ("_conn", "_inst", "_request")

    def __init__(
        self,
        instance: ContextHost,
        conn: ConnImpl | None = None,
        request: ConnRequest | None = None,
    ) -> None:
        self._inst = instance
        self._conn = conn
        self._request = request

    @property
    def state(self) -> Any:
        if not self._inst.definition.has_state:
            raise RuntimeError(
                f"actor {self._inst.name!r} has no state; define state= or create_state="
            )
        return self._inst.state

    @state.setter
    def state(self, value: Any) -> None:
        if not self._inst.definition.has_state:
            raise RuntimeError(
                f"actor {self._inst.name!r} has no state; define state= or create_state="
            )
        self._inst.state = value

    @property
    def vars(self) -> Any:
        return self._inst.vars

    @vars.setter
    def vars(self, value: Any) -> None:
        self._inst.vars = value

    @property
    def name(self) -> str:
        return self._inst.definition.name

    @property
    def key(self) -> tuple[str, ...]:
        return self._inst.key

    @property
    def actor_id(self) -> str:
        return self._inst.actor_id

    @property
    def region(self) -> str:
        return self._inst.svc.region

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        return logging.LoggerAdapter(_logger, self._inst.log_fields)

    @property
    def conn(self) -> ConnImpl | None:
        return self._conn

    @property
    def request(self) -> ConnRequest | None:
        if self._request is not None:
            return self._request
        conn = self._conn
        return None if conn is None else conn.request

    @property
    def conns(self) -> Mapping[str, ConnImpl]:
        return dict(self._inst.conns or {})

    @property
    def schedule(self) -> ScheduleImpl:
        return ScheduleImpl(self._inst.journal)

    @property
    def kv(self) -> KVImpl:
        return KVImpl(self._inst.journal)

    @property
    def db(self) -> ActorDb:
        inst = self._inst
        db = inst.svc.dbs.get(inst.actor_id)
        if db is None:
            if not inst.definition.has_db:
                raise DatabaseError(
                    f"actor {inst.name!r} has no SQL database; pass db=True to actor() "
                    "(or define on_migrate)",
                    code="not_enabled",
                )
            raise DatabaseError(
                f"Database is closed: actor {inst.name!r} ({inst.actor_id}) is not running",
                code="closed",
            )
        return db

    @property
    def queue(self) -> QueueImpl:
        mailbox = self._inst.mailbox
        if mailbox is None:
            raise QueueError(
                f"actor {self._inst.name!r} declares no queues; pass "
                "queues={'name': Queue(...)} to actor()",
                code="unknown_queue",
            )
        return QueueImpl(mailbox, self)

    @property
    def clock(self) -> Clock:
        return self._inst.svc.clock

    @property
    def abort_signal(self) -> AbortSignalImpl:
        return AbortSignalImpl(self._inst.lifecycle().abort)

    @property
    def aborted(self) -> bool:
        life = self._inst.life
        return life is not None and life.abort.is_set()

    def broadcast(self, event: str, *args: Any) -> None:
        emit(self._inst, None, event, args)

    def sleep(self) -> None:
        self._inst.request_stop("sleep")

    def destroy(self) -> None:
        self._inst.request_stop("destroy")

    def wait_until(self, awaitable: Awaitable[Any]) -> None:
        self._inst.track(awaitable, "wait_until")

    def keep_awake(self, awaitable: Awaitable[T]) -> Awaitable[T]:
        return _keep_awake(self._inst, awaitable)

    async def save_state(self) -> None:
        inst = self._inst
        if inst.status not in _SAVING:
            raise ActorStoppingError(f"actor {inst.name!r} is {inst.status.value}")
        inst.journal.checkpoint("save")
        last = inst.journal.last_commit
        if last is not None and not last.done():
            await last

    def client(self) -> ActorClient:
        return self._inst.svc.client

    def __repr__(self) -> str:
        return f"<ActorContext {self._inst.name} {self._inst.key!r} {self._inst.actor_id}>"


class StateChangeContext(ActorContextImpl):
    """The ``c`` of ``on_state_change``: assigning ``c.state`` there raises
    ``actor/state_mutation_reentrant`` (the hook reports a change; it must not make one)."""

    __slots__ = ()

    @property
    def state(self) -> Any:
        return super().state

    @state.setter
    def state(self, value: Any) -> None:
        raise state_mutation_reentrant()


def state_mutation_reentrant() -> ActorError:
    """RivetKit's error for a state change made inside ``on_state_change``."""
    return ActorError(
        "State mutations are not allowed inside onStateChange.", code="state_mutation_reentrant"
    )


async def _keep_awake(inst: ContextHost, awaitable: Awaitable[T]) -> T:
    life = inst.lifecycle()
    life.keep_awake += 1
    try:
        return await awaitable
    finally:
        life.keep_awake -= 1
        inst.became_idle()
