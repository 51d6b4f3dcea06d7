"""How errors reach clients: HTTP statuses, error bodies, WebSocket frames and close reasons.

Every error a client sees is ``{group, code, message, metadata}``. Only public
`ActorError`s keep their fields; anything else becomes ``core/internal_error`` "An
internal error occurred" and is logged here with its traceback (the runtime already
logged exceptions raised by actor code, so what reaches this module unconverted is a
server-side bug).

Protocol decode failures (`InvalidMessageError`) are reported as
``actor/invalid_request``, as RivetKit does, keeping the decoder's message that says
what was wrong and where.

HTTP statuses follow RivetKit's server (protocol reference §10); a few pyrivet codes
that mean "bad input" get 4xx too. Everything else, user errors included, is 500.
"""

from __future__ import annotations

import logging
from typing import Final

from .._codec import values
from .._protocol.errors import ProtocolError, UnsupportedEncodingError
from .._protocol.messages import (
    ActorSpecifier,
    Encoding,
    Error,
    HttpResponseError,
    content_type,
    encode_http,
    encode_to_client,
)
from ..errors import ActorError, EncodingError, InternalError
from ._asgi import HttpReply

__all__ = [
    "CLOSE_ERROR",
    "CLOSE_RESTART",
    "CLOSE_UNSUPPORTED_DATA",
    "GOING_AWAY_REASON",
    "close_reason",
    "error_frame",
    "error_reply",
    "http_status",
    "incoming_too_long",
    "invalid_request",
    "outgoing_too_long",
    "to_wire",
]

log = logging.getLogger("pyrivet.server")

#: WebSocket close code for a server-side failure (RivetKit closes with 1011).
CLOSE_ERROR: Final = 1011
#: WebSocket close code for an encoding the server does not speak.
CLOSE_UNSUPPORTED_DATA: Final = 1003
#: WebSocket code for "service restart" (RFC 6455 registry), sent when the server stops.
CLOSE_RESTART: Final = 1012
#: Close reason when the server stops: RivetKit's client parses ``group.code`` and
#: treats ``ws.going_away`` as "reconnect" (retried with backoff if an attempt gets it).
GOING_AWAY_REASON: Final = "ws.going_away"

_STATUS: Final[dict[tuple[str, str], int]] = {
    ("auth", "forbidden"): 403,
    ("actor", "not_found"): 404,
    ("actor", "action_not_found"): 404,
    ("actor", "handler_not_found"): 404,
    ("actor", "route_not_found"): 404,
    ("actor", "action_timed_out"): 408,
    ("actor", "invalid_request"): 400,
    ("actor", "invalid_arguments"): 400,
    ("actor", "validation_error"): 400,
    ("actor", "method_not_allowed"): 405,
    ("actor", "duplicate_key"): 409,
    ("message", "incoming_too_long"): 400,
    ("message", "outgoing_too_long"): 400,
    ("actor", "unsupported_encoding"): 400,
    ("server", "not_running"): 503,
    # Envoy mode: the actor stopped on this envoy while the request was on its way; the
    # Rivet Engine's gateway retries a 503 with this code (see pyrivet.engine._host).
    ("guard", "actor_stopped_while_waiting"): 503,
    ("inspector", "unauthorized"): 401,
    ("inspector", "disabled"): 403,
    ("inspector", "seq_not_found"): 404,
    ("actor", "workflow_in_flight"): 409,
    ("sqlite", "no_such_table"): 404,
    ("sqlite", "open_failed"): 500,
    ("sqlite", "write_failed"): 500,
    ("sqlite", "failed"): 500,
    ("sqlite", "closed"): 503,
    ("sqlite", "transaction_queue_full"): 503,
    ("server", "metrics_unavailable"): 501,
}
#: Groups whose every code is a client mistake.
_GROUP_STATUS: Final[dict[str, int]] = {
    "queue": 400,
    "schedule": 400,
    "kv": 400,
    "protocol": 400,
    "sqlite": 400,
    "inspector": 400,
}


def invalid_request(message: str, metadata: object = None) -> ActorError:
    """An ``actor/invalid_request`` error (HTTP 400, WebSocket close 1011)."""
    return ActorError(message, code="invalid_request", metadata=metadata)


def check_storable(value: object, where: str) -> None:
    """Refuse a decoded value holding an integer pyrivet cannot store.

    JSON and CBOR carry integers of any size, but state, arguments and inputs are
    stored as MessagePack (64-bit integers); such a value would fail deep in the
    runtime as an internal-looking ``message/unencodable``. Checked before anything
    runs or is created, so the request changes nothing.

    Args:
        value: the decoded arguments or input.
        where: how the message names ``value`` (``"args"``, ``"rvt-input"``, ...).

    Raises:
        ActorError: ``actor/invalid_request`` naming the integer's path and the range;
            metadata ``{"path": ..., "min": ..., "max": ...}`` (the bounds as strings).
    """
    found = values.find_unstorable_int(value)
    if found is None:
        return
    path, number = found
    raise invalid_request(
        f"{where}{path} is the integer {values.describe_int(number)}, outside the range "
        f"pyrivet accepts, {values.INT_RANGE}; send a larger number as a string",
        {"path": f"{where}{path}", "min": str(values.INT_MIN), "max": str(values.INT_MAX)},
    )


def to_wire(exc: BaseException) -> ActorError:
    """The error a client may see for ``exc``.

    Public `ActorError`s pass through (decode failures renamed to
    ``actor/invalid_request``); anything else is logged and becomes `InternalError`.
    """
    if isinstance(exc, UnsupportedEncodingError):
        return ActorError(exc.message, code="unsupported_encoding", metadata=exc.metadata)
    if isinstance(exc, ProtocolError):
        return invalid_request(exc.message, exc.metadata)
    if isinstance(exc, ActorError):
        return exc if exc.public else InternalError()
    log.error("unexpected error while serving a request", exc_info=exc)
    return InternalError()


def http_status(error: ActorError) -> int:
    """The HTTP status for an error already passed through `to_wire`."""
    status = _STATUS.get((error.group, error.code))
    if status is not None:
        return status
    return _GROUP_STATUS.get(error.group, 500)


def error_reply(
    exc: BaseException,
    encoding: Encoding = "json",
    *,
    actor: ActorSpecifier | None = None,
) -> HttpReply:
    """The HTTP response for ``exc`` in ``encoding`` (JSON for gateway-level errors).

    Carries ``x-rivet-error: group.code``. If the error body cannot be encoded (e.g.
    user metadata of an unsupported type) the metadata is dropped.
    """
    error = to_wire(exc)
    body_record = HttpResponseError.from_exception(error, actor=actor)
    try:
        body = encode_http(body_record, encoding)
    except EncodingError:
        body_record = HttpResponseError(error.group, error.code, error.message, None, actor)
        body = encode_http(body_record, encoding)
    reply = HttpReply.of(http_status(error), body, content_type(encoding))
    reply.headers.append(("x-rivet-error", f"{error.group}.{error.code}"))
    return reply


def error_frame(
    exc: BaseException,
    encoding: Encoding,
    *,
    action_id: int | None = None,
    actor: ActorSpecifier | None = None,
) -> bytes:
    """An ``Error`` frame for ``exc`` on a connect socket (``action_id`` None: the
    whole connection failed). Unencodable metadata is dropped."""
    error = to_wire(exc)
    frame = Error.from_exception(error, action_id=action_id, actor=actor)
    try:
        return encode_to_client(frame, encoding)
    except EncodingError:
        bare = Error(error.group, error.code, error.message, None, action_id, actor)
        return encode_to_client(bare, encoding)


def close_reason(exc: BaseException) -> str:
    """The close reason ``group.code`` RivetKit clients parse (at most 123 bytes)."""
    error = to_wire(exc)
    return f"{error.group}.{error.code}".encode()[:123].decode("utf-8", "ignore")


def incoming_too_long(what: str, size: int | None, limit: int) -> ActorError:
    """``message/incoming_too_long`` for a request body or frame past the limit."""
    amount = f"{size} bytes" if size is not None else f"more than {limit} bytes"
    return ActorError(
        f"{what} is {amount}, above the incoming message limit ({limit} bytes)",
        group="message",
        code="incoming_too_long",
        metadata={"limit": limit} if size is None else {"limit": limit, "size": size},
    )


def outgoing_too_long(what: str, size: int, limit: int) -> ActorError:
    """``message/outgoing_too_long`` for a reply or event past the limit."""
    return ActorError(
        f"{what} is {size} bytes, above the outgoing message limit ({limit} bytes)",
        group="message",
        code="outgoing_too_long",
        metadata={"limit": limit},
    )
