"""A small BARE (Binary Application Record Encoding) reader and writer.

Only the primitives; schemas are written as code on top (see
``pyrivet._protocol.bare_schema``). Encoding rules, from the BARE specification:

* ``uint``: unsigned LEB128 varint, at most 10 bytes, at most ``2**64 - 1``;
  ``int``: zigzag-mapped, then as ``uint``. Overlong (non-canonical) varints are
  rejected.
* ``u8``..``u64`` / ``i8``..``i64`` / ``f32`` / ``f64``: fixed width, little-endian.
* ``bool``: one byte, 0 or 1. ``str``: ``uint`` byte length + UTF-8.
  ``data``: ``uint`` length + bytes; ``data<N>``: N bytes.
* ``optional<T>``: ``0x00``, or ``0x01`` then T. ``list<T>``: ``uint`` count + items.
  ``map<K, V>``: ``uint`` count + key/value pairs. ``union``: ``uint`` tag + value.
  ``struct``: the fields in order, no names.

Every read checks bounds and raises `InvalidMessageError` naming the offset, so
truncated or hostile input never escapes as ``IndexError`` or ``struct.error``.

```python
w = BareWriter()
w.write_uint(1)
w.write_str("hi")
r = BareReader(w.getvalue())
assert (r.read_uint(), r.read_str()) == (1, "hi")
r.expect_end()
```
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Final, TypeVar

from ..errors import EncodingError
from .errors import InvalidMessageError

__all__ = ["BareReader", "BareWriter"]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

_U64_LIMIT: Final = 1 << 64
_I64_MIN: Final = -(1 << 63)
_I64_MAX: Final = (1 << 63) - 1
_MAX_VARINT_BYTES: Final = 10

_FIXED = {
    name: struct.Struct(fmt)
    for name, fmt in {
        "u8": "<B",
        "u16": "<H",
        "u32": "<I",
        "u64": "<Q",
        "i8": "<b",
        "i16": "<h",
        "i32": "<i",
        "i64": "<q",
        "f32": "<f",
        "f64": "<d",
    }.items()
}


class BareWriter:
    """Appends BARE-encoded values to an internal buffer.

    Writes raise `EncodingError` for values outside a type's range (a negative
    ``uint``, a ``u8`` above 255, ...).
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def getvalue(self) -> bytes:
        """Return everything written so far."""
        return bytes(self._buf)

    def write_raw(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes as they are (no length prefix)."""
        self._buf += data

    def write_uint(self, value: int) -> None:
        """Write a ``uint`` (LEB128 varint); ``0 <= value < 2**64``."""
        if not 0 <= value < _U64_LIMIT:
            raise EncodingError(f"BARE uint out of range: {value}")
        buf = self._buf
        while value >= 0x80:
            buf.append((value & 0x7F) | 0x80)
            value >>= 7
        buf.append(value)

    def write_int(self, value: int) -> None:
        """Write an ``int`` (zigzag varint); ``-2**63 <= value < 2**63``."""
        if not _I64_MIN <= value <= _I64_MAX:
            raise EncodingError(f"BARE int out of range: {value}")
        self.write_uint((value << 1) ^ (value >> 63))

    def _fixed(self, kind: str, value: int | float) -> None:
        try:
            self._buf += _FIXED[kind].pack(value)
        except struct.error:
            raise EncodingError(f"BARE {kind} out of range: {value}") from None

    def write_u8(self, value: int) -> None:
        """Write a ``u8``."""
        self._fixed("u8", value)

    def write_u16(self, value: int) -> None:
        """Write a ``u16`` (little-endian)."""
        self._fixed("u16", value)

    def write_u32(self, value: int) -> None:
        """Write a ``u32`` (little-endian)."""
        self._fixed("u32", value)

    def write_u64(self, value: int) -> None:
        """Write a ``u64`` (little-endian)."""
        self._fixed("u64", value)

    def write_i8(self, value: int) -> None:
        """Write an ``i8``."""
        self._fixed("i8", value)

    def write_i16(self, value: int) -> None:
        """Write an ``i16`` (little-endian)."""
        self._fixed("i16", value)

    def write_i32(self, value: int) -> None:
        """Write an ``i32`` (little-endian)."""
        self._fixed("i32", value)

    def write_i64(self, value: int) -> None:
        """Write an ``i64`` (little-endian)."""
        self._fixed("i64", value)

    def write_f32(self, value: float) -> None:
        """Write an ``f32``; NaN is not allowed by BARE."""
        if math.isnan(value):
            raise EncodingError("BARE floats cannot be NaN")
        self._fixed("f32", value)

    def write_f64(self, value: float) -> None:
        """Write an ``f64``; NaN is not allowed by BARE."""
        if math.isnan(value):
            raise EncodingError("BARE floats cannot be NaN")
        self._fixed("f64", value)

    def write_bool(self, value: bool) -> None:
        """Write a ``bool`` (one byte, 0 or 1)."""
        self._buf.append(1 if value else 0)

    def write_str(self, value: str) -> None:
        """Write a ``str`` (length + UTF-8).

        Raises:
            EncodingError: the string holds lone surrogates, which UTF-8 cannot carry.
        """
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError:
            raise EncodingError("BARE str must be valid Unicode (lone surrogate found)") from None
        self.write_uint(len(encoded))
        self._buf += encoded

    def write_data(self, value: bytes | bytearray | memoryview) -> None:
        """Write variable-length ``data`` (length + bytes)."""
        self.write_uint(len(value))
        self._buf += value

    def write_fixed_data(self, value: bytes | bytearray | memoryview, length: int) -> None:
        """Write ``data<length>``; ``value`` must have exactly ``length`` bytes."""
        if len(value) != length:
            raise EncodingError(f"BARE data<{length}> got {len(value)} bytes")
        self._buf += value

    def write_tag(self, tag: int) -> None:
        """Write a union tag (a ``uint``)."""
        self.write_uint(tag)

    def write_optional(self, value: T | None, write: Callable[[T], None]) -> None:
        """Write ``optional<T>``: ``0x00`` for None, else ``0x01`` and ``write(value)``."""
        if value is None:
            self._buf.append(0)
        else:
            self._buf.append(1)
            write(value)

    def write_list(self, items: Iterable[T], write: Callable[[T], None]) -> None:
        """Write ``list<T>``: the count, then ``write(item)`` for each item."""
        materialized = list(items)
        self.write_uint(len(materialized))
        for item in materialized:
            write(item)

    def write_map(
        self,
        mapping: Mapping[K, V],
        write_key: Callable[[K], None],
        write_value: Callable[[V], None],
    ) -> None:
        """Write ``map<K, V>``: the count, then each key and value."""
        self.write_uint(len(mapping))
        for key, value in mapping.items():
            write_key(key)
            write_value(value)


class BareReader:
    """Reads BARE values from a buffer, front to back.

    Every method raises `InvalidMessageError` when the input is truncated or holds a
    value the type does not allow; the message gives the offset. `what` (for example
    ``"ToServer"``) prefixes the messages.
    """

    __slots__ = ("_data", "_pos", "what")

    def __init__(self, data: bytes | bytearray | memoryview, what: str = "BARE message") -> None:
        self._data = bytes(data)
        self._pos = 0
        self.what = what

    @property
    def offset(self) -> int:
        """The position of the next byte to read."""
        return self._pos

    @property
    def remaining(self) -> int:
        """How many bytes are left."""
        return len(self._data) - self._pos

    def error(self, problem: str, offset: int | None = None) -> InvalidMessageError:
        """Build the error for ``problem`` at ``offset`` (default: the current one)."""
        at = self._pos if offset is None else offset
        return InvalidMessageError(f"invalid {self.what}: {problem} (at byte {at})")

    def expect_end(self) -> None:
        """Check that every byte was consumed.

        Raises:
            InvalidMessageError: bytes are left over.
        """
        if self._pos != len(self._data):
            raise self.error(f"{self.remaining} unexpected bytes after the end")

    def read_raw(self, length: int) -> bytes:
        """Read exactly ``length`` bytes."""
        end = self._pos + length
        if length < 0 or end > len(self._data):
            raise self.error(f"truncated: needed {length} bytes, {self.remaining} left")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def read_uint(self) -> int:
        """Read a ``uint`` (LEB128 varint, canonical, below ``2**64``)."""
        start = self._pos
        data = self._data
        if start < len(data) and data[start] < 0x80:  # one byte: tags, ids, lengths < 128
            self._pos = start + 1
            return data[start]
        result = 0
        shift = 0
        for index in range(_MAX_VARINT_BYTES):
            if self._pos >= len(data):
                raise self.error("truncated varint", start)
            byte = data[self._pos]
            self._pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                if byte == 0 and index > 0:
                    raise self.error("non-canonical varint (overlong encoding)", start)
                if result >= _U64_LIMIT:
                    raise self.error("varint exceeds 64 bits", start)
                return result
            shift += 7
        raise self.error(f"varint longer than {_MAX_VARINT_BYTES} bytes", start)

    def read_int(self) -> int:
        """Read an ``int`` (zigzag varint)."""
        raw = self.read_uint()
        return (raw >> 1) ^ -(raw & 1)

    def _fixed(self, kind: str) -> int | float:
        codec = _FIXED[kind]
        value: int | float = codec.unpack(self.read_raw(codec.size))[0]
        return value

    def read_u8(self) -> int:
        """Read a ``u8``."""
        return int(self._fixed("u8"))

    def read_u16(self) -> int:
        """Read a ``u16`` (little-endian)."""
        return int(self._fixed("u16"))

    def read_u32(self) -> int:
        """Read a ``u32`` (little-endian)."""
        return int(self._fixed("u32"))

    def read_u64(self) -> int:
        """Read a ``u64`` (little-endian)."""
        return int(self._fixed("u64"))

    def read_i8(self) -> int:
        """Read an ``i8``."""
        return int(self._fixed("i8"))

    def read_i16(self) -> int:
        """Read an ``i16`` (little-endian)."""
        return int(self._fixed("i16"))

    def read_i32(self) -> int:
        """Read an ``i32`` (little-endian)."""
        return int(self._fixed("i32"))

    def read_i64(self) -> int:
        """Read an ``i64`` (little-endian)."""
        return int(self._fixed("i64"))

    def read_f32(self) -> float:
        """Read an ``f32``; NaN is rejected, as BARE requires."""
        start = self._pos
        value = float(self._fixed("f32"))
        if math.isnan(value):
            raise self.error("NaN is not a valid BARE float", start)
        return value

    def read_f64(self) -> float:
        """Read an ``f64``; NaN is rejected, as BARE requires."""
        start = self._pos
        value = float(self._fixed("f64"))
        if math.isnan(value):
            raise self.error("NaN is not a valid BARE float", start)
        return value

    def read_bool(self) -> bool:
        """Read a ``bool``; bytes other than 0 and 1 are rejected."""
        start = self._pos
        byte = self.read_raw(1)[0]
        if byte > 1:
            raise self.error(f"invalid bool byte 0x{byte:02x}", start)
        return byte == 1

    def _length(self) -> int:
        start = self._pos
        length = self.read_uint()
        if length > self.remaining:
            raise self.error(f"truncated: length {length} but {self.remaining} bytes left", start)
        return length

    def read_str(self) -> str:
        """Read a ``str``; invalid UTF-8 is rejected."""
        start = self._pos
        raw = self.read_raw(self._length())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error("str is not valid UTF-8", start) from None

    def read_data(self) -> bytes:
        """Read variable-length ``data``."""
        return self.read_raw(self._length())

    def read_fixed_data(self, length: int) -> bytes:
        """Read ``data<length>``."""
        return self.read_raw(length)

    def read_tag(self) -> int:
        """Read a union tag (a ``uint``)."""
        return self.read_uint()

    def read_optional(self, read: Callable[[], T]) -> T | None:
        """Read ``optional<T>``: None for ``0x00``, ``read()`` after ``0x01``."""
        start = self._pos
        flag = self.read_raw(1)[0]
        if flag == 0:
            return None
        if flag == 1:
            return read()
        raise self.error(f"invalid optional flag 0x{flag:02x}", start)

    def read_list(self, read: Callable[[], T]) -> list[T]:
        """Read ``list<T>``, calling ``read()`` for each item.

        A count larger than the bytes left is rejected before reading (every item of the
        schemas used here takes at least one byte).
        """
        return [read() for _ in range(self._length())]

    def read_map(self, read_key: Callable[[], K], read_value: Callable[[], V]) -> dict[K, V]:
        """Read ``map<K, V>``; a repeated key is rejected."""
        count = self._length()
        out: dict[K, V] = {}
        for _ in range(count):
            start = self._pos
            key = read_key()
            if key in out:
                raise self.error(f"duplicate map key {key!r}", start)
            out[key] = read_value()
        return out
