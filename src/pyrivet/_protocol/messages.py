"""Encoding and decoding of RivetKit client-protocol messages, in json, cbor and bare.

This is the entry point of ``pyrivet._protocol``: it re-exports the message records
and offers one pair of functions per direction, for each of the three encodings:

| function                               | used by                                   |
|----------------------------------------|-------------------------------------------|
| `encode_to_client` / `decode_to_server` | a server, on a ``connect`` WebSocket     |
| `encode_to_server` / `decode_to_client` | a client, on a ``connect`` WebSocket     |
| `encode_http` / `decode_http`           | both, for action/queue/error HTTP bodies |

```python
frame = encode_to_client(ActionResponse(id=0, output=7), "bare")
assert frame == b"\\x04\\x00\\x02\\x00\\x01\\x07"
assert decode_to_server(b'{"body":{"tag":"SubscriptionRequest","val":'
                        b'{"eventName":"n","subscribe":true}}}', "json") == (
    SubscriptionRequest(event_name="n", subscribe=True))
```

json output is UTF-8 bytes; send it as a text frame on a WebSocket (`is_binary`). All
decoders raise `InvalidMessageError` for any input that is not a valid message, with a
message saying what is wrong and where, and `UnsupportedEncodingError` for an encoding
name they do not know. Encoders raise `EncodingError` for a payload they cannot carry.
Nothing here does I/O.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias, TypeVar, cast

from . import bare_schema, mapped
from .errors import InvalidMessageError, ProtocolError, UnsupportedEncodingError
from .records import (
    QUEUE_COMPLETED,
    QUEUE_TIMED_OUT,
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
    # records
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
    "SubscriptionRequest",
    "ToClient",
    "ToServer",
    "QUEUE_COMPLETED",
    "QUEUE_TIMED_OUT",
    "QueueSendStatus",
    # encodings
    "DEFAULT_ENCODING",
    "ENCODINGS",
    "Encoding",
    "content_type",
    "is_binary",
    "parse_encoding",
    # codec
    "decode_http",
    "decode_to_client",
    "decode_to_server",
    "encode_http",
    "encode_to_client",
    "encode_to_server",
    # errors
    "InvalidMessageError",
    "ProtocolError",
    "UnsupportedEncodingError",
]

#: A wire encoding name, as sent in ``x-rivet-encoding`` / ``rivet_encoding.<name>``.
Encoding: TypeAlias = Literal["json", "cbor", "bare"]

#: Every encoding, in the order RivetKit lists them.
ENCODINGS: Final[tuple[Encoding, ...]] = ("json", "cbor", "bare")

#: What a server assumes when a request names no encoding (RivetKit's server does the
#: same; the JavaScript client itself defaults to bare and always names it).
DEFAULT_ENCODING: Final[Encoding] = "json"

H = TypeVar("H", bound=HttpBody)

_Data: TypeAlias = bytes | bytearray | memoryview | str


def parse_encoding(value: str | None) -> Encoding:
    """Validate an encoding name from a header or subprotocol.

    Args:
        value: the name; None or empty means "not given".

    Returns:
        The encoding; `DEFAULT_ENCODING` when ``value`` is None or empty.

    Raises:
        UnsupportedEncodingError: the name is not json, cbor or bare.
    """
    if value is None or not value.strip():
        return DEFAULT_ENCODING
    name = value.strip()
    if name in ENCODINGS:
        return name
    raise UnsupportedEncodingError(
        f"unsupported encoding {name!r:.40}; use one of json, cbor, bare",
        metadata={"encoding": name[:40]},
    )


def _check(encoding: str) -> Encoding:
    if encoding in ENCODINGS:
        return encoding
    raise UnsupportedEncodingError(
        f"unsupported encoding {encoding!r:.40}; use one of json, cbor, bare"
    )


def content_type(encoding: Encoding) -> str:
    """Return the HTTP ``Content-Type`` for bodies in ``encoding``.

    Raises:
        UnsupportedEncodingError: unknown encoding.
    """
    return "application/json" if _check(encoding) == "json" else "application/octet-stream"


def is_binary(encoding: Encoding) -> bool:
    """Return whether WebSocket frames in ``encoding`` are binary (json frames are text).

    Raises:
        UnsupportedEncodingError: unknown encoding.
    """
    return _check(encoding) != "json"


def encode_to_client(msg: ToClient, encoding: Encoding) -> bytes:
    """Encode a message a server sends on a connection.

    Args:
        msg: an `Init`, `Error`, `ActionResponse` or `Event`.
        encoding: the connection's encoding; bare writes schema v4.

    Returns:
        The frame (UTF-8 text for json).

    Raises:
        EncodingError: a payload cannot be encoded, or an integer is out of range.
        UnsupportedEncodingError: unknown encoding.
        TypeError: ``msg`` is not a server-to-client message.
    """
    if _check(encoding) == "bare":
        return bare_schema.write_to_client(msg)
    return mapped.write_to_client(msg, cast(mapped.MappedEncoding, encoding))


def decode_to_server(data: _Data, encoding: Encoding) -> ToServer:
    """Decode a frame a client sent on a connection.

    Args:
        data: the frame; text is accepted for json only.
        encoding: the connection's encoding; bare reads schema v1 to v4.

    Returns:
        An `ActionRequest` (``args`` always a list) or a `SubscriptionRequest`.

    Raises:
        InvalidMessageError: the frame is not a valid message.
        UnsupportedEncodingError: unknown encoding.
    """
    if _check(encoding) == "bare":
        return bare_schema.read_to_server(data)
    return mapped.read_to_server(data, cast(mapped.MappedEncoding, encoding))


def encode_to_server(msg: ToServer, encoding: Encoding) -> bytes:
    """Encode a message a client sends on a connection (as the JavaScript client does).

    Args:
        msg: an `ActionRequest` or `SubscriptionRequest`.
        encoding: the connection's encoding; bare writes schema v4.

    Raises:
        EncodingError: a payload cannot be encoded, or an integer is out of range.
        UnsupportedEncodingError: unknown encoding.
        TypeError: ``msg`` is not a client-to-server message.
    """
    if _check(encoding) == "bare":
        return bare_schema.write_to_server(msg)
    return mapped.write_to_server(msg, cast(mapped.MappedEncoding, encoding))


def decode_to_client(data: _Data, encoding: Encoding) -> ToClient:
    """Decode a frame a server sent on a connection.

    Args:
        data: the frame; text is accepted for json only.
        encoding: the connection's encoding; bare reads schema v1 to v4.

    Returns:
        An `Init`, `Error`, `ActionResponse` or `Event` (``args`` always a list).

    Raises:
        InvalidMessageError: the frame is not a valid message.
        UnsupportedEncodingError: unknown encoding.
    """
    if _check(encoding) == "bare":
        return bare_schema.read_to_client(data)
    return mapped.read_to_client(data, cast(mapped.MappedEncoding, encoding))


def encode_http(msg: HttpBody, encoding: Encoding) -> bytes:
    """Encode an HTTP request or response body.

    Requests (`HttpActionRequest`, `HttpQueueSendRequest`) are written as a client
    writes them; responses (`HttpActionResponse`, `HttpQueueSendResponse`,
    `HttpResponseError`, `HttpResolveResponse`) as a server does.

    Args:
        msg: the body record.
        encoding: the request's encoding; bare writes schema v4.

    Raises:
        EncodingError: a payload cannot be encoded, or an integer is out of range.
        UnsupportedEncodingError: unknown encoding.
        TypeError: ``msg`` is not an HTTP body record.
    """
    if _check(encoding) == "bare":
        return bare_schema.write_http(msg)
    return mapped.write_http(msg, cast(mapped.MappedEncoding, encoding))


def decode_http(data: _Data, encoding: Encoding, kind: type[H]) -> H:
    """Decode an HTTP body as the record type ``kind``.

    ```python
    request = decode_http(body, "bare", HttpActionRequest)
    ```

    Args:
        data: the body; text is accepted for json only.
        encoding: the body's encoding (for an error response whose ``Content-Type`` is
            JSON, pass ``"json"`` whatever was requested, as the JavaScript client does).
        kind: which record to read.

    Returns:
        The record; action ``args`` are always a list (``null`` gives ``[]``, a single
        value ``[value]``).

    Raises:
        InvalidMessageError: the body is not a valid ``kind``.
        UnsupportedEncodingError: unknown encoding.
        TypeError: ``kind`` is not an HTTP body record class.
    """
    if _check(encoding) == "bare":
        return bare_schema.read_http(data, kind)
    return mapped.read_http(data, cast(mapped.MappedEncoding, encoding), kind)
