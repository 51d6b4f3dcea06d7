"""Encoding of user values (state, arguments, results, KV values) for storage.

Values are encoded as MessagePack with msgspec. Supported: ``None``, bool, int, float,
str, bytes, list/tuple, dict, datetime/date/time, UUID, Decimal, enums, dataclasses,
msgspec Structs and, through `ValueCodec`, pydantic models. Anything else fails with an
`EncodingError` that names the offending type.

Plain data decodes to plain data (tuples and sets come back as lists). A typed state
(dataclass, Struct, pydantic model) is decoded back into its type by a `ValueCodec`
built for that type.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ..errors import EncodingError

__all__ = ["ValueCodec", "decode", "encode", "is_plain"]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()
_UNSUPPORTED = re.compile(r"Encoding objects of type (\S+) is unsupported")


def _encoding_error(exc: Exception, what: str) -> EncodingError:
    match = _UNSUPPORTED.search(str(exc))
    type_name = match.group(1) if match else None
    if type_name:
        message = (
            f"cannot encode {what}: values of type {type_name} are not supported; "
            "use plain data (dict, list, str, int, float, bool, None, bytes), "
            "a dataclass, a msgspec Struct or a pydantic model"
        )
    else:
        message = f"cannot encode {what}: {exc}"
    return EncodingError(message, metadata={"type": type_name} if type_name else None)


def encode(value: Any, what: str = "value") -> bytes:
    """Encode ``value``.

    Raises:
        EncodingError: the value (or something inside it) has an unsupported type;
            ``what`` says which value it was ("state", "argument", ...).
    """
    try:
        return _encoder.encode(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _encoding_error(exc, what) from None


def decode(data: bytes) -> Any:
    """Decode bytes produced by `encode` into plain data."""
    return _decoder.decode(data)


_PLAIN_TYPES = (dict, list, str, int, float, bool, bytes, type(None))


def is_plain(value: Any) -> bool:
    """Whether ``value`` is plain data (decoding it needs no type)."""
    return isinstance(value, _PLAIN_TYPES)


def _is_pydantic_model(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "model_validate") and hasattr(tp, "model_dump")


class ValueCodec:
    """Encodes and decodes values of one declared type (``None`` = plain data).

    Used for actor state: the runtime builds one per actor definition from the state's
    type, so a dataclass state is a dataclass again after a wake.
    """

    __slots__ = ("_decoder", "_pydantic", "type")

    def __init__(self, tp: Any = None) -> None:
        self.type = tp
        self._pydantic = _is_pydantic_model(tp)
        if tp is None or self._pydantic:
            self._decoder: msgspec.msgpack.Decoder[Any] = _decoder
        else:
            try:
                self._decoder = msgspec.msgpack.Decoder(tp)
            except TypeError as exc:
                raise TypeError(
                    f"{tp!r} cannot be used as a state type: {exc}; use plain data, a "
                    "dataclass, a msgspec Struct or a pydantic model"
                ) from None

    def encode(self, value: Any, what: str = "state") -> bytes:
        """Encode ``value``; raises `EncodingError` naming the unsupported type."""
        if self._pydantic:
            try:
                value = value.model_dump(mode="python")
            except Exception as exc:
                raise EncodingError(f"cannot encode {what}: {exc}") from None
        return encode(value, what)

    def decode(self, data: bytes) -> Any:
        """Decode bytes produced by `encode` back into the declared type."""
        if self._pydantic:
            return self.type.model_validate(_decoder.decode(data))
        return self._decoder.decode(data)
