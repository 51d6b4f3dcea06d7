"""`ActorContextImpl`: the runtime's implementation of ``c`` (`pyrivet.actor.ActorContext`).

A context is a two-field view (instance, connection) created per call; all state lives
on the instance. It is cheap by design: one is made for every action.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ActorStoppingError

if TYPE_CHECKING:
    from .alarms import ScheduleImpl
    from .connections import ConnImpl
    from .instance import ActorInstance
    from .kv import KVImpl

__all__ = ["AbortSignalImpl", "ActorContextImpl"]

T = TypeVar("T")
_logger = logging.getLogger("pyrivet.actor")


class AbortSignalImpl:
    """`AbortSignal` over the instance's lifecycle event."""

    __slots__ = ("_event",)

    def __init__(self, event: asyncio.Event) -> None:
        self._event = event

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> bool:
        return await self._event.wait()


class ActorContextImpl:
    """What actor code receives as ``c``. See `pyrivet.actor.ActorContext`."""

    __slots__ = ("_conn", "_inst")

    def __init__(self, instance: ActorInstance, conn: ConnImpl | None = None) -> None:
        self._inst = instance
        self._conn = conn

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
        inst = self._inst
        return logging.LoggerAdapter(
            _logger, {"actor": inst.name, "actor_key": inst.key, "actor_id": inst.actor_id}
        )

    @property
    def conn(self) -> ConnImpl | None:
        return self._conn

    @property
    def conns(self) -> Mapping[str, ConnImpl]:
        return dict(self._inst.conns or {})

    @property
    def schedule(self) -> ScheduleImpl:
        from .alarms import ScheduleImpl

        return ScheduleImpl(self._inst)

    @property
    def kv(self) -> KVImpl:
        from .kv import KVImpl

        return KVImpl(self._inst)

    @property
    def abort_signal(self) -> AbortSignalImpl:
        return AbortSignalImpl(self._inst.lifecycle().abort)

    @property
    def aborted(self) -> bool:
        life = self._inst.life
        return life is not None and life.abort.is_set()

    def broadcast(self, event: str, *args: Any) -> None:
        from .connections import emit

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
        from . import checkpoint

        inst = self._inst
        if inst.status.value not in ("running", "stopping", "loading"):
            raise ActorStoppingError(f"actor {inst.name!r} is {inst.status.value}")
        checkpoint.checkpoint(inst, "save")
        last = inst.last_commit
        if last is not None and not last.done():
            await last

    def __repr__(self) -> str:
        return f"<ActorContext {self._inst.name} {self._inst.key!r} {self._inst.actor_id}>"


async def _keep_awake(inst: ActorInstance, awaitable: Awaitable[T]) -> T:
    life = inst.lifecycle()
    life.keep_awake += 1
    try:
        return await awaitable
    finally:
        life.keep_awake -= 1
        inst.became_idle()
