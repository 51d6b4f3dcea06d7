"""Errors raised when a peer's input is not a valid protocol message.

`ProtocolError` and `InvalidMessageError` are defined with the value codecs (which
raise them too, see ``pyrivet._codec.errors``) and re-exported here, so code above the
protocol imports every protocol error from this one module.
"""

from __future__ import annotations

from .._codec.errors import InvalidMessageError, ProtocolError

__all__ = ["InvalidMessageError", "ProtocolError", "UnsupportedEncodingError"]


class UnsupportedEncodingError(ProtocolError):
    """Raised when a peer asks for an encoding other than ``json``, ``cbor`` or ``bare``."""

    default_code = "unsupported_encoding"
