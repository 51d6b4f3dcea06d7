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
    ├── InvalidArgumentsError     actor/invalid_arguments
    ├── ActionTimeoutError        actor/action_timed_out
    ├── ActorStoppingError        actor/stopping (retryable: the actor is going to sleep)
    ├── EncodingError             message/unencodable
    ├── CommitError               storage/commit_failed
    ├── ScheduleError             schedule/*
    ├── KVError                   kv/*
    └── InternalError             core/internal_error (details stay in the server log)

ActorAborted (BaseException)      control flow: the actor is shutting down
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
    "EncodingError",
    "CommitError",
    "ScheduleError",
    "KVError",
    "InternalError",
    "ActorAborted",
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
    """Raised when an action is called with arguments its signature does not accept."""

    default_code = "invalid_arguments"


class ActionTimeoutError(ActorError):
    """Raised when an action runs longer than its actor's ``action_timeout``."""

    default_code = "action_timed_out"


class ActorStoppingError(ActorError):
    """Raised when a request reaches an actor that is shutting down; retrying wakes it."""

    default_code = "stopping"


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
    """Raised for invalid KV use: a key or value that is too large or of the wrong type."""

    default_group = "kv"
    default_code = "invalid"


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


_BY_CODE: dict[tuple[str, str], type[ActorError]] = {
    ("actor", "not_found"): ActorNotFoundError,
    ("actor", "duplicate_key"): DuplicateKeyError,
    ("actor", "action_not_found"): ActionNotFoundError,
    ("actor", "invalid_arguments"): InvalidArgumentsError,
    ("actor", "action_timed_out"): ActionTimeoutError,
    ("actor", "stopping"): ActorStoppingError,
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
    cls = _BY_CODE.get((group, code), ActorError)
    return cls(message, group=group, code=code, metadata=metadata)
