"""Errors raised when bytes received from a peer do not decode.

They are `ActorError`s so that a server can send them back as they are: the message
says what was wrong with the input, never anything about the server. The value codecs
here raise `InvalidMessageError` because they decode untrusted wire bytes; the wire
messages of ``pyrivet._protocol`` raise the same errors (and re-export them), so both
layers of decoding fail the same way.

A server that wants to mirror RivetKit's wire behaviour answers them over HTTP with
status 400; RivetKit closes a WebSocket whose frame does not decode with code 1011 and
reason ``actor.invalid_request``.
"""

from __future__ import annotations

from ..errors import ActorError

__all__ = ["InvalidMessageError", "ProtocolError"]


class ProtocolError(ActorError):
    """Base of the errors about malformed or unsupported protocol input."""

    default_group = "protocol"
    default_code = "invalid_message"


class InvalidMessageError(ProtocolError):
    """Raised when a message or value cannot be decoded: truncated, malformed, wrong type.

    The message names the field or offset and what was expected there.
    """

    default_code = "invalid_message"
