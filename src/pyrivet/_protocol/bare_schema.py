"""The bare encoding: client-protocol schemas v1-v4 as BARE, with the vbare prefix.

Every message starts with its schema version as a little-endian ``u16`` (``04 00``).
We always write v4 and read v1-v4. The versions differ only in:

* v1 `Init` has a third field, ``connectionToken: str`` (read and dropped);
* v3 adds `HttpQueueSendRequest` / `HttpQueueSendResponse` (not readable as v1/v2);
* v4 adds ``actor: optional<ActorSpecifier>`` at the end of `Error` and
  `HttpResponseError`.

Payload fields (``Cbor`` in the schema) are BARE ``data`` holding CBOR of the
JSON-compat form of the value, in both directions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

from .._codec import cbor
from .._codec.bare import BareReader, BareWriter
from .errors import InvalidMessageError
from .records import (
    ActionRequest,
    ActionResponse,
    ActorSpecifier,
    Error,
    Event,
    HttpActionRequest,
    HttpActionResponse,
    HttpBody,
    HttpQueueSendRequest,
    HttpQueueSendResponse,
    HttpResolveResponse,
    HttpResponseError,
    Init,
    QueueSendStatus,
    SubscriptionRequest,
    ToClient,
    ToServer,
)

__all__ = [
    "CURRENT_VERSION",
    "OLDEST_VERSION",
    "read_http",
    "read_to_client",
    "read_to_server",
    "write_http",
    "write_action_request",
    "write_to_client",
    "write_to_server",
]

#: The schema version written.
CURRENT_VERSION: Final = 4
#: The oldest schema version read.
OLDEST_VERSION: Final = 1

_TO_CLIENT_TAGS: Final = "0 Init, 1 Error, 2 ActionResponse, 3 Event"
_TO_SERVER_TAGS: Final = "0 ActionRequest, 1 SubscriptionRequest"

T = TypeVar("T")


# MARK: framing and shared pieces


def _writer() -> BareWriter:
    writer = BareWriter()
    writer.write_u16(CURRENT_VERSION)
    return writer


def _reader(data: bytes | bytearray | memoryview | str, what: str) -> tuple[BareReader, int]:
    if isinstance(data, str):
        raise InvalidMessageError(f"invalid {what}: bare messages are binary, got text")
    reader = BareReader(data, what)
    if reader.remaining < 2:
        raise reader.error("too short for the 2-byte schema version prefix")
    version = reader.read_u16()
    if not OLDEST_VERSION <= version <= CURRENT_VERSION:
        raise reader.error(
            f"unsupported client protocol version {version} "
            f"(supported: {OLDEST_VERSION} to {CURRENT_VERSION})",
            0,
        )
    return reader, version


def _finish(reader: BareReader, value: T) -> T:
    reader.expect_end()
    return value


def _write_payload(writer: BareWriter, value: Any) -> None:
    writer.write_data(cbor.encode(value))


def _read_payload(reader: BareReader, field: str) -> Any:
    start = reader.offset
    raw = reader.read_data()
    try:
        return cbor.decode(raw)
    except InvalidMessageError as exc:
        raise reader.error(f"{field}: {exc.message}", start) from None


def _read_args(reader: BareReader, field: str) -> list[Any]:
    args = _read_payload(reader, field)
    if isinstance(args, list):
        return args
    return [] if args is None else [args]


def _write_actor(writer: BareWriter, actor: ActorSpecifier) -> None:
    writer.write_str(actor.actor_id)
    writer.write_uint(actor.generation)
    writer.write_optional(actor.key, writer.write_str)


def _read_actor(reader: BareReader) -> ActorSpecifier:
    return ActorSpecifier(
        reader.read_str(), reader.read_uint(), reader.read_optional(reader.read_str)
    )


def _optional_payload(reader: BareReader, field: str) -> Any:
    return reader.read_optional(lambda: _read_payload(reader, field))


# MARK: the frames of every action, without BareReader / BareWriter
#
# Each WebSocket action is an ActionRequest one way and an ActionResponse (and often an
# Event) the other; through the general reader and writer that is ~20 method calls per
# frame, on the server and on the Python client. These functions write the same bytes
# directly, and read those frames when well-formed; for anything irregular they leave
# it to the general reader, which reports the error.

_ACTION_RESPONSE_HEAD: Final = bytes((CURRENT_VERSION, 0, 2))
_EVENT_HEAD: Final = bytes((CURRENT_VERSION, 0, 3))
_ACTION_REQUEST_HEAD: Final = bytes((CURRENT_VERSION, 0, 0))
#: ``uint`` encodings of 0..127 (one byte each).
_SMALL_UINTS: Final = tuple(bytes((n,)) for n in range(0x80))


class _Irregular(Exception):
    """The fast reader met something the general reader should judge."""


def _uint(value: int) -> bytes:
    """A BARE ``uint``, as `BareWriter.write_uint` writes it."""
    if 0 <= value < 0x80:
        return _SMALL_UINTS[value]
    if 0x80 <= value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    writer = BareWriter()
    writer.write_uint(value)  # raises EncodingError out of range
    return writer.getvalue()


def _data(payload: bytes) -> bytes:
    """A BARE ``data``: its length, then the bytes."""
    return _uint(len(payload)) + payload


def _take_uint(data: bytes, pos: int) -> tuple[int, int]:
    """A canonical ``uint`` below 2**64 at ``pos``: (value, next position); raises
    `_Irregular` or IndexError otherwise."""
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    result = byte & 0x7F
    shift = 7
    while True:
        pos += 1
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if shift > 63:
            raise _Irregular
    if byte == 0 or result >= 1 << 64:
        raise _Irregular
    return result, pos + 1


def _read_action_request(data: bytes) -> ActionRequest:
    """An ``ActionRequest`` (after the version and tag 0, from byte 3) that ends
    exactly at the end of ``data``; raises `_Irregular`, IndexError or
    UnicodeDecodeError otherwise (the general reader then takes it)."""
    # One-byte uints (ids below 128, short names, small payloads) read inline: a
    # call of `_take_uint` each was a tenth of this function's cost.
    action_id = data[3]
    if action_id < 0x80:
        pos = 4
    else:
        action_id, pos = _take_uint(data, 3)
    size = data[pos]
    if size < 0x80:
        pos += 1
    else:
        size, pos = _take_uint(data, pos)
    end = pos + size
    if end > len(data):
        raise _Irregular
    name = data[pos:end].decode()
    size = data[end]
    if size < 0x80:
        pos = end + 1
    else:
        size, pos = _take_uint(data, end)
    if pos + size != len(data):
        raise _Irregular
    try:
        args = cbor.decode(data[pos:])
    except InvalidMessageError:
        raise _Irregular from None
    if type(args) is not list:
        args = [] if args is None else [args]
    return ActionRequest(action_id, name, args)


def _payload_at(data: bytes, pos: int) -> Any:
    """The ``data`` field at ``pos`` holding a CBOR payload, which must end ``data``;
    raises `_Irregular` or IndexError otherwise."""
    size, pos = _take_uint(data, pos)
    if pos + size != len(data):
        raise _Irregular
    try:
        return cbor.decode(data[pos:])
    except InvalidMessageError:
        raise _Irregular from None


def _read_action_response(data: bytes) -> ActionResponse:
    """An ``ActionResponse`` (tag 2 at byte 2); see `_read_action_request`."""
    action_id, pos = _take_uint(data, 3)
    return ActionResponse(action_id, _payload_at(data, pos))


def _read_event(data: bytes) -> Event:
    """An ``Event`` (tag 3 at byte 2); see `_read_action_request`."""
    size, pos = _take_uint(data, 3)
    end = pos + size
    if end > len(data):
        raise _Irregular
    name = data[pos:end].decode()
    args = _payload_at(data, end)
    if type(args) is not list:
        args = [] if args is None else [args]
    return Event(name, args)


# MARK: WebSocket messages


def write_to_client(msg: ToClient) -> bytes:
    """Encode a server-to-client message as a v4 ``ToClient``.

    Raises:
        EncodingError: a payload cannot be encoded or an integer is out of range.
        TypeError: ``msg`` is not a `ToClient` message.
    """
    if type(msg) is ActionResponse:  # the frames of every action: without a BareWriter
        return b"".join((_ACTION_RESPONSE_HEAD, _uint(msg.id), _data(cbor.encode(msg.output))))
    if type(msg) is Event:
        name = msg.name.encode()
        payload = cbor.encode(list(msg.args))
        return b"".join((_EVENT_HEAD, _uint(len(name)), name, _data(payload)))
    writer = _writer()
    if isinstance(msg, Init):
        writer.write_tag(0)
        writer.write_str(msg.actor_id)
        writer.write_str(msg.connection_id)
    elif isinstance(msg, Error):
        writer.write_tag(1)
        writer.write_str(msg.group)
        writer.write_str(msg.code)
        writer.write_str(msg.message)
        writer.write_optional(msg.metadata, lambda value: _write_payload(writer, value))
        writer.write_optional(msg.action_id, writer.write_uint)
        writer.write_optional(msg.actor, lambda actor: _write_actor(writer, actor))
    elif isinstance(msg, ActionResponse):
        writer.write_tag(2)
        writer.write_uint(msg.id)
        _write_payload(writer, msg.output)
    elif isinstance(msg, Event):
        writer.write_tag(3)
        writer.write_str(msg.name)
        _write_payload(writer, list(msg.args))
    else:
        raise TypeError(f"not a ToClient message: {type(msg).__name__}")
    return writer.getvalue()


def read_to_client(data: bytes | bytearray | memoryview | str) -> ToClient:
    """Decode a ``ToClient`` message of schema v1-v4.

    Raises:
        InvalidMessageError: bad version, unknown union tag, truncated or trailing
            bytes, or an invalid payload.
    """
    if type(data) is bytes and data[1:2] == b"\x00" and 1 <= data[0] <= CURRENT_VERSION:
        try:
            if data[2] == 2:
                return _read_action_response(data)
            if data[2] == 3:
                return _read_event(data)
        except (_Irregular, IndexError, UnicodeDecodeError):
            pass  # the reader below decodes it, or says what is wrong
    reader, version = _reader(data, "ToClient")
    start = reader.offset
    tag = reader.read_tag()
    msg: ToClient
    if tag == 0:
        actor_id, connection_id = reader.read_str(), reader.read_str()
        if version == 1:
            reader.read_str()  # connectionToken, dropped in v2
        msg = Init(actor_id, connection_id)
    elif tag == 1:
        group, code, message = reader.read_str(), reader.read_str(), reader.read_str()
        metadata = _optional_payload(reader, "Error.metadata")
        action_id = reader.read_optional(reader.read_uint)
        actor = reader.read_optional(lambda: _read_actor(reader)) if version >= 4 else None
        msg = Error(group, code, message, metadata, action_id, actor)
    elif tag == 2:
        msg = ActionResponse(reader.read_uint(), _read_payload(reader, "ActionResponse.output"))
    elif tag == 3:
        msg = Event(reader.read_str(), _read_args(reader, "Event.args"))
    else:
        raise reader.error(f"unknown union tag {tag} (expected {_TO_CLIENT_TAGS})", start)
    return _finish(reader, msg)


def write_action_request(action_id: int, name: str, args: list[Any]) -> bytes:
    """What `write_to_server` writes for ``ActionRequest(action_id, name, args)``,
    without building the record (a connection's every call).

    Raises:
        EncodingError: an argument cannot be encoded or the id is out of range.
    """
    name_bytes = name.encode()
    return b"".join(
        (
            _ACTION_REQUEST_HEAD,
            _uint(action_id),
            _uint(len(name_bytes)),
            name_bytes,
            _data(cbor.encode(args)),
        )
    )


def write_to_server(msg: ToServer) -> bytes:
    """Encode a client-to-server message as a v4 ``ToServer``.

    Raises:
        EncodingError: a payload cannot be encoded or an integer is out of range.
        TypeError: ``msg`` is not a `ToServer` message.
    """
    if type(msg) is ActionRequest:  # every call a client makes: without a BareWriter
        return write_action_request(msg.id, msg.name, list(msg.args))
    writer = _writer()
    if isinstance(msg, ActionRequest):
        writer.write_tag(0)
        writer.write_uint(msg.id)
        writer.write_str(msg.name)
        _write_payload(writer, list(msg.args))
    elif isinstance(msg, SubscriptionRequest):
        writer.write_tag(1)
        writer.write_str(msg.event_name)
        writer.write_bool(msg.subscribe)
    else:
        raise TypeError(f"not a ToServer message: {type(msg).__name__}")
    return writer.getvalue()


def read_to_server(data: bytes | bytearray | memoryview | str) -> ToServer:
    """Decode a ``ToServer`` message of schema v1-v4 (identical in all four).

    Raises:
        InvalidMessageError: bad version, unknown union tag, truncated or trailing
            bytes, or an invalid payload.
    """
    if type(data) is bytes and data[1:3] == b"\x00\x00" and 1 <= data[0] <= CURRENT_VERSION:
        try:
            return _read_action_request(data)
        except (_Irregular, IndexError, UnicodeDecodeError):
            pass  # the reader below decodes it, or says what is wrong
    reader, _version = _reader(data, "ToServer")
    start = reader.offset
    tag = reader.read_tag()
    msg: ToServer
    if tag == 0:
        action_id, name = reader.read_uint(), reader.read_str()
        msg = ActionRequest(action_id, name, _read_args(reader, "ActionRequest.args"))
    elif tag == 1:
        msg = SubscriptionRequest(reader.read_str(), reader.read_bool())
    else:
        raise reader.error(f"unknown union tag {tag} (expected {_TO_SERVER_TAGS})", start)
    return _finish(reader, msg)


# MARK: HTTP bodies


def write_http(msg: HttpBody) -> bytes:
    """Encode an HTTP body record as its v4 struct.

    Args:
        msg: an `HttpBody` record.

    Raises:
        EncodingError: a payload cannot be encoded or an integer is out of range.
        TypeError: ``msg`` is not an HTTP body record.
    """
    writer = _writer()
    if isinstance(msg, HttpActionRequest):
        _write_payload(writer, list(msg.args))
    elif isinstance(msg, HttpActionResponse):
        _write_payload(writer, msg.output)
    elif isinstance(msg, HttpQueueSendRequest):
        _write_payload(writer, msg.body)
        writer.write_optional(msg.name, writer.write_str)
        writer.write_optional(msg.wait, writer.write_bool)
        writer.write_optional(msg.timeout_ms, writer.write_u64)
    elif isinstance(msg, HttpQueueSendResponse):
        writer.write_str(msg.status)
        writer.write_optional(msg.response, lambda value: _write_payload(writer, value))
    elif isinstance(msg, HttpResponseError):
        writer.write_str(msg.group)
        writer.write_str(msg.code)
        writer.write_str(msg.message)
        writer.write_optional(msg.metadata, lambda value: _write_payload(writer, value))
        writer.write_optional(msg.actor, lambda actor: _write_actor(writer, actor))
    elif isinstance(msg, HttpResolveResponse):
        writer.write_str(msg.actor_id)
    else:
        raise TypeError(f"not an HTTP body record: {type(msg).__name__}")
    return writer.getvalue()


def _http_action_request(reader: BareReader, version: int) -> HttpActionRequest:
    return HttpActionRequest(_read_args(reader, "HttpActionRequest.args"))


def _http_action_response(reader: BareReader, version: int) -> HttpActionResponse:
    return HttpActionResponse(_read_payload(reader, "HttpActionResponse.output"))


def _require_v3(reader: BareReader, version: int) -> None:
    if version < 3:
        raise reader.error(f"{reader.what} exists only in protocol version 3 and later", 0)


def _http_queue_send_request(reader: BareReader, version: int) -> HttpQueueSendRequest:
    _require_v3(reader, version)
    body = _read_payload(reader, "HttpQueueSendRequest.body")
    name = reader.read_optional(reader.read_str)
    wait = reader.read_optional(reader.read_bool)
    timeout_ms = reader.read_optional(reader.read_u64)
    return HttpQueueSendRequest(body, name, wait, timeout_ms)


def _http_queue_send_response(reader: BareReader, version: int) -> HttpQueueSendResponse:
    _require_v3(reader, version)
    start = reader.offset
    value = reader.read_str()
    status = QueueSendStatus.from_wire(value)
    if status is None:
        raise reader.error(f"status must be 'completed' or 'timedOut', got {value!r:.60}", start)
    return HttpQueueSendResponse(
        status, _optional_payload(reader, "HttpQueueSendResponse.response")
    )


def _http_response_error(reader: BareReader, version: int) -> HttpResponseError:
    group, code, message = reader.read_str(), reader.read_str(), reader.read_str()
    metadata = _optional_payload(reader, "HttpResponseError.metadata")
    actor = reader.read_optional(lambda: _read_actor(reader)) if version >= 4 else None
    return HttpResponseError(group, code, message, metadata, actor)


def _http_resolve_response(reader: BareReader, version: int) -> HttpResolveResponse:
    return HttpResolveResponse(reader.read_str())


_HTTP_READERS: Final[dict[type[Any], Callable[[BareReader, int], Any]]] = {
    HttpActionRequest: _http_action_request,
    HttpActionResponse: _http_action_response,
    HttpQueueSendRequest: _http_queue_send_request,
    HttpQueueSendResponse: _http_queue_send_response,
    HttpResponseError: _http_response_error,
    HttpResolveResponse: _http_resolve_response,
}


def read_http(data: bytes | bytearray | memoryview | str, kind: type[T]) -> T:
    """Decode an HTTP body of schema v1-v4 as the record type ``kind``.

    Args:
        data: the body.
        kind: one of the `HttpBody` record classes.

    Raises:
        InvalidMessageError: bad version (queue bodies need v3+), truncated or
            trailing bytes, or an invalid payload.
        TypeError: ``kind`` is not an HTTP body record class.
    """
    read = _HTTP_READERS.get(kind)
    if read is None:
        raise TypeError(f"not an HTTP body record class: {kind!r}")
    reader, version = _reader(data, kind.__name__)
    value: T = read(reader, version)
    return _finish(reader, value)
