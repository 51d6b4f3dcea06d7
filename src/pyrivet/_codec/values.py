"""Encoding of user values (state, arguments, results, KV values) for storage.

Values are encoded as MessagePack with msgspec. Supported: ``None``, bool, int, float,
str, bytes, list/tuple, dict, datetime/date/time, UUID, Decimal, enums, dataclasses,
msgspec Structs and pydantic models (as their ``model_dump()``, anywhere inside a
value). Anything else fails with an `EncodingError` that names the offending type.

Plain data decodes to plain data (tuples and sets come back as lists). A typed state
(dataclass, Struct, pydantic model) is decoded back into its type by a `ValueCodec`
built for that type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

import msgspec

from ..errors import EncodingError

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "INT_RANGE",
    "ValueCodec",
    "decode",
    "describe_int",
    "encode",
    "encode_unchecked",
    "find_unstorable_int",
    "is_plain",
    "lower_model",
]

#: The integers MessagePack (so pyrivet's storage) holds: signed or unsigned 64-bit.
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**64 - 1
#: The range as error messages state it.
INT_RANGE: Final = f"-2**63 to 2**64 - 1 ({INT_MIN} to {INT_MAX})"


def lower_model(value: Any) -> Any:
    """msgspec's hook for the types it does not know: a pydantic model becomes its
    ``model_dump()``; anything else raises msgspec's own "unsupported" TypeError.

    Storage and the wire encodings (``json_compat``) share it, so whatever a server
    accepts in a result, an event, a KV value or a queue body, in-process calls accept
    too.
    """
    dump = getattr(value, "model_dump", None)  # without importing pydantic
    if callable(dump):
        return dump()
    raise TypeError(f"Encoding objects of type {type(value).__name__} is unsupported")


_encoder = msgspec.msgpack.Encoder(enc_hook=lower_model)
_decoder = msgspec.msgpack.Decoder()
#: `encode` without its error translation, for a hot path that builds its error text
#: only on failure: raises msgspec's TypeError, ValueError or OverflowError, on which
#: the caller calls `encode` again to raise the `EncodingError`.
encode_unchecked = _encoder.encode
_UNSUPPORTED = re.compile(r"Encoding objects of type (\S+) is unsupported")


def find_unstorable_int(value: Any) -> tuple[str, int] | None:
    """The first integer inside ``value`` outside `INT_MIN`..`INT_MAX`, as (its path
    from ``value``, e.g. ``"[0].a[1]"`` or ``""`` for ``value`` itself, the integer),
    or None.

    Walks lists, tuples, sets and dict values (plain data as the decoders produce it,
    so the nesting is already bounded); other objects are not entered.
    """
    kind = type(value)
    if kind is int:
        return None if INT_MIN <= value <= INT_MAX else ("", value)
    if kind is list or kind is tuple:
        for index, item in enumerate(value):
            # The common leaves end here, without a call (this runs on every action).
            leaf = type(item)
            if leaf is str or (leaf is int and INT_MIN <= item <= INT_MAX):
                continue
            found = find_unstorable_int(item)
            if found is not None:
                return f"[{index}]{found[0]}", found[1]
        return None
    if kind is dict:
        for key, item in value.items():
            if type(item) is str:
                continue
            found = find_unstorable_int(item)
            if found is not None:
                step = f".{key}" if isinstance(key, str) else f"[{key!r}]"
                return f"{step}{found[0]}", found[1]
        return None
    if kind is set or kind is frozenset:
        for item in value:
            found = find_unstorable_int(item)
            if found is not None:
                return f"{{set item}}{found[0]}", found[1]
    return None


def describe_int(number: int) -> str:
    """An integer for a message: in full when short, else its sign, digits and ends."""
    text = str(number)
    if len(text) <= 40:
        return text
    return f"{text[:12]}...{text[-6:]} ({len(text.lstrip('-'))} digits)"


def _encoding_error(exc: Exception, what: str, value: Any = None) -> EncodingError:
    if "can't serialize ints" in str(exc):
        found = find_unstorable_int(value)
        if found is not None:
            path, number = found
            where = f" at {path.lstrip('.')}" if path else ""
            return EncodingError(
                f"cannot encode {what}: the integer {describe_int(number)}{where} is outside "
                f"the range pyrivet stores, {INT_RANGE}; send a larger number as a string",
                metadata={"path": path.lstrip(".")},
            )
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
        raise _encoding_error(exc, what, value) from None


#: Decode bytes produced by `encode` into plain data: msgspec's own method, without a
#: wrapper's call (an event's payload is decoded for each connection it goes to).
#: Raises msgspec's ``DecodeError`` on bytes `encode` did not produce.
decode: Callable[[bytes], Any] = _decoder.decode


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

    __slots__ = ("_decoder", "_pydantic", "type", "version")

    def __init__(self, tp: Any = None) -> None:
        self.type = tp
        #: The state version this codec writes (see ``versioned.py``; 1: no envelope).
        self.version = 1
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
        # `encode` written out: a strict actor's state is encoded once per action.
        try:
            return _encoder.encode(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise _encoding_error(exc, what, value) from None

    def decode(self, data: bytes) -> Any:
        """Decode bytes produced by `encode` back into the declared type."""
        return self.decode_payload(data)

    def decode_payload(self, data: bytes) -> Any:
        """Decode a value's encoding (a snapshot without its version envelope) into the
        declared type.

        Raises:
            msgspec.ValidationError, pydantic.ValidationError: it does not fit the type.
        """
        if self._pydantic:
            return self.type.model_validate(_decoder.decode(data))
        return self._decoder.decode(data)
