"""A small declarative BARE schema: types that encode and decode themselves.

The envoy protocol has ~150 types; writing a reader and a writer by hand for each
would be 300 functions to keep in sync. Instead each type is declared once as a value
of this module (`Struct`, `Union`, `Enum`, `ListOf`, ...), and the declaration both
reads and writes it. Decoded values are plain Python data:

* struct: ``dict`` of snake_case field name to value, in declaration order;
* union: `Tagged` ``(tag, val)`` with the variant's schema name (``val`` is None for a
  ``void`` variant);
* enum: the member's name (``str``); optional: the value or None;
* list: ``list``; map: ``dict``; ``data`` / ``data<N>``: ``bytes``;
* ``u8``..``u64`` / ``i64``: ``int``; ``u32array``: ``list[int]``; ``bool``; ``str``.

Union tags and enum values are written as one ``u8``-compatible ``uint`` (the same
bytes for fewer than 128 members), as the engine's generated codec does.

Errors: a read of bad bytes raises `InvalidMessageError` with the offset and the type
being read; a write of a value that does not fit raises `EncodingError` naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from .._codec.bare import BareReader, BareWriter
from ..errors import EncodingError

__all__ = [
    "BOOL",
    "DATA",
    "I64",
    "STR",
    "U16",
    "U32",
    "U32_ARRAY",
    "U64",
    "VOID",
    "Enum",
    "FixedData",
    "ListOf",
    "MapOf",
    "Optional",
    "Primitive",
    "Struct",
    "Tagged",
    "Type",
    "Union",
]


@dataclass(frozen=True, slots=True)
class Tagged:
    """One value of a union: the variant's schema name and its value."""

    tag: str
    val: Any = None


class Type:
    """A BARE type that writes and reads its values."""

    name: str = "?"

    def write(self, writer: BareWriter, value: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self, reader: BareReader) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, value: Any) -> bytes:
        """The bytes of ``value`` alone (no version prefix)."""
        writer = BareWriter()
        self.write(writer, value)
        return writer.getvalue()

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        """Read one value that must span all of ``data``."""
        reader = BareReader(data, self.name)
        value = self.read(reader)
        reader.expect_end()
        return value


class Primitive(Type):
    """A type with a reader and writer method of `BareReader` / `BareWriter`."""

    def __init__(self, name: str, write: str, read: str, kind: type | tuple[type, ...]) -> None:
        self.name = name
        self._write = write
        self._read = read
        self._kind = kind

    def write(self, writer: BareWriter, value: Any) -> None:
        if not isinstance(value, self._kind) or (self._kind is int and isinstance(value, bool)):
            raise EncodingError(f"{self.name} expected, got {type(value).__name__}")
        getattr(writer, self._write)(value)

    def read(self, reader: BareReader) -> Any:
        return getattr(reader, self._read)()


class _Void(Type):
    name = "void"

    def write(self, writer: BareWriter, value: Any) -> None:
        if value is not None:
            raise EncodingError(f"void expected (None), got {type(value).__name__}")

    def read(self, reader: BareReader) -> Any:
        return None


class FixedData(Type):
    """``data<N>``: exactly N bytes."""

    def __init__(self, length: int) -> None:
        self.name = f"data<{length}>"
        self.length = length

    def write(self, writer: BareWriter, value: Any) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise EncodingError(f"{self.name} expected bytes, got {type(value).__name__}")
        writer.write_fixed_data(value, self.length)

    def read(self, reader: BareReader) -> Any:
        return reader.read_fixed_data(self.length)


class _U32Array(Type):
    """``list<u32>`` packed as a count then little-endian words (bare-ts ``u32array``)."""

    name = "u32array"

    def write(self, writer: BareWriter, value: Any) -> None:
        writer.write_uint(len(value))
        for item in value:
            writer.write_u32(item)

    def read(self, reader: BareReader) -> Any:
        count = reader.read_uint()
        if count * 4 > reader.remaining:
            raise reader.error(f"u32array of {count} words is longer than the message")
        return [reader.read_u32() for _ in range(count)]


class Optional(Type):
    """``optional<T>``: None or a T."""

    def __init__(self, inner: Type) -> None:
        self.name = f"optional<{inner.name}>"
        self.inner = inner

    def write(self, writer: BareWriter, value: Any) -> None:
        writer.write_optional(value, lambda item: self.inner.write(writer, item))

    def read(self, reader: BareReader) -> Any:
        return reader.read_optional(lambda: self.inner.read(reader))


class ListOf(Type):
    """``list<T>``."""

    def __init__(self, inner: Type) -> None:
        self.name = f"list<{inner.name}>"
        self.inner = inner

    def write(self, writer: BareWriter, value: Any) -> None:
        if not isinstance(value, list | tuple):
            raise EncodingError(f"{self.name} expected a list, got {type(value).__name__}")
        writer.write_list(value, lambda item: self.inner.write(writer, item))

    def read(self, reader: BareReader) -> Any:
        return reader.read_list(lambda: self.inner.read(reader))


class MapOf(Type):
    """``map<K, V>``, written in the dict's order."""

    def __init__(self, key: Type, value: Type) -> None:
        self.name = f"map<{key.name}, {value.name}>"
        self.key = key
        self.value = value

    def write(self, writer: BareWriter, value: Any) -> None:
        if not isinstance(value, dict):
            raise EncodingError(f"{self.name} expected a dict, got {type(value).__name__}")
        writer.write_uint(len(value))
        for key, item in value.items():
            self.key.write(writer, key)
            self.value.write(writer, item)

    def read(self, reader: BareReader) -> Any:
        return reader.read_map(lambda: self.key.read(reader), lambda: self.value.read(reader))


class Struct(Type):
    """A struct: its fields in order, as a dict keyed by snake_case field name."""

    def __init__(self, name: str, *fields: tuple[str, Type]) -> None:
        self.name = name
        self.fields: tuple[tuple[str, Type], ...] = fields

    def write(self, writer: BareWriter, value: Any) -> None:
        if not isinstance(value, dict):
            raise EncodingError(f"{self.name} expected a dict, got {type(value).__name__}")
        for field, kind in self.fields:
            if field not in value:
                raise EncodingError(f"{self.name}.{field} is missing")
            try:
                kind.write(writer, value[field])
            except EncodingError as exc:
                raise EncodingError(f"{self.name}.{field}: {exc}") from None

    def read(self, reader: BareReader) -> Any:
        return {field: kind.read(reader) for field, kind in self.fields}


class Union(Type):
    """A tagged union; each variant is a named type, or None for ``void``."""

    def __init__(self, name: str, *variants: tuple[str, Type | None]) -> None:
        self.name = name
        self.variants = variants
        self._tags = {variant: index for index, (variant, _) in enumerate(variants)}

    def write(self, writer: BareWriter, value: Any) -> None:
        if not isinstance(value, Tagged):
            raise EncodingError(f"{self.name} expected a Tagged value, got {type(value).__name__}")
        tag = self._tags.get(value.tag)
        if tag is None:
            raise EncodingError(f"{self.name} has no variant {value.tag!r}")
        writer.write_tag(tag)
        kind = self.variants[tag][1] or VOID
        try:
            kind.write(writer, value.val)
        except EncodingError as exc:
            raise EncodingError(f"{self.name}.{value.tag}: {exc}") from None

    def read(self, reader: BareReader) -> Any:
        start = reader.offset
        tag = reader.read_tag()
        if tag >= len(self.variants):
            raise reader.error(
                f"unknown {self.name} tag {tag} (this build knows 0-{len(self.variants) - 1})",
                start,
            )
        variant, kind = self.variants[tag]
        return Tagged(variant, None if kind is None else kind.read(reader))


class Enum(Type):
    """An enum: its members' names, written as their index."""

    def __init__(self, name: str, members: Sequence[str]) -> None:
        self.name = name
        self.members = tuple(members)
        self._index = {member: index for index, member in enumerate(self.members)}

    def write(self, writer: BareWriter, value: Any) -> None:
        index = self._index.get(value)
        if index is None:
            raise EncodingError(f"{self.name} has no member {value!r}")
        writer.write_tag(index)

    def read(self, reader: BareReader) -> Any:
        start = reader.offset
        index = reader.read_tag()
        if index >= len(self.members):
            raise reader.error(f"unknown {self.name} value {index}", start)
        return self.members[index]


def _primitive(name: str, kind: type | tuple[type, ...], method: str | None = None) -> Primitive:
    method = method or name
    return Primitive(name, f"write_{method}", f"read_{method}", kind)


BOOL: Final = _primitive("bool", bool)
STR: Final = _primitive("str", str)
DATA: Final = _primitive("data", (bytes, bytearray, memoryview))
U16: Final = _primitive("u16", int)
U32: Final = _primitive("u32", int)
U64: Final = _primitive("u64", int)
I64: Final = _primitive("i64", int)
VOID: Final = _Void()
U32_ARRAY: Final = _U32Array()
