"""Storage drivers: where actors' state, history, KV, queues and schedules are kept.

`SQLiteDriver` is the embedded default; `MemoryDriver` keeps everything in the process
(tests, ephemeral runs). Both fulfil the `ActorStore` contract in ``storage._base``.
"""

from ._base import (
    ActorRecord as ActorRecord,
    ActorStore as ActorStore,
    AlarmRecord as AlarmRecord,
    CommitRecord as CommitRecord,
    HistoryEntry as HistoryEntry,
    QueueMessageRecord as QueueMessageRecord,
    StoredQueue as StoredQueue,
    StoredState as StoredState,
)
from ._memory import MemoryDriver as MemoryDriver
from ._sqlite import SQLiteDriver as SQLiteDriver

__all__ = [
    "ActorRecord",
    "ActorStore",
    "AlarmRecord",
    "CommitRecord",
    "HistoryEntry",
    "MemoryDriver",
    "QueueMessageRecord",
    "SQLiteDriver",
    "StoredQueue",
    "StoredState",
]
