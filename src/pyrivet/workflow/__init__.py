"""Durable workflows: functions whose steps are recorded and replayed after a crash.

```python
from pyrivet.workflow import Loop, WorkflowEngine, workflow

@workflow
async def onboarding(ctx):
    user = await ctx.step("create-user", create_user)
    await ctx.sleep("grace", 24 * 3600)
    await ctx.step("send-welcome", lambda s: send_mail(user))
```

The engine (`WorkflowEngine`) knows nothing of actors: it runs against a
`WorkflowHost` (clock, storage, durable waits, queue). `MemoryWorkflowHost` is the
in-memory reference host. In an actor (``@my_actor.run`` above ``@workflow``) the
runtime's host commits each step with the actor's state; see docs/workflows.md.
"""

from ..errors import (
    CriticalError,
    EntryInProgressError,
    HistoryDivergedError,
    JoinError,
    RaceError,
    RollbackCheckpointError,
    RollbackError,
    StepExhaustedError,
    StepFailedError,
    StepTimeoutError,
    WorkflowCancelledError,
    WorkflowError,
    WorkflowEvicted,
    WorkflowUsageError,
)
from ._context import WorkflowContext, WorkflowQueue
from ._engine import Workflow, WorkflowEngine, workflow
from ._history import EntryView, WorkflowHistory, read_history
from ._host import QueueMessage, StepInfo, WorkflowHost, Writes
from ._memory import MemoryStepContext, MemoryWorkflowHost, MemoryWorkflowStore, SimulatedCrash
from ._records import EntryKind, EntryRecord, EntryStatus, MetaRecord, WorkflowState
from ._results import (
    Failure,
    Loop,
    LoopBreak,
    LoopContinue,
    Ok,
    RaceResult,
    StepErrorEvent,
    WorkflowErrorEvent,
    WorkflowMessage,
)

__all__ = [
    "CriticalError",
    "EntryInProgressError",
    "EntryKind",
    "EntryRecord",
    "EntryStatus",
    "EntryView",
    "Failure",
    "HistoryDivergedError",
    "JoinError",
    "Loop",
    "LoopBreak",
    "LoopContinue",
    "MemoryStepContext",
    "MemoryWorkflowHost",
    "MemoryWorkflowStore",
    "MetaRecord",
    "Ok",
    "QueueMessage",
    "RaceError",
    "RaceResult",
    "RollbackCheckpointError",
    "RollbackError",
    "SimulatedCrash",
    "StepErrorEvent",
    "StepExhaustedError",
    "StepFailedError",
    "StepInfo",
    "StepTimeoutError",
    "Workflow",
    "WorkflowCancelledError",
    "WorkflowContext",
    "WorkflowEngine",
    "WorkflowError",
    "WorkflowErrorEvent",
    "WorkflowEvicted",
    "WorkflowHistory",
    "WorkflowHost",
    "WorkflowMessage",
    "WorkflowQueue",
    "WorkflowState",
    "WorkflowUsageError",
    "Writes",
    "read_history",
    "workflow",
]
