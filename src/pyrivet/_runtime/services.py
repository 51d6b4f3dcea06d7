"""`Services`: what every actor instance of one runtime shares.

One object per runtime, referenced by each instance (one pointer instead of many), so
an idle actor stays small. The runtime fills it in at start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .._util.clock import Clock
from .._util.tasks import TaskSupervisor
from ..actor._client import ActorClient
from ..storage._base import ActorStore
from .actor_dbs import ActorDbs
from .alarms import AlarmScheduler
from .committer import Committer
from .idle import IdleLink, IdleSweeper
from .metrics import RuntimeMetrics
from .parking import Parking
from .placement import Placement
from .queue_waiters import CompletionWaiters
from .tracing import Tracer

__all__ = ["Services"]


class Services:
    """Shared collaborators of all instances of one runtime."""

    __slots__ = (
        "alarms",
        "client",
        "clock",
        "committer",
        "dbs",
        "forget",
        "idle",
        "max_outgoing_message_size",
        "metrics",
        "parking",
        "placement",
        "queue_waiters",
        "region",
        "store",
        "sync_actor",
        "tasks",
        "tracer",
    )

    def __init__(
        self,
        *,
        store: ActorStore,
        clock: Clock,
        committer: Committer,
        alarms: AlarmScheduler,
        idle: IdleSweeper,
        tasks: TaskSupervisor,
        forget: Callable[[str, IdleLink], None],
        region: str,
        max_outgoing_message_size: int,
        client: ActorClient,
        metrics: RuntimeMetrics | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.committer = committer
        self.alarms = alarms
        self.idle = idle
        self.tasks = tasks
        #: Called with (actor_id, instance) when an instance has stopped, to drop it from
        #: the runtime's tables.
        self.forget = forget
        self.region = region
        self.max_outgoing_message_size = max_outgoing_message_size
        #: What ``c.client()`` returns: one client per runtime (see ``actor_client.py``).
        self.client = client
        #: Senders waiting for queue completions; they outlive an actor's sleep.
        self.queue_waiters = CompletionWaiters()
        #: The open SQL databases of actors declared with ``db=True`` (``c.db``).
        self.dbs = ActorDbs(store)
        #: Open sockets of sleeping actors' hibernated connections.
        self.parking = Parking()
        #: Counters for ``/metrics`` (see ``metrics.py``).
        self.metrics = metrics if metrics is not None else RuntimeMetrics()
        #: Makes OpenTelemetry spans; None when tracing is off (see ``tracing.py``).
        self.tracer = tracer
        #: Who stops and wakes actors in envoy mode (see ``placement.py``); None: this
        #: runtime decides alone.
        self.placement: Placement | None = None
        #: The actor whose synchronous action (a plain ``def``) runs right now, else
        #: None. Such an action cannot interleave with anything, and its end commits
        #: in the same call stack, so its events need no save queued for them.
        self.sync_actor: object | None = None

    def now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    def spawn(
        self, coro: Any, name: str, then: Callable[[asyncio.Task[Any]], None] | None = None
    ) -> Any:
        """Start ``coro`` as a runtime task (see `TaskSupervisor.spawn` for ``then``)."""
        return self.tasks.spawn(coro, name=name, then=then)
