"""The smallest CBOR payloads, read and written without cbor2.

Most WebSocket calls carry a few small integers or short strings: ``increment(1)``
sends ``[1]``, gets ``5`` back and a ``newCount`` event with ``[5]``. For such a value
cbor2's own set-up (a stream, a decoder or encoder object, the trailing-bytes check of
`cbor.decode`) is most of the work: reading ``[1]`` took ~14.6k instructions through
cbor2 and takes ~6k here (with `cbor.decode`'s own checks), writing ``[5]`` ~5.5k and
~2.3k, ``5`` ~4.5k and ~1.1k (callgrind, 2026-12-07). These functions take exactly
those shapes and nothing else:

* `write_small`: an unsigned integer below 2**16, alone or as the only item of a list,
  or a text string of at most 23 UTF-8 bytes as the only item of a list (a call's
  result, an event's single argument);
* `read_small`: a list (an array with a definite length) of at most 23 items, each an
  unsigned integer below 2**16 or a text string of at most 23 UTF-8 bytes (a call's
  arguments). (A lone integer is `cbor.decode`'s own fast path.)

One item for writing, because for more the Python loop cost as much as cbor2's C
encoder: this is about a call's fixed costs, not throughput.

They return None for anything else, and the caller (`cbor.encode` / `cbor.decode`)
takes the general path, which also reports errors. For what they take they give what
the general path gives: `write_small` cbor2's bytes (the shortest heads, as cbor2
writes them), `read_small` the value cbor2 reads followed by the plain-value check.
A two-item list whose first item is text starting with ``$`` is the shape of a compat
tag (`json_compat`): `read_small` leaves it to the general path, which revives it.

Pure functions; they do not raise.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["read_small", "write_small"]

#: Heads of the items taken: up to 23 inline, then a 1- or 2-byte unsigned integer.
_UINT8: Final = 0x18
_UINT16: Final = 0x19
#: Major type 3 (text) with an inline length: 0x60 + length, up to 23 bytes.
_TEXT: Final = 0x60
_TEXT_MAX: Final = 0x77
#: Major type 4 (array) with an inline length: 0x80 + count, up to 23 items.
_ARRAY: Final = 0x80
_ARRAY_MAX: Final = 0x97
#: One-byte encodings of 0..23.
_TINY: Final = tuple(bytes((n,)) for n in range(_UINT8))
#: Heads of text strings of 0..23 bytes.
_TINY_TEXT: Final = tuple(bytes((_TEXT + n,)) for n in range(_TEXT_MAX - _TEXT + 1))
#: The head of a one-item array.
_ONE: Final = bytes((_ARRAY + 1,))


def _uint(value: int) -> bytes | None:
    if 0 <= value < _UINT8:
        return _TINY[value]
    if 0 <= value < 0x100:
        return bytes((_UINT8, value))
    if 0 <= value < 0x10000:
        return bytes((_UINT16, value >> 8, value & 0xFF))
    return None


def _is_tag_shape(items: list[Any]) -> bool:
    first = items[0]
    return len(items) == 2 and type(first) is str and first.startswith("$")


def write_small(value: Any) -> bytes | None:
    """``value``'s CBOR when it is one of the shapes written (see the module doc),
    else None."""
    kind = type(value)
    if kind is int:
        return _uint(value)
    if kind is not list or len(value) != 1:
        return None
    item = value[0]
    item_kind = type(item)
    if item_kind is int:
        head = _uint(item)
        return None if head is None else _ONE + head
    if item_kind is not str:
        return None
    try:
        text = item.encode()
    except UnicodeEncodeError:
        return None  # a lone surrogate: the general path says where it is
    if len(text) > _TEXT_MAX - _TEXT:
        return None
    return b"".join((_ONE, _TINY_TEXT[len(text)], text))


def read_small(data: bytes) -> list[Any] | None:
    """The list ``data`` holds when it is exactly one array of the shapes taken (see
    the module doc), else None."""
    size = len(data)
    if not size:
        return None
    head = data[0]
    if not _ARRAY <= head <= _ARRAY_MAX:
        return None
    count = head - _ARRAY
    rest = data[1:]
    if len(rest) == count and (not count or max(rest) < _UINT8):
        return list(rest)  # integers below 24 only: one byte each
    items: list[Any] = []
    pos = 1
    for _ in range(count):
        if pos >= size:
            return None
        byte = data[pos]
        if byte < _UINT8:
            items.append(byte)
            pos += 1
        elif byte == _UINT8:
            if pos + 2 > size:
                return None
            items.append(data[pos + 1])
            pos += 2
        elif byte == _UINT16:
            if pos + 3 > size:
                return None
            items.append((data[pos + 1] << 8) | data[pos + 2])
            pos += 3
        elif _TEXT <= byte <= _TEXT_MAX:
            end = pos + 1 + byte - _TEXT
            if end > size:
                return None
            try:
                items.append(data[pos + 1 : end].decode())
            except UnicodeDecodeError:
                return None  # the general path rejects it with its message
            pos = end
        else:
            return None
    if pos != size or (items and _is_tag_shape(items)):
        return None
    return items
