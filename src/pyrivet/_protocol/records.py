"""The messages of the RivetKit client protocol (schema v4), as typed records.

Field names are snake_case here; the encoders write the wire names (``actorId``,
``connectionId``, ``actionId``, ``eventName``). User payloads (``args``, ``output``,
``metadata``, queue ``body``/``response``) hold plain Python values; the encoders apply
the JSON-compat transform or CBOR as each encoding requires.

``None`` in an optional field means "absent" on the wire: an error without metadata, a
queue reply without response. Protocol integers (``id``, ``action_id``,
``generation``, ``timeout_ms``) are unsigned and below ``2**64``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, TypeAlias

import msgspec

from ..errors import ActorError, InternalError, error_from_wire

__all__ = [
    "ActionRequest",
    "ActionResponse",
    "ActorSpecifier",
    "Error",
    "Event",
    "HttpActionRequest",
    "HttpActionResponse",
    "HttpBody",
    "HttpQueueSendRequest",
    "HttpQueueSendResponse",
    "HttpResolveResponse",
    "HttpResponseError",
    "Init",
    "QUEUE_COMPLETED",
    "QUEUE_TIMED_OUT",
    "QueueSendStatus",
    "SubscriptionRequest",
    "ToClient",
    "ToServer",
]


class QueueSendStatus(StrEnum):
    """The outcome of a queue send, as `HttpQueueSendResponse.status` carries it.

    The JavaScript client accepts exactly these two values; the decoders reject any
    other. Members compare equal to their wire strings.
    """

    #: The message was enqueued (and, when the sender waited, completed).
    COMPLETED = "completed"
    #: The sender waited and ``timeout`` ran out before the message was completed.
    TIMED_OUT = "timedOut"

    @classmethod
    def from_wire(cls, value: str) -> QueueSendStatus | None:
        """Return the member whose wire string is ``value``, or None if there is none."""
        return _STATUSES.get(value)


_STATUSES: Final[dict[str, QueueSendStatus]] = {status.value: status for status in QueueSendStatus}

#: `QueueSendStatus.COMPLETED`, under the name the protocol layer has always exported.
QUEUE_COMPLETED: Final = QueueSendStatus.COMPLETED
#: `QueueSendStatus.TIMED_OUT`.
QUEUE_TIMED_OUT: Final = QueueSendStatus.TIMED_OUT


def _wire_fields(exc: BaseException) -> tuple[str, str, str, Any]:
    """Return what a client may see of ``exc``: non-public errors become internal_error."""
    if isinstance(exc, ActorError) and exc.public:
        return exc.group, exc.code, exc.message, exc.metadata
    internal = InternalError()
    return internal.group, internal.code, internal.message, None


class ActorSpecifier(msgspec.Struct, frozen=True):
    """Which actor an error came from (v4). ``key`` is the serialized key, if any."""

    actor_id: str
    generation: int
    key: str | None = None


# MARK: server -> client (WebSocket)


class Init(msgspec.Struct, frozen=True):
    """First frame on a connection: the client is connected once it arrives."""

    actor_id: str
    connection_id: str


class Error(msgspec.Struct, frozen=True):
    """An error on a connection.

    With ``action_id`` it fails that action; without, it fails the whole connection
    (every in-flight action, or the connect attempt before `Init`).
    """

    group: str
    code: str
    message: str
    metadata: Any = None
    action_id: int | None = None
    actor: ActorSpecifier | None = None

    @classmethod
    def from_exception(
        cls,
        exc: BaseException,
        *,
        action_id: int | None = None,
        actor: ActorSpecifier | None = None,
    ) -> Error:
        """Build the frame for ``exc``.

        Args:
            exc: what went wrong. Only an `ActorError` whose class is public keeps its
                group, code, message and metadata; anything else is sent as
                ``core/internal_error`` "An internal error occurred".
            action_id: the failed action's id, or None for a connection-level error.
            actor: the actor, if known.
        """
        group, code, message, metadata = _wire_fields(exc)
        return cls(group, code, message, metadata, action_id, actor)

    def to_exception(self) -> ActorError:
        """Return the most specific `ActorError` subclass for this error."""
        return error_from_wire(self.group, self.code, self.message, self.metadata)


class ActionResponse(msgspec.Struct, frozen=True):
    """The result of the action with the same ``id``."""

    id: int
    output: Any = None


class Event(msgspec.Struct, frozen=True):
    """A broadcast or per-connection event; ``args`` are the listener's arguments."""

    name: str
    args: list[Any] = msgspec.field(default_factory=list)


# MARK: client -> server (WebSocket)


class ActionRequest(msgspec.Struct, frozen=True):
    """Call action ``name`` with positional ``args``; ``id`` is per-connection."""

    id: int
    name: str
    args: list[Any] = msgspec.field(default_factory=list)


class SubscriptionRequest(msgspec.Struct, frozen=True):
    """Start (``subscribe=True``) or stop receiving events named ``event_name``."""

    event_name: str
    subscribe: bool


# MARK: HTTP bodies


class HttpActionRequest(msgspec.Struct, frozen=True):
    """Body of ``POST .../action/{name}``."""

    args: list[Any] = msgspec.field(default_factory=list)


class HttpActionResponse(msgspec.Struct, frozen=True):
    """Body of a successful action response."""

    output: Any = None


class HttpQueueSendRequest(msgspec.Struct, frozen=True):
    """Body of ``POST .../queue/{name}`` (schema v3+).

    ``wait`` asks the server to hold the response until the message is completed or
    ``timeout_ms`` milliseconds pass (wire name ``timeout``). The JavaScript client
    always sends ``name`` and ``wait`` (``False`` by default) and sends ``timeout``
    only when given; ``body`` is None for ``send(name)`` with no body (json omits
    the key, cbor writes ``undefined``, bare the compat form of ``undefined``).
    """

    body: Any = None
    name: str | None = None
    wait: bool | None = None
    timeout_ms: int | None = None


class HttpQueueSendResponse(msgspec.Struct, frozen=True):
    """Reply to a queue send (schema v3+): its `QueueSendStatus`, and the
    completion's response when the sender waited and the receiver gave one."""

    status: QueueSendStatus
    response: Any = None


class HttpResponseError(msgspec.Struct, frozen=True):
    """Body of an HTTP error response."""

    group: str
    code: str
    message: str
    metadata: Any = None
    actor: ActorSpecifier | None = None

    @classmethod
    def from_exception(
        cls, exc: BaseException, *, actor: ActorSpecifier | None = None
    ) -> HttpResponseError:
        """Build the body for ``exc``; non-public errors become internal_error.

        Args:
            exc: what went wrong (see `Error.from_exception`).
            actor: the actor, if known.
        """
        group, code, message, metadata = _wire_fields(exc)
        return cls(group, code, message, metadata, actor)

    def to_exception(self) -> ActorError:
        """Return the most specific `ActorError` subclass for this error."""
        return error_from_wire(self.group, self.code, self.message, self.metadata)


class HttpResolveResponse(msgspec.Struct, frozen=True):
    """Reply to an actor resolve request (unused by the 2.3.19 client flows)."""

    actor_id: str


#: What a server sends on a connection.
ToClient: TypeAlias = Init | Error | ActionResponse | Event
#: What a client sends on a connection.
ToServer: TypeAlias = ActionRequest | SubscriptionRequest
#: Any HTTP request or response body of the protocol.
HttpBody: TypeAlias = (
    HttpActionRequest
    | HttpActionResponse
    | HttpQueueSendRequest
    | HttpQueueSendResponse
    | HttpResponseError
    | HttpResolveResponse
)
