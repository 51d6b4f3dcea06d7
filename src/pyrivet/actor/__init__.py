"""The definition API (L2): `actor()`, `ActorDefinition`, `ActorOptions`, `ActorContext`.

Nothing here runs actors; ``pyrivet._runtime`` does.
"""

from ._client import (
    ActionCaller as ActionCaller,
    ActorClient as ActorClient,
    ActorConnectionRef as ActorConnectionRef,
    ActorRef as ActorRef,
)
from ._context import (
    KV as KV,
    AbortSignal as AbortSignal,
    ActorContext as ActorContext,
    Conn as Conn,
    Schedule as Schedule,
    ScheduleEntry as ScheduleEntry,
)
from ._database import Database as Database
from ._definition import (
    ActionSpec as ActionSpec,
    ActorDefinition as ActorDefinition,
    actor as actor,
)
from ._options import ActorOptions as ActorOptions
from ._queue import (
    ActorQueue as ActorQueue,
    Queue as Queue,
    QueueMessage as QueueMessage,
    SendResult as SendResult,
)

__all__ = [
    "KV",
    "AbortSignal",
    "ActionCaller",
    "ActionSpec",
    "ActorClient",
    "ActorConnectionRef",
    "ActorContext",
    "ActorDefinition",
    "ActorOptions",
    "ActorRef",
    "ActorQueue",
    "Conn",
    "Database",
    "Queue",
    "QueueMessage",
    "Schedule",
    "ScheduleEntry",
    "SendResult",
    "actor",
]
