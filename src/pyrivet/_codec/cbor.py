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
import math
import struct
from collections.abc import Mapping
from typing import Any, Final

import cbor2

from ..errors import EncodingError
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
_FLOAT64: Final = struct.Struct(">d")
#: How deep the plain fast paths (`_put_plain`, `_take_plain`) go before they leave the
#: value to the general code.
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
    if isinstance(data, str):
        raise InvalidMessageError("invalid CBOR: expected binary data, got text")
    raw = bytes(data)
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
    try:
        # Every item of a CBOR encoding takes at least one byte, so an honest value
        # never decodes to more nodes than it has bytes.
        return _Normalizer(len(raw) + 8).walk(value, 0)
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
    out = bytearray()
    if _put_plain(value, out, 0):
        return bytes(out)
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
        try:
            value, end = _take_plain(data, 0, 0)
        except (_NotPlain, IndexError, UnicodeDecodeError):
            pass  # the general path decodes it, or raises the proper error
        else:
            if end == len(data):
                return value
    return from_compat(load_tree(data))


# MARK: plain values, without cbor2
#
# Most payloads (action arguments and results, event arguments) are a few small
# integers and strings, maybe in a list. For those, the compat form is the value
# itself, and building it (`to_compat`), setting up cbor2's encoder, and on the way in
# cbor2's decoder, the size check (`_Normalizer`) and the revival (`from_compat`) cost
# several times what writing or reading the bytes here does (the server encodes or
# decodes four payloads per WebSocket action). These two functions handle exactly the
# values whose bytes are the same either way (integers within the safe range, text,
# bool, None, finite floats, lists of those) and report anything else, which then takes
# the general path: the output is byte for byte what cbor2 writes and reads.


class _NotPlain(Exception):
    """The value (or input) is not one `_put_plain` / `_take_plain` handle."""


def _put_head(out: bytearray, major: int, n: int) -> None:
    """Append a CBOR item head: major type (already shifted) and argument ``n >= 0``,
    in its shortest form (as cbor2 writes it)."""
    if n < 24:
        out.append(major | n)
    elif n < 0x100:
        out.append(major | 24)
        out.append(n)
    else:
        size = 2 if n < 0x10000 else 4 if n < 0x100000000 else 8
        out.append(major | (25 if size == 2 else 26 if size == 4 else 27))
        out += n.to_bytes(size, "big")


def _put_plain(value: Any, out: bytearray, depth: int) -> bool:
    """Append the CBOR of ``value``'s compat form if it is a plain value (see above);
    False (with ``out`` partly written) if it is not."""
    kind = type(value)
    if kind is int:
        if 0 <= value < 24:
            out.append(value)
        elif 0 <= value <= MAX_SAFE_INTEGER:
            _put_head(out, 0x00, value)
        elif -MAX_SAFE_INTEGER <= value < 0:
            _put_head(out, 0x20, -1 - value)
        else:
            return False  # a bigint tag
    elif kind is str:
        try:
            data = value.encode()
        except UnicodeEncodeError:
            return False  # a lone surrogate: the general path reports it
        if len(data) < 24:
            out.append(0x60 | len(data))
        else:
            _put_head(out, 0x60, len(data))
        out += data
    elif value is None:
        out.append(0xF6)
    elif kind is bool:
        out.append(0xF5 if value else 0xF4)
    elif kind is float:
        if value != value or value in (math.inf, -math.inf):
            return False  # cbor2 writes these as half floats
        out.append(0xFB)
        out += _FLOAT64.pack(value)
    elif kind is list or kind is tuple:
        if depth >= _PLAIN_DEPTH:
            return False
        if len(value) == 2 and type(value[0]) is str and value[0].startswith("$"):
            return False  # escaped in the compat form
        if len(value) < 24:
            out.append(0x80 | len(value))
        else:
            _put_head(out, 0x80, len(value))
        for item in value:
            # Small ints inline (most items): no call.
            if type(item) is int and 0 <= item < 24:
                out.append(item)
            elif not _put_plain(item, out, depth + 1):
                return False
    else:
        return False
    return True


def _take_plain(data: bytes, pos: int, depth: int) -> tuple[Any, int]:
    """Read the plain item at ``pos``: (its value, where the next item starts).

    Raises:
        _NotPlain: anything else (a tag, a map, bytes, a compat tag, indefinite lengths,
            simple values but false/true/null), which the general path handles.
        IndexError: truncated input; UnicodeDecodeError: text that is not UTF-8.
    """
    head = data[pos]
    major = head & 0xE0
    info = head & 0x1F
    pos += 1
    if major == 0xE0:
        if 20 <= info <= 22:
            return (False, True, None)[info - 20], pos
        if 25 <= info <= 27:
            size = 1 << (info - 24)
            end = pos + size
            if end > len(data):
                raise IndexError
            value = struct.unpack(">e" if size == 2 else ">f" if size == 4 else ">d", data[pos:end])
            return value[0], end
        raise _NotPlain
    if info < 24:
        n = info
    elif info < 28:
        size = 1 << (info - 24)
        end = pos + size
        if end > len(data):
            raise IndexError
        n = int.from_bytes(data[pos:end], "big")
        pos = end
    else:
        raise _NotPlain
    if major == 0x00:
        return n, pos
    if major == 0x20:
        return -1 - n, pos
    if major == 0x60:
        end = pos + n
        if end > len(data):
            raise IndexError
        return data[pos:end].decode(), end
    if major == 0x80 and depth < _PLAIN_DEPTH:
        if n > len(data) - pos:
            raise IndexError  # more items than bytes left
        items = []
        for _ in range(n):
            item, pos = _take_plain(data, pos, depth + 1)
            items.append(item)
        if n == 2 and type(items[0]) is str and items[0].startswith("$"):
            raise _NotPlain  # a compat tag to revive
        return items, pos
    raise _NotPlain


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
