"""The exception tree of pyrivet.

```
PyrivetError                      base of everything pyrivet raises
├── DefinitionError               an actor definition is invalid (raised at import time)
├── StorageError                  a storage driver cannot open or operate
│   └── DataDirLockedError        another process holds the data directory
└── ActorError                  what a caller of an actor receives (group, code, message, metadata)
    ├── UserError                 raised by actor code on purpose; reaches the client as is
    ├── ActorNotFoundError        actor/not_found
    ├── DuplicateKeyError         actor/duplicate_key
    ├── ActionNotFoundError       actor/action_not_found
    ├── InvalidArgumentsError     actor/invalid_arguments (arity), actor/validation_error (types)
    ├── ActionTimeoutError        actor/action_timed_out
    ├── ActorStoppingError        actor/stopping (retryable: the actor is going to sleep)
    ├── StateMigrationError       actor/state_migration_failed (the stored state cannot wake)
    ├── EncodingError             message/unencodable
    ├── CommitError               storage/commit_failed
    ├── ScheduleError             schedule/*
    ├── KVError                   kv/*
    ├── QueueError                queue/* (full, message_too_large, invalid_payload, ...)
    ├── DatabaseError             sqlite/* (a SQL error of c.db, with SQLite's message)
    ├── ForbiddenError            auth/forbidden (e.g. a queue's can_publish said no)
    └── InternalError             core/internal_error (details stay in the server log)
└── WorkflowError                 raised by the durable workflow engine (pyrivet.workflow)
    ├── CriticalError             raised by a step on purpose: fail it now, no retry
    ├── RollbackError             raised by a step: fail the workflow and run step rollbacks
    ├── StepFailedError           a step failed for good (base of the next two)
    │   ├── StepExhaustedError    every retry of a step failed
    │   └── StepTimeoutError      a step ran past its timeout
    ├── JoinError                 one or more branches of a join failed
    ├── RaceError                 every branch of a race failed
    ├── HistoryDivergedError      the recorded history does not match the workflow code
    ├── EntryInProgressError      a step is running: the history cannot be reset now
    ├── RollbackCheckpointError   a step with a rollback ran before any rollback checkpoint
    ├── WorkflowCancelledError    the workflow was cancelled
    └── WorkflowUsageError        the workflow API was misused (duplicate name, step-only API)

ActorAborted (BaseException)      control flow: the actor is shutting down
WorkflowEvicted (BaseException)   control flow: the host stopped a workflow run to resume later
```

On the wire an `ActorError` is `{group, code, message, metadata}`. Only errors whose
``public`` flag is set keep their message and metadata when sent to a client; anything
else is replaced by `InternalError` and logged with its traceback where it happened.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "PyrivetError",
    "DefinitionError",
    "StorageError",
    "DataDirLockedError",
    "ActorError",
    "UserError",
    "ActorNotFoundError",
    "DuplicateKeyError",
    "ActionNotFoundError",
    "InvalidArgumentsError",
    "ActionTimeoutError",
    "ActorStoppingError",
    "StateMigrationError",
    "EncodingError",
    "CommitError",
    "ScheduleError",
    "KVError",
    "QueueError",
    "DatabaseError",
    "ForbiddenError",
    "InternalError",
    "ActorAborted",
    "WorkflowError",
    "CriticalError",
    "RollbackError",
    "StepFailedError",
    "StepExhaustedError",
    "StepTimeoutError",
    "JoinError",
    "RaceError",
    "HistoryDivergedError",
    "EntryInProgressError",
    "RollbackCheckpointError",
    "WorkflowCancelledError",
    "WorkflowUsageError",
    "WorkflowEvicted",
    "error_from_wire",
]


class PyrivetError(Exception):
    """Base class of every exception pyrivet raises on purpose."""


class DefinitionError(PyrivetError):
    """Raised when an actor definition or registry is invalid; the message names the fix."""


class StorageError(PyrivetError):
    """Raised when a storage driver cannot open, read or write its database."""


class DataDirLockedError(StorageError):
    """Raised when another process already has the data directory open."""


class ActorError(PyrivetError):
    """An error a caller of an actor receives.

    Attributes:
        group: error family, e.g. ``"actor"`` or ``"user"``.
        code: machine-readable code within the group, e.g. ``"not_found"``.
        message: human-readable text saying what happened and what to do.
        metadata: optional JSON-compatible details (only for public errors).
    """

    default_group: ClassVar[str] = "actor"
    default_code: ClassVar[str] = "error"
    #: Whether message and metadata may be shown to a remote client.
    public: ClassVar[bool] = True

    def __init__(
        self,
        message: str,
        *,
        group: str | None = None,
        code: str | None = None,
        metadata: Any = None,
    ) -> None:
        super().__init__(message)
        self.group: str = group or self.default_group
        self.code: str = code or self.default_code
        self.message: str = message
        self.metadata: Any = metadata

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.group}/{self.code}: {self.message!r})"


class UserError(ActorError):
    """Raised by actor code to send an error with a code and metadata to the caller.

    ```python
    raise UserError("amount must be positive", code="negative_amount", metadata={"min": 0})
    ```
    """

    default_group = "user"
    default_code = "user_error"


class ActorNotFoundError(ActorError):
    """Raised when no live actor matches the name and key, or the id."""

    default_code = "not_found"


class DuplicateKeyError(ActorError):
    """Raised by ``create`` when a live actor already has that name and key."""

    default_code = "duplicate_key"


class ActionNotFoundError(ActorError):
    """Raised when the actor has no action with the requested name."""

    default_code = "action_not_found"


class InvalidArgumentsError(ActorError):
    """Raised when an action is called with arguments its signature does not accept.

    Code ``invalid_arguments`` for the wrong number of arguments; ``validation_error``
    (RivetKit's code for arguments failing an action's input schema) for an argument
    that does not fit its parameter's type annotation, with metadata ``{parameter,
    position, expected}``.
    """

    default_code = "invalid_arguments"


class ActionTimeoutError(ActorError):
    """Raised when an action runs longer than its actor's ``action_timeout``."""

    default_code = "action_timed_out"


class ActorStoppingError(ActorError):
    """Raised when a request reaches an actor that is shutting down; retrying wakes it."""

    default_code = "stopping"


class StateMigrationError(ActorError):
    """Raised when a stored actor cannot wake because its state does not fit the code.

    A migration raised, its result does not fit the state type or cannot be stored,
    the stored state does not fit a type whose shape changed without a new
    ``state_version``, or it was stored by newer code. The message names the actor, the
    versions and the step; ``metadata`` holds ``actor_id``, ``stored_version``,
    ``state_version`` and ``step``: ``"1->2"`` (a migration), ``"decode"`` (the check
    against the type) or ``"commit"`` (saving the migrated state). The stored state is
    untouched: deploy a fix and the next request wakes the actor.
    """

    default_code = "state_migration_failed"


class EncodingError(ActorError):
    """Raised when a value (state, argument, result, event) cannot be encoded."""

    default_group = "message"
    default_code = "unencodable"


class CommitError(ActorError):
    """Raised when the write covering a change failed; the change is rolled back."""

    default_group = "storage"
    default_code = "commit_failed"


class ScheduleError(ActorError):
    """Raised for an invalid schedule: bad cron expression, unknown action, past limits."""

    default_group = "schedule"
    default_code = "invalid"


class KVError(ActorError):
    """Raised for invalid KV use, before anything changed: a key or value that is too
    large or of the wrong type, a batch above the limits, a bad listing option. The
    codes are listed in ``docs/kv.md``."""

    default_group = "kv"
    default_code = "invalid"


class QueueError(ActorError):
    """Raised for a queue send or receive that cannot be done: queue full, message too
    large, a body or completion of the wrong type, a wait that timed out, completing a
    message twice."""

    default_group = "queue"
    default_code = "invalid"


class DatabaseError(ActorError):
    """Raised by ``c.db``: a SQL error (syntax, constraint; the message is SQLite's), a
    transaction past its deadline, a database that cannot be opened. The statement that
    failed changed nothing."""

    default_group = "sqlite"
    default_code = "query_failed"


class ForbiddenError(ActorError):
    """Raised when an access hook (such as a queue's ``can_publish``) refused a request."""

    default_group = "auth"
    default_code = "forbidden"


class InternalError(ActorError):
    """What a client sees instead of an unexpected exception; details stay in the log."""

    default_group = "core"
    default_code = "internal_error"

    def __init__(self, message: str = "An internal error occurred", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)


class ActorAborted(BaseException):
    """Raised inside actor code that waits on something the shutting-down actor gave up.

    It derives from `BaseException` so that ``except Exception`` in user code does not
    swallow it. User code never constructs it.
    """


class WorkflowError(PyrivetError):
    """Base class of the errors of the durable workflow engine (`pyrivet.workflow`)."""


class _StepRaisedError(WorkflowError):
    """An error a step raises on purpose; the engine re-raises it naming the step."""

    def __init__(self, message: str, *, step: str | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        #: The step that failed (None on the instance the step body raised).
        self.step = step
        self.attempts = attempts


class CriticalError(_StepRaisedError):
    """Raise inside a workflow step to fail it at once, without retrying.

    ```python
    if not order["items"]:
        raise CriticalError("order has no items; nothing to ship")
    ```
    """


class RollbackError(_StepRaisedError):
    """Raise inside a workflow step to fail the workflow and undo what it did.

    The step is not retried; the ``rollback`` callbacks of the steps completed since
    the last ``rollback_checkpoint`` run in reverse order, then the workflow fails.
    """


class StepFailedError(WorkflowError):
    """A workflow step failed for good.

    Attributes:
        step: the step's name.
        attempts: how many attempts ran.
        error: the last attempt's error, as text (``"ValueError: bad input"``).
    """

    def __init__(self, message: str, *, step: str, attempts: int, error: str) -> None:
        super().__init__(message)
        self.step = step
        self.attempts = attempts
        self.error = error


class StepExhaustedError(StepFailedError):
    """Every attempt of a workflow step failed (``max_retries`` retries ran)."""


class StepTimeoutError(StepFailedError):
    """A workflow step ran longer than its ``timeout`` (and ``retry_on_timeout`` is off)."""


class JoinError(WorkflowError):
    """One or more branches of ``ctx.join`` failed; ``errors`` maps branch -> error text."""

    def __init__(self, message: str, *, errors: dict[str, str]) -> None:
        super().__init__(message)
        self.errors = errors


class RaceError(WorkflowError):
    """Every branch of ``ctx.race`` failed; ``errors`` maps branch -> error text."""

    def __init__(self, message: str, *, errors: dict[str, str]) -> None:
        super().__init__(message)
        self.errors = errors


class HistoryDivergedError(WorkflowError):
    """The workflow's recorded history does not match what its code does now.

    Raised when the code reaches an entry whose recorded type differs, runs a new entry
    where the history recorded another one, or no longer runs a recorded entry. Nothing
    in the history is changed; deploy code that matches it, mark deleted entries with
    ``ctx.removed(name, kind)``, or reset the history with ``replay_from``.

    Attributes:
        entry: the name of the entry where the divergence was found.
    """

    def __init__(self, message: str, *, entry: str) -> None:
        super().__init__(message)
        self.entry = entry


class EntryInProgressError(WorkflowError):
    """A step of the workflow is running, so its history cannot be reset now; retry later."""


class RollbackCheckpointError(WorkflowError):
    """A step with a ``rollback`` ran before any ``ctx.rollback_checkpoint(...)``."""


class WorkflowCancelledError(WorkflowError):
    """The workflow was cancelled; it does not run again until its history is reset."""


class WorkflowUsageError(WorkflowError):
    """The workflow API was used in a way it does not allow; the message says the fix."""


class WorkflowEvicted(BaseException):
    """Control flow: the workflow's host stopped the run; a later run resumes from history.

    Raised by a host from ``sleep_until`` or ``receive`` when it would rather unload the
    workflow than wait (the actor goes to sleep and a durable alarm wakes it), and out of
    ``WorkflowEngine.run`` after ``evict()``. It derives from `BaseException` so that
    ``except Exception`` in workflow code does not swallow it.
    """


_BY_CODE: dict[tuple[str, str], type[ActorError]] = {
    ("actor", "not_found"): ActorNotFoundError,
    ("actor", "duplicate_key"): DuplicateKeyError,
    ("actor", "action_not_found"): ActionNotFoundError,
    ("actor", "invalid_arguments"): InvalidArgumentsError,
    ("actor", "validation_error"): InvalidArgumentsError,
    ("actor", "action_timed_out"): ActionTimeoutError,
    ("actor", "stopping"): ActorStoppingError,
    ("actor", "state_migration_failed"): StateMigrationError,
    ("message", "unencodable"): EncodingError,
    ("message", "incoming_too_long"): EncodingError,
    ("message", "outgoing_too_long"): EncodingError,
    ("storage", "commit_failed"): CommitError,
    ("core", "internal_error"): InternalError,
}


def error_from_wire(group: str, code: str, message: str, metadata: Any = None) -> ActorError:
    """Rebuild the most specific `ActorError` subclass for an error received from a server."""
    if group == "user":
        return UserError(message, code=code, metadata=metadata)
    if group == "schedule":
        return ScheduleError(message, code=code, metadata=metadata)
    if group == "kv":
        return KVError(message, code=code, metadata=metadata)
    if group == "queue":
        return QueueError(message, code=code, metadata=metadata)
    if group == "sqlite":
        return DatabaseError(message, code=code, metadata=metadata)
    if group == "auth" and code == "forbidden":
        return ForbiddenError(message, metadata=metadata)
    cls = _BY_CODE.get((group, code), ActorError)
    return cls(message, group=group, code=code, metadata=metadata)
