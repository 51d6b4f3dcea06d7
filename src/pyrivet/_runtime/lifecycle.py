"""`ActorStatus` (the states of an instance, and which moves between them are allowed)
and `Lifecycle` (what an instance keeps only around starts, shutdowns and background work).

The transitions table is the state machine; `ActorInstance.set_status` is the one place
that moves an instance along it.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Any

__all__ = ["TRANSITIONS", "ActorStatus", "Lifecycle"]


class ActorStatus(enum.Enum):
    """Where an instance is in its life."""

    #: Hooks of a start or wake are running; requests wait for them.
    LOADING = "loading"
    #: Serving requests.
    RUNNING = "running"
    #: Shutting down (sleep or destroy); new requests wait and then wake it again.
    STOPPING = "stopping"
    #: Asleep: saved and dropped from memory.
    STOPPED = "stopped"
    #: Destroyed: its data is deleted.
    DESTROYED = "destroyed"

    #: By identity (members are singletons, and equality is identity): `Enum`'s own
    #: hashes the name in a Python-level call, twice per `set_status`.
    __hash__ = object.__hash__


#: The moves `ActorInstance.set_status` allows. A start that fails, or whose creation
#: commit fails, stops the instance from LOADING or RUNNING; a stopped or destroyed
#: instance never comes back (the next request makes a new one).
TRANSITIONS: dict[ActorStatus, frozenset[ActorStatus]] = {
    ActorStatus.LOADING: frozenset({ActorStatus.RUNNING, ActorStatus.STOPPED}),
    ActorStatus.RUNNING: frozenset({ActorStatus.STOPPING, ActorStatus.STOPPED}),
    ActorStatus.STOPPING: frozenset({ActorStatus.STOPPED, ActorStatus.DESTROYED}),
    ActorStatus.STOPPED: frozenset(),
    ActorStatus.DESTROYED: frozenset(),
}


class Lifecycle:
    """The parts of an instance that exist only around starts, shutdowns and background work."""

    __slots__ = (
        "abort",
        "driver",
        "intent",
        "keep_awake",
        "last_save",
        "ready",
        "run_parked",
        "run_task",
        "save_timer",
        "stop_requested",
        "stopped",
        "tasks",
        "waiters",
        "workflow",
    )

    def __init__(self) -> None:
        self.abort = asyncio.Event()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.stopped: asyncio.Future[None] | None = None
        self.run_task: asyncio.Task[Any] | None = None
        #: How many waits of the ``run`` handler let the actor sleep (a queue receive, a
        #: workflow sleep): while one is on and nothing else runs, the actor is idle.
        self.run_parked = 0
        #: The workflow binding when ``run`` is a durable workflow (its engine and host).
        self.workflow: Any = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.keep_awake = 0
        self.waiters: list[asyncio.Future[None]] = []
        #: The relaxed-durability save timer (a `Timer`), while one is armed.
        self.save_timer: Any = None
        #: Monotonic time of the last relaxed-mode save (-inf: none since the start).
        self.last_save = float("-inf")
        self.stop_requested: str | None = None
        #: The stop (``"sleep"``/``"destroy"``) asked of the `Placement` and not done
        #: yet; the actor keeps serving until the placement's owner stops it.
        self.intent: str | None = None
        #: The task running the current start or shutdown. Its hooks run inline in it,
        #: and so does any call they make (in-process calls run in the caller's task):
        #: a call from it back into this actor must not wait for the start or shutdown.
        self.driver: asyncio.Task[Any] | None = None
