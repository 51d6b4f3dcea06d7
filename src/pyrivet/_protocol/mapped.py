"""The json and cbor encodings: messages as maps with field names.

Both share one shape (``{"body": {"tag": "ActionRequest", "val": {...}}}`` on
WebSockets, flat maps for HTTP bodies) and differ in leaves:

| leaf            | json                     | cbor                                   |
|-----------------|--------------------------|----------------------------------------|
| protocol uint   | ``["$BigInt", "N"]``     | 8-byte integer (``0x1b`` + 8 bytes)    |
| user value out  | JSON-compat              | to client: CBOR of JSON-compat;        |
|                 |                          | to server: native CBOR (as cbor-x)     |
| user value in   | JSON-compat revived      | from client: native; from server:      |
|                 |                          | JSON-compat revived                    |

The JavaScript client validates protocol uints as ``bigint``, so they must be written
that way; ``generation`` is written as a plain number in json. Reading accepts either
form everywhere. The client sends cbor values raw, without the compat layer; reviving
them would misread a user array like ``["$x", 1]``, so values from clients are not
revived in cbor.

Key order follows the captured traffic: servers write keys sorted (except the HTTP
error body, in schema order), clients in schema order. Absent optional fields are
omitted, except ``actionId``, which the client requires as ``null``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal, TypeVar

from .._codec import cbor, json_compat
from .._codec.json_compat import MAX_SAFE_INTEGER, TAG_BIGINT
from .._util.words import a_or_an
from ..errors import EncodingError
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
    "read_http",
    "read_to_client",
    "read_to_server",
    "write_http",
    "write_to_client",
    "write_to_server",
]

MappedEncoding = Literal["json", "cbor"]
Direction = Literal["to_client", "to_server"]
T = TypeVar("T")

_U64_LIMIT: Final = 1 << 64

# Which HTTP bodies travel to the client (the others are requests).
_TO_CLIENT_BODIES: Final = (
    HttpActionResponse,
    HttpQueueSendResponse,
    HttpResponseError,
    HttpResolveResponse,
)


# MARK: leaves


class _Writer:
    """How one encoding writes leaves in one direction."""

    def __init__(self, encoding: MappedEncoding, direction: Direction) -> None:
        self.json = encoding == "json"
        self.direction = direction

    def value(self, value: Any) -> Any:
        if self.json:
            return json_compat.to_compat(value, json=True)
        if self.direction == "to_client":
            return json_compat.to_compat(value, json=False)
        return cbor.to_native(value)

    def uint(self, value: int) -> Any:
        if self.json:
            if not 0 <= value < _U64_LIMIT:
                raise EncodingError(f"protocol uint out of range: {value}")
            return [TAG_BIGINT, str(value)]
        return cbor.Uint64(value)

    def generation(self, value: int) -> Any:
        if self.json and 0 <= value <= MAX_SAFE_INTEGER:
            return value
        return self.uint(value)

    def dump(self, tree: dict[str, Any]) -> bytes:
        return json_compat.encode_tree(tree) if self.json else cbor.encode_tree(tree)


_WRITERS: Final = {
    (encoding, direction): _Writer(encoding, direction)
    for encoding in ("json", "cbor")
    for direction in ("to_client", "to_server")
}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return a_or_an(type(value).__name__)


class _Reader:
    """How one encoding reads leaves in one direction; also parses whole messages."""

    def __init__(self, encoding: MappedEncoding, direction: Direction) -> None:
        self.json = encoding == "json"
        # Values written by the JavaScript client in cbor are raw; everything else
        # carries the compat layer.
        self.revive = self.json or direction == "to_client"

    def parse(self, data: bytes | bytearray | memoryview | str) -> Any:
        if self.json:
            return json_compat.parse_json(data)
        if isinstance(data, str):
            raise InvalidMessageError("invalid CBOR: cbor messages are binary, got text")
        return cbor.load_tree(data)

    def value(self, value: Any, where: str) -> Any:
        if not self.revive:
            return value
        try:
            return json_compat.from_compat(value)
        except InvalidMessageError as exc:
            raise InvalidMessageError(f"{where}: {exc.message}") from None

    def uint(self, value: Any, where: str) -> int:
        number = value
        if (
            isinstance(value, list)
            and len(value) == 2
            and value[0] == TAG_BIGINT
            and isinstance(value[1], str)
            and value[1].isascii()
            and value[1].isdigit()
        ):
            number = int(value[1])
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        if not isinstance(number, int) or isinstance(number, bool):
            raise InvalidMessageError(
                f"{where} must be an unsigned integer, got {_kind(value)}: {value!r:.60}"
            )
        if not 0 <= number < _U64_LIMIT:
            raise InvalidMessageError(f"{where} must be between 0 and 2**64 - 1, got {number}")
        return number


_READERS: Final = {
    (encoding, direction): _Reader(encoding, direction)
    for encoding in ("json", "cbor")
    for direction in ("to_client", "to_server")
}


class _Fields:
    """Checked access to the fields of one decoded map."""

    __slots__ = ("_map", "_where")

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise InvalidMessageError(f"{where} must be an object, got {_kind(value)}")
        self._map: dict[Any, Any] = value
        self._where = where

    def at(self, key: str) -> str:
        return f"{self._where}.{key}"

    def required(self, key: str) -> Any:
        if key not in self._map:
            raise InvalidMessageError(f"{self._where} is missing the field '{key}'")
        return self._map[key]

    def optional(self, key: str) -> Any:
        """The field's value; None when it is absent, null or undefined."""
        return self._map.get(key)

    def string(self, key: str) -> str:
        value = self.required(key)
        if not isinstance(value, str):
            raise InvalidMessageError(f"{self.at(key)} must be a string, got {_kind(value)}")
        return value

    def optional_string(self, key: str) -> str | None:
        value = self.optional(key)
        if value is not None and not isinstance(value, str):
            raise InvalidMessageError(f"{self.at(key)} must be a string, got {_kind(value)}")
        return value

    def boolean(self, key: str) -> bool:
        value = self.required(key)
        if not isinstance(value, bool):
            raise InvalidMessageError(f"{self.at(key)} must be a boolean, got {_kind(value)}")
        return value

    def optional_boolean(self, key: str) -> bool | None:
        value = self.optional(key)
        if value is not None and not isinstance(value, bool):
            raise InvalidMessageError(f"{self.at(key)} must be a boolean, got {_kind(value)}")
        return value


def _as_args(value: Any) -> list[Any]:
    """Normalize action/event arguments: a list, null -> [], anything else -> [value]."""
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _envelope(tag: str, val: dict[str, Any]) -> dict[str, Any]:
    return {"body": {"tag": tag, "val": val}}


def _open_envelope(tree: Any, what: str) -> tuple[str, _Fields]:
    root = _Fields(tree, what)
    body = _Fields(root.required("body"), f"{what}.body")
    tag = body.string("tag")
    return tag, _Fields(body.required("val"), tag)


def _actor_tree(writer: _Writer, actor: ActorSpecifier) -> dict[str, Any]:
    tree: dict[str, Any] = {
        "actorId": actor.actor_id,
        "generation": writer.generation(actor.generation),
    }
    if actor.key is not None:
        tree["key"] = actor.key
    return tree


def _read_actor(reader: _Reader, value: Any, where: str) -> ActorSpecifier | None:
    if value is None:
        return None
    fields = _Fields(value, where)
    return ActorSpecifier(
        fields.string("actorId"),
        reader.uint(fields.required("generation"), fields.at("generation")),
        fields.optional_string("key"),
    )


# MARK: WebSocket messages


def write_to_client(msg: ToClient, encoding: MappedEncoding) -> bytes:
    """Encode a server-to-client message.

    Raises:
        EncodingError: a payload cannot be encoded or an integer is out of range.
        TypeError: ``msg`` is not a `ToClient` message.
    """
    writer = _WRITERS[encoding, "to_client"]
    if isinstance(msg, Init):
        tree = _envelope("Init", {"actorId": msg.actor_id, "connectionId": msg.connection_id})
    elif isinstance(msg, Error):
        val: dict[str, Any] = {
            "actionId": None if msg.action_id is None else writer.uint(msg.action_id)
        }
        if msg.actor is not None:
            val["actor"] = _actor_tree(writer, msg.actor)
        val["code"] = msg.code
        val["group"] = msg.group
        val["message"] = msg.message
        if msg.metadata is not None:
            val["metadata"] = writer.value(msg.metadata)
        tree = _envelope("Error", val)
    elif isinstance(msg, ActionResponse):
        tree = _envelope(
            "ActionResponse", {"id": writer.uint(msg.id), "output": writer.value(msg.output)}
        )
    elif isinstance(msg, Event):
        tree = _envelope("Event", {"args": writer.value(list(msg.args)), "name": msg.name})
    else:
        raise TypeError(f"not a ToClient message: {type(msg).__name__}")
    return writer.dump(tree)


def read_to_client(
    data: bytes | bytearray | memoryview | str, encoding: MappedEncoding
) -> ToClient:
    """Decode a server-to-client message.

    Raises:
        InvalidMessageError: malformed input, a missing or mistyped field, or an
            unknown message tag.
    """
    reader = _READERS[encoding, "to_client"]
    tag, val = _open_envelope(reader.parse(data), "ToClient")
    if tag == "Init":
        return Init(val.string("actorId"), val.string("connectionId"))
    if tag == "Error":
        action_id = val.optional("actionId")
        return Error(
            val.string("group"),
            val.string("code"),
            val.string("message"),
            reader.value(val.optional("metadata"), val.at("metadata")),
            None if action_id is None else reader.uint(action_id, val.at("actionId")),
            _read_actor(reader, val.optional("actor"), val.at("actor")),
        )
    if tag == "ActionResponse":
        return ActionResponse(
            reader.uint(val.required("id"), val.at("id")),
            reader.value(val.optional("output"), val.at("output")),
        )
    if tag == "Event":
        return Event(
            val.string("name"), _as_args(reader.value(val.optional("args"), val.at("args")))
        )
    raise InvalidMessageError(
        f"unknown ToClient message tag {tag!r} (expected Init, Error, ActionResponse or Event)"
    )


def write_to_server(msg: ToServer, encoding: MappedEncoding) -> bytes:
    """Encode a client-to-server message.

    Raises:
        EncodingError: a payload cannot be encoded or an integer is out of range.
        TypeError: ``msg`` is not a `ToServer` message.
    """
    writer = _WRITERS[encoding, "to_server"]
    if isinstance(msg, ActionRequest):
        val = {"id": writer.uint(msg.id), "name": msg.name, "args": writer.value(list(msg.args))}
        tree = _envelope("ActionRequest", val)
    elif isinstance(msg, SubscriptionRequest):
        tree = _envelope(
            "SubscriptionRequest", {"eventName": msg.event_name, "subscribe": msg.subscribe}
        )
    else:
        raise TypeError(f"not a ToServer message: {type(msg).__name__}")
    return writer.dump(tree)


def read_to_server(
    data: bytes | bytearray | memoryview | str, encoding: MappedEncoding
) -> ToServer:
    """Decode a client-to-server message.

    Raises:
        InvalidMessageError: malformed input, a missing or mistyped field, or an
            unknown message tag.
    """
    reader = _READERS[encoding, "to_server"]
    tag, val = _open_envelope(reader.parse(data), "ToServer")
    if tag == "ActionRequest":
        return ActionRequest(
            reader.uint(val.required("id"), val.at("id")),
            val.string("name"),
            _as_args(reader.value(val.optional("args"), val.at("args"))),
        )
    if tag == "SubscriptionRequest":
        return SubscriptionRequest(val.string("eventName"), val.boolean("subscribe"))
    raise InvalidMessageError(
        f"unknown ToServer message tag {tag!r} (expected ActionRequest or SubscriptionRequest)"
    )


# MARK: HTTP bodies


def write_http(msg: HttpBody, encoding: MappedEncoding) -> bytes:
    """Encode an HTTP body record.

    Raises:
        EncodingError: a payload cannot be encoded or an integer is out of range.
        TypeError: ``msg`` is not an HTTP body record.
    """
    direction: Direction = "to_client" if isinstance(msg, _TO_CLIENT_BODIES) else "to_server"
    writer = _WRITERS[encoding, direction]
    tree: dict[str, Any]
    if isinstance(msg, HttpActionRequest):
        tree = {"args": writer.value(list(msg.args))}
    elif isinstance(msg, HttpActionResponse):
        tree = {"output": writer.value(msg.output)}
    elif isinstance(msg, HttpQueueSendRequest):
        tree = {"body": writer.value(msg.body)}
        if msg.name is not None:
            tree["name"] = msg.name
        if msg.wait is not None:
            tree["wait"] = msg.wait
        if msg.timeout_ms is not None:
            if not 0 <= msg.timeout_ms < _U64_LIMIT:
                raise EncodingError(f"queue timeout out of range: {msg.timeout_ms}")
            tree["timeout"] = msg.timeout_ms  # a plain number: the client declares z.number()
    elif isinstance(msg, HttpQueueSendResponse):
        tree = {}
        if msg.response is not None:
            tree["response"] = writer.value(msg.response)
        tree["status"] = msg.status
    elif isinstance(msg, HttpResponseError):
        tree = {"group": msg.group, "code": msg.code, "message": msg.message}
        if msg.metadata is not None:
            tree["metadata"] = writer.value(msg.metadata)
        if msg.actor is not None:
            tree["actor"] = _actor_tree(writer, msg.actor)
    elif isinstance(msg, HttpResolveResponse):
        tree = {"actorId": msg.actor_id}
    else:
        raise TypeError(f"not an HTTP body record: {type(msg).__name__}")
    return writer.dump(tree)


def _http_action_request(reader: _Reader, body: _Fields) -> HttpActionRequest:
    return HttpActionRequest(_as_args(reader.value(body.optional("args"), body.at("args"))))


def _http_action_response(reader: _Reader, body: _Fields) -> HttpActionResponse:
    return HttpActionResponse(reader.value(body.optional("output"), body.at("output")))


def _http_queue_send_request(reader: _Reader, body: _Fields) -> HttpQueueSendRequest:
    timeout = body.optional("timeout")
    return HttpQueueSendRequest(
        reader.value(body.optional("body"), body.at("body")),
        body.optional_string("name"),
        body.optional_boolean("wait"),
        None if timeout is None else reader.uint(timeout, body.at("timeout")),
    )


def _http_queue_send_response(reader: _Reader, body: _Fields) -> HttpQueueSendResponse:
    value = body.string("status")
    status = QueueSendStatus.from_wire(value)
    if status is None:
        raise InvalidMessageError(
            f"{body.at('status')} must be 'completed' or 'timedOut', got {value!r:.60}"
        )
    return HttpQueueSendResponse(
        status, reader.value(body.optional("response"), body.at("response"))
    )


def _http_response_error(reader: _Reader, body: _Fields) -> HttpResponseError:
    return HttpResponseError(
        body.string("group"),
        body.string("code"),
        body.string("message"),
        reader.value(body.optional("metadata"), body.at("metadata")),
        _read_actor(reader, body.optional("actor"), body.at("actor")),
    )


def _http_resolve_response(reader: _Reader, body: _Fields) -> HttpResolveResponse:
    return HttpResolveResponse(body.string("actorId"))


_HTTP_READERS: Final[dict[type[Any], Callable[[_Reader, _Fields], Any]]] = {
    HttpActionRequest: _http_action_request,
    HttpActionResponse: _http_action_response,
    HttpQueueSendRequest: _http_queue_send_request,
    HttpQueueSendResponse: _http_queue_send_response,
    HttpResponseError: _http_response_error,
    HttpResolveResponse: _http_resolve_response,
}


def read_http(
    data: bytes | bytearray | memoryview | str, encoding: MappedEncoding, kind: type[T]
) -> T:
    """Decode an HTTP body as the record type ``kind``.

    Raises:
        InvalidMessageError: malformed input or a missing or mistyped field.
        TypeError: ``kind`` is not an HTTP body record class.
    """
    read = _HTTP_READERS.get(kind)
    if read is None:
        raise TypeError(f"not an HTTP body record class: {kind!r}")
    direction: Direction = "to_client" if issubclass(kind, _TO_CLIENT_BODIES) else "to_server"
    reader = _READERS[encoding, direction]
    value: T = read(reader, _Fields(reader.parse(data), kind.__name__))
    return value
