"""pyrivet: Rivet Actors for Python.

Long-lived, stateful actors on asyncio whose state is durable before a reply leaves.

```python
from pyrivet import Registry, actor

counter = actor("counter", state={"count": 0})

@counter.action
def increment(c, amount: int = 1) -> int:
    c.state["count"] += amount
    return c.state["count"]

registry = Registry([counter])
```
"""

from ._runtime.actor_client import install_client_factory as _install_client_factory
from ._runtime.history import HistoryRecord as HistoryRecord
from ._runtime.lifecycle import ActorStatus as ActorStatus
from ._runtime.registry import Registry as Registry
from ._runtime.runtime import Runtime as Runtime
from ._util.logs import install_fallback_handler as _install_fallback_handler
from ._version import __version__ as __version__
from .actor import (
    ActorContext as ActorContext,
    ActorDefinition as ActorDefinition,
    ActorOptions as ActorOptions,
    Conn as Conn,
    Queue as Queue,
    actor as actor,
)
from .client import Client as Client
from .errors import (
    ActionNotFoundError as ActionNotFoundError,
    ActionTimeoutError as ActionTimeoutError,
    ActorError as ActorError,
    ActorNotFoundError as ActorNotFoundError,
    CommitError as CommitError,
    DatabaseError as DatabaseError,
    DataDirLockedError as DataDirLockedError,
    DefinitionError as DefinitionError,
    DuplicateKeyError as DuplicateKeyError,
    EncodingError as EncodingError,
    ForbiddenError as ForbiddenError,
    InternalError as InternalError,
    InvalidArgumentsError as InvalidArgumentsError,
    PyrivetError as PyrivetError,
    QueueError as QueueError,
    StateMigrationError as StateMigrationError,
    UserError as UserError,
)
from .storage import MemoryDriver as MemoryDriver, SQLiteDriver as SQLiteDriver

# `c.client()` is this client over the runtime's in-process transport: the runtime may
# not import the client package, so its composition root plugs it in.
_install_client_factory(Client)

# Warnings and errors reach stderr until the application configures logging.
_install_fallback_handler("pyrivet")

__all__ = [
    "__version__",
    # defining actors
    "actor",
    "ActorDefinition",
    "ActorOptions",
    "ActorContext",
    "Conn",
    "Queue",
    # running them
    "Registry",
    "Runtime",
    "ActorStatus",
    "HistoryRecord",
    "MemoryDriver",
    "SQLiteDriver",
    # calling them
    "Client",
    # errors
    "PyrivetError",
    "ActorError",
    "UserError",
    "ActorNotFoundError",
    "ActionNotFoundError",
    "ActionTimeoutError",
    "CommitError",
    "DataDirLockedError",
    "DefinitionError",
    "DuplicateKeyError",
    "ForbiddenError",
    "QueueError",
    "DatabaseError",
    "EncodingError",
    "InternalError",
    "InvalidArgumentsError",
    "StateMigrationError",
]
