"""Errors raised when bytes received from a peer are not a valid protocol message.

They are `ActorError`s so that a server can send them back as they are: the message
says what was wrong with the input, never anything about the server. The codecs in
``pyrivet._codec`` raise them too, because they decode untrusted wire bytes.

A server that wants to mirror RivetKit's wire behaviour answers them over HTTP with
status 400; RivetKit closes a WebSocket whose frame does not decode with code 1011 and
reason ``actor.invalid_request``.
"""

from __future__ import annotations

from ..errors import ActorError

__all__ = ["InvalidMessageError", "ProtocolError", "UnsupportedEncodingError"]


class ProtocolError(ActorError):
    """Base of the errors about malformed or unsupported protocol input."""

    default_group = "protocol"
    default_code = "invalid_message"


class InvalidMessageError(ProtocolError):
    """Raised when a message or value cannot be decoded: truncated, malformed, wrong type.

    The message names the field or offset and what was expected there.
    """

    default_code = "invalid_message"


class UnsupportedEncodingError(ProtocolError):
    """Raised when a peer asks for an encoding other than ``json``, ``cbor`` or ``bare``."""

    default_code = "unsupported_encoding"
