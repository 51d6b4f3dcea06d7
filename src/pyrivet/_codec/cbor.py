"""CBOR encoding of user values and protocol trees, matching RivetKit's JavaScript side.

Two flavours exist on the wire (see the protocol reference, §5.2 and §5.3):

* **compat** (`encode` / `decode`): CBOR of the JSON-compat form of a value (bigints,
  bytes, sets and undefined as ``["$Tag", ...]`` arrays; see `json_compat`). The nested
  payloads of the bare encoding use it in both directions, as do ``rvt-input`` and the
  values a server puts in cbor replies, which the JavaScript client revives.
* **native** (`encode_native` / `decode_native`): plain CBOR as cbor-x writes it, with
  no compat layer. The JavaScript client sends its values this way in the cbor
  encoding: bigints as 64-bit integers, ``Uint8Array`` as tag 64, ``Set`` as tag 258,
  ``undefined`` as ``0xf7``.

Decoding accepts what cbor-x produces: 16-bit map headers (``0xb9``), typed arrays
(tags 64-87: tag 64/68 become bytes, the others lists of numbers), ``undefined``
(becomes ``None``), dates (tag 1, become aware datetimes). Other tags are unwrapped to
their content, except those cbor2 turns into other Python types (decimal fractions,
regular expressions, UUIDs, ...): no RivetKit peer writes them, so they are rejected.
So is input with trailing bytes, or whose decoded form is larger than the input could
hold without shared references (a guard against "billion laughs" built from tags
28/29).
"""

from __future__ import annotations

import datetime as dt
import io
import struct
from collections.abc import Mapping
from typing import Any, Final

import cbor2

from ..errors import EncodingError
from .cbor_small import read_small, write_small
from .errors import InvalidMessageError
from .json_compat import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    BadValue,
    ValueWalker,
    from_compat,
    to_compat,
)

__all__ = [
    "Uint64",
    "decode",
    "decode_native",
    "encode",
    "encode_native",
    "encode_tree",
    "load_tree",
    "to_native",
]

_UTC = dt.UTC
#: How deep `_is_plain` looks before it leaves a value to the general code.
_PLAIN_DEPTH: Final = 16
_TAG_SET: Final = 258
_BYTE_TAGS: Final = frozenset({64, 68})
#: RFC 8746 typed arrays (cbor-x writes the little-endian ones), as struct formats.
_TYPED_ARRAYS: Final = {
    65: ">H",
    66: ">I",
    67: ">Q",
    69: "<H",
    70: "<I",
    71: "<Q",
    72: "b",
    73: ">h",
    74: ">i",
    75: ">q",
    77: "<h",
    78: "<i",
    79: "<q",
    80: ">e",
    81: ">f",
    82: ">d",
    84: "<e",
    85: "<f",
    86: "<d",
}


class Uint64:
    """A protocol ``uint`` that must be written with the 8-byte CBOR argument (``0x1b``).

    cbor-x decodes only such integers to ``bigint``, which the JavaScript client requires
    for action ids (a small ``0x00`` would decode to a number and fail validation).
    """

    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        if not 0 <= value < 2**64:
            raise EncodingError(f"protocol uint out of range: {value}")
        self.value = value

    def __repr__(self) -> str:
        return f"Uint64({self.value})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Uint64) and other.value == self.value

    def __hash__(self) -> int:
        return hash(("Uint64", self.value))


def _default(encoder: cbor2.CBOREncoder, value: Any) -> None:
    if isinstance(value, Uint64):
        encoder.write(b"\x1b" + value.value.to_bytes(8, "big"))
        return
    raise TypeError(f"cannot serialize type {type(value).__name__}")


def encode_tree(tree: Any) -> bytes:
    """Serialize a prepared tree as CBOR.

    Args:
        tree: builtins as produced by `to_compat` (CBOR target) or `to_native`, plus
            `Uint64` markers at protocol-uint positions.

    Returns:
        The CBOR bytes (maps with ordinary ``0xa_`` headers, in insertion order).

    Raises:
        EncodingError: the tree holds a type CBOR cannot carry.
    """
    try:
        return cbor2.dumps(tree, default=_default, datetime_as_timestamp=True, timezone=_UTC)
    except (cbor2.CBOREncodeError, TypeError, ValueError, OverflowError) as exc:
        raise EncodingError(f"cannot encode value as CBOR: {exc}") from None


class _Normalizer:
    """Turns cbor2's output into plain values, within a node budget."""

    __slots__ = ("remaining",)

    def __init__(self, budget: int) -> None:
        self.remaining = budget

    def walk(self, value: Any, depth: int) -> Any:
        self.remaining -= 1
        if self.remaining < 0:
            raise BadValue(
                "decoded value is larger than its encoding "
                "(shared references, CBOR tags 28/29, are not supported)"
            )
        kind = type(value)
        if value is None or kind is str or kind is int or kind is bool or kind is float:
            return value
        if kind is bytes:
            return value
        if depth >= MAX_DEPTH:
            raise BadValue(f"nested deeper than {MAX_DEPTH} levels")
        if kind is list or kind is tuple:  # tuples: arrays cbor2 read in immutable contexts
            out: list[Any] = []
            index = 0
            try:
                for index, item in enumerate(value):  # noqa: B007 - index is read in except
                    out.append(self.walk(item, depth + 1))
            except BadValue as bad:
                raise bad.add_index(index) from None
            return out
        if kind is dict:
            mapped: dict[Any, Any] = {}
            key: object = None
            try:
                for key, item in value.items():
                    mapped[key] = self.walk(item, depth + 1)
            except BadValue as bad:
                raise bad.add_key(key) from None
            return mapped
        return self._other(value, depth)

    def _other(self, value: Any, depth: int) -> Any:
        if value is cbor2.undefined:
            return None
        if isinstance(value, cbor2.CBORTag):
            return self._tag(value.tag, value.value, depth)
        if isinstance(value, (set, frozenset)):
            items = [self.walk(item, depth + 1) for item in value]
            try:
                return set(items)
            except TypeError:
                return items
        if isinstance(value, cbor2.CBORSimpleValue):
            raise BadValue(f"unsupported CBOR simple value {value.value}")
        if isinstance(value, Mapping):  # cbor2's frozendict, in immutable contexts
            return {key: self.walk(item, depth + 1) for key, item in value.items()}
        if isinstance(value, dt.date):  # tags 0/1 (and 100/1004), as cbor-x writes Date
            return value
        # cbor2 understands more semantic tags (decimal fractions, regular expressions,
        # MIME, UUIDs, IP addresses, ...) that no RivetKit peer writes; letting such
        # objects into user values would only fail later and further from the cause.
        raise BadValue(f"unsupported CBOR item of type {type(value).__name__}")

    def _tag(self, tag: int, content: Any, depth: int) -> Any:
        if tag in _BYTE_TAGS and isinstance(content, bytes):
            return content
        fmt = _TYPED_ARRAYS.get(tag)
        if fmt is not None and isinstance(content, bytes):
            size = struct.calcsize(fmt)
            if len(content) % size:
                raise BadValue(f"typed array (CBOR tag {tag}) has a partial element")
            return [item[0] for item in struct.iter_unpack(fmt, content)]
        return self.walk(content, depth + 1)


def load_tree(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode one CBOR item into plain values, without reviving compat tags.

    Args:
        data: exactly one CBOR data item (text is rejected with a clear error).

    Returns:
        dict/list/str/int/float/bool/None, bytes, sets, datetimes, ... (see the module
        docstring for how cbor-x specific items are mapped).

    Raises:
        InvalidMessageError: empty, truncated or malformed CBOR, trailing bytes, or a
            value nested too deeply.
    """
    raw = _raw(data)
    return _normalize(_decode_item(raw), len(raw))


def _raw(data: bytes | bytearray | memoryview | str) -> bytes:
    """``data`` as bytes; text is rejected with a clear error."""
    if isinstance(data, str):
        raise InvalidMessageError("invalid CBOR: expected binary data, got text")
    return data if type(data) is bytes else bytes(data)


def _decode_item(raw: bytes) -> Any:
    """cbor2's decoding of the one item ``raw`` holds, as cbor2 returns it.

    Raises:
        InvalidMessageError: empty, truncated or malformed CBOR, or trailing bytes.
    """
    if not raw:
        raise InvalidMessageError("invalid CBOR: the message is empty")
    stream = io.BytesIO(raw)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except cbor2.CBORDecodeEOF:
        raise InvalidMessageError(f"invalid CBOR: truncated ({len(raw)} bytes)") from None
    except Exception as exc:  # any failure on untrusted bytes means "not valid CBOR"
        raise InvalidMessageError(f"invalid CBOR: {exc}") from None
    if stream.tell() != len(raw):
        extra = len(raw) - stream.tell()
        raise InvalidMessageError(f"invalid CBOR: {extra} unexpected bytes after the value")
    return value


def _normalize(value: Any, size: int) -> Any:
    """cbor2's output as plain values (see `_Normalizer`), for an encoding of ``size``
    bytes.

    Raises:
        InvalidMessageError: the value is larger than its encoding, nested too deeply,
            or holds an item no RivetKit peer writes.
    """
    try:
        # Every item of a CBOR encoding takes at least one byte, so an honest value
        # never decodes to more nodes than it has bytes.
        return _Normalizer(size + 8).walk(value, 0)
    except BadValue as bad:
        raise InvalidMessageError(f"invalid value at {bad.where()}: {bad.reason}") from None


class _NativeEncoder(ValueWalker):
    """Converts a Python value to what cbor-x would write for it, without compat tags."""

    __slots__ = ()

    def _bytes(self, value: bytes) -> Any:
        return value

    def _set(self, items: list[Any]) -> Any:
        return cbor2.CBORTag(_TAG_SET, items)

    def _undefined(self) -> Any:
        return cbor2.undefined


_NATIVE = _NativeEncoder(json=False)


def to_native(value: Any) -> Any:
    """Convert a Python value to a tree `encode_tree` writes as plain cbor-x CBOR.

    Args:
        value: a value of the types listed in `json_compat`.

    Returns:
        The tree: bytes stay bytes, sets become tag 258, `UNDEFINED` CBOR undefined,
        large ints stay ints (64-bit or bignum on the wire); nothing is escaped.

    Raises:
        EncodingError: something inside ``value`` cannot be sent; the message gives its
            position.
    """
    try:
        return _NATIVE.walk(value, 0)
    except BadValue as bad:
        raise EncodingError(
            f"cannot encode value at {bad.where()}: {bad.reason}",
            metadata={"path": bad.where()},
        ) from None


def encode(value: Any) -> bytes:
    """Encode a value as CBOR of its JSON-compat form (``cbor.encode(jsonCompat(v))``).

    Args:
        value: the value.

    Returns:
        CBOR bytes a RivetKit JavaScript peer decodes and revives to the same value.

    Raises:
        EncodingError: the value (or something inside it) cannot be encoded.
    """
    small = write_small(value)
    if small is not None:
        return small
    if _is_plain(value, 0):
        try:
            return _dumps(value)
        except UnicodeEncodeError:
            pass  # a lone surrogate: the general path says where it is
    return encode_tree(to_compat(value, json=False))


def decode(data: bytes | bytearray | memoryview) -> Any:
    """Decode CBOR of a JSON-compat form, reviving the tags.

    Args:
        data: exactly one CBOR item.

    Returns:
        The Python value.

    Raises:
        InvalidMessageError: malformed CBOR, trailing bytes, or an invalid compat tag.
    """
    if type(data) is bytes:
        # An unsigned integer below 2**32 (an action's result, often): read here,
        # without cbor2's decoder, its stream and the plain-value walk.
        size = _UINT_SIZES.get(data[:1])
        if size == len(data):
            return data[0] if size == 1 else int.from_bytes(data[1:], "big")
        items = read_small(data)  # a short list of small integers and strings
        if items is not None:
            return items
    raw = _raw(data)
    value = _decode_item(raw)
    if _is_plain(value, 0):
        return value
    return from_compat(_normalize(value, len(raw)))


#: Size of a whole CBOR unsigned integer below 2**32 (major type 0), by its first byte:
#: 0..23 inline, then 1, 2 or 4 bytes of big-endian value.
_UINT_SIZES: Final = {
    **{bytes((head,)): 1 for head in range(0x18)},
    b"\x18": 2,
    b"\x19": 3,
    b"\x1a": 5,
}


# MARK: plain values, without the compat walk
#
# Most payloads (action arguments and results, event arguments) are a few small
# integers and strings, maybe in a list. Such a value is its own compat form, so
# building that form (`to_compat`) and, on the way in, normalizing cbor2's output and
# reviving it (`_Normalizer`, `from_compat`) only copy it: for ``[1]`` they cost several
# times cbor2's own work (the server encodes or decodes four payloads per WebSocket
# action). `encode` and `decode` skip them for the values `_is_plain` accepts; cbor2
# writes and reads the bytes either way.

_dumps = cbor2.dumps


def _is_plain(value: Any, depth: int) -> bool:
    """Whether ``value`` is its own compat form, which cbor2 writes as `encode_tree`
    does: integers within the safe range, text, bool, None, floats, and lists (or
    tuples) of those, at most `_PLAIN_DEPTH` deep, none of them a compat tag (a
    two-item list whose first item is text starting with ``$``)."""
    kind = type(value)
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if kind is str or kind is float or kind is bool or value is None:
        return True
    if (kind is list or kind is tuple) and depth < _PLAIN_DEPTH:
        if len(value) == 2 and type(value[0]) is str and value[0].startswith("$"):
            return False
        for item in value:
            item_kind = type(item)
            if item_kind is int:  # most items: tested here, without a call
                if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                    return False
            elif item_kind is not str and not _is_plain(item, depth + 1):
                return False
        return True
    return False


def encode_native(value: Any) -> bytes:
    """Encode a value as plain CBOR, the way cbor-x writes JavaScript values.

    Raises:
        EncodingError: the value (or something inside it) cannot be encoded.
    """
    return encode_tree(to_native(value))


def decode_native(data: bytes | bytearray | memoryview) -> Any:
    """Decode plain CBOR (no compat tags revived); same as `load_tree`.

    Raises:
        InvalidMessageError: malformed CBOR or trailing bytes.
    """
    return load_tree(data)
