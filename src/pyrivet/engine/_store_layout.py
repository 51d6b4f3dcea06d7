"""Where `EngineStore` keeps an actor's data in the engine's per-actor KV: keys and values.

Pure functions, no I/O. The engine gives every actor a KV space of its own, so no key
carries the actor id. The first byte of a key says what it holds:

==========================  =============================================================
key                         value
==========================  =============================================================
``00 'i' seq8``             an intent: a commit too large for one engine put (or with
                            range deletes), kept until all of it is applied
``01 'a'``                  the `ActorRecord` (name, key, created, input, initialized)
``01 'h'``                  the actor's seq (8 bytes, big-endian)
``01 's'``                  the state snapshot
``01 'f'``                  the history floor: entries below this seq are pruned
``01 'q'``                  the highest queue message id ever stored
``02 key``                  ``c.kv`` entries (the runtime's own KV keys included)
``03 alarm_id``             `AlarmRecord` (schedules)
``04 seq8``                 `HistoryEntry` (the event log)
``05 id8``                  `QueueMessageRecord`
``06 key``                  workflow records (workflow history, hibernation records)
``7f key 00 u16``           a value's parts when it is over the engine's value limit
==========================  =============================================================

Every stored value starts with a tag byte (the engine refuses empty values):
``01`` + data is a value, ``00`` alone a tombstone (a delete written in the same
engine transaction as the rest of a commit; readers skip it and it is deleted
afterwards), ``02`` + part count (u16) + total length (u32) a value split over
``7f`` keys. Records are msgpack maps (msgspec), so fields can be added later.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Final, TypeVar

import msgspec

from ..errors import StorageError
from ..storage._base import (
    ActorRecord,
    AlarmRecord,
    HistoryEntry,
    QueueMessageRecord,
)

__all__ = [
    "ACTOR_KEY",
    "ALARM",
    "FLOOR_KEY",
    "HISTORY",
    "INTENT",
    "KV",
    "MAX_ENTRIES_PER_PUT",
    "MAX_PUT_BYTES",
    "META",
    "PART",
    "QUEUE",
    "QUEUE_LAST_KEY",
    "SEQ_KEY",
    "STATE_KEY",
    "TOMBSTONE",
    "WORKFLOW",
    "Intent",
    "batches",
    "check_key",
    "decode_record",
    "decode_value",
    "encode_record",
    "encode_value",
    "int8",
    "parse_int8",
    "part_keys",
    "put_size",
    "space_end",
]

INTENT: Final = b"\x00i"
META: Final = b"\x01"
ACTOR_KEY: Final = b"\x01a"
SEQ_KEY: Final = b"\x01h"
STATE_KEY: Final = b"\x01s"
FLOOR_KEY: Final = b"\x01f"
QUEUE_LAST_KEY: Final = b"\x01q"
KV: Final = b"\x02"
ALARM: Final = b"\x03"
HISTORY: Final = b"\x04"
QUEUE: Final = b"\x05"
WORKFLOW: Final = b"\x06"
PART: Final = b"\x7f"

_VALUE: Final = 1
_SPLIT: Final = 2
TOMBSTONE: Final = b"\x00"

#: The engine's limits (pegboard ``actor_kv``): 128 KiB a value, 2 KiB a key (tuple
#: encoded: a type byte, the key with each 00 byte doubled, a terminator), 128 entries
#: and 976 KiB of keys and values per put. Parts stay a little under the value limit,
#: puts well under the payload limit (the engine counts the encoded key).
MAX_VALUE_BYTES: Final = 128 * 1024
PART_BYTES: Final = 120_000
MAX_KEY_BYTES: Final = 2048
MAX_ENTRIES_PER_PUT: Final = 128
MAX_PUT_BYTES: Final = 900_000

_SPLIT_HEADER: Final = struct.Struct(">BHI")


def int8(value: int) -> bytes:
    """A non-negative int as 8 big-endian bytes (key order is numeric order)."""
    return value.to_bytes(8, "big")


def parse_int8(data: bytes) -> int:
    return int.from_bytes(data, "big")


def space_end(prefix: bytes) -> bytes:
    """The first key after every key starting with the one-byte ``prefix``."""
    return bytes((prefix[0] + 1,))


def check_key(key: bytes) -> None:
    """Raise `StorageError` if the engine would refuse ``key`` as too long."""
    if len(key) + key.count(0) + 3 > MAX_KEY_BYTES:
        raise StorageError(
            f"a key of {len(key) - 1} bytes is too long for the Rivet Engine's KV (its limit "
            f"is {MAX_KEY_BYTES} bytes, encoded); in envoy mode keep KV keys under "
            f"{MAX_KEY_BYTES - 8} bytes"
        )


def part_keys(key: bytes, count: int) -> list[bytes]:
    return [PART + key + b"\x00" + i.to_bytes(2, "big") for i in range(count)]


def encode_value(key: bytes, data: bytes | None) -> list[tuple[bytes, bytes]]:
    """The engine entries that store ``data`` at ``key`` (None: a tombstone); a value
    over the engine's limit becomes a header at ``key`` and parts under ``7f``."""
    if data is None:
        return [(key, TOMBSTONE)]
    if len(data) + 1 <= MAX_VALUE_BYTES:
        return [(key, b"\x01" + data)]
    count = -(-len(data) // PART_BYTES)
    keys = part_keys(key, count)
    entries = [(key, _SPLIT_HEADER.pack(_SPLIT, count, len(data)))]
    for index, part_key in enumerate(keys):
        entries.append((part_key, data[index * PART_BYTES : (index + 1) * PART_BYTES]))
    return entries


def decode_value(key: bytes, stored: bytes) -> bytes | tuple[int, int] | None:
    """The data of a stored value; None for a tombstone; ``(parts, length)`` for a
    split value (read its `part_keys` and join them).

    Raises:
        StorageError: the value was not written by this layout.
    """
    tag = stored[:1]
    if tag == b"\x01":
        return stored[1:]
    if stored == TOMBSTONE:
        return None
    if tag == b"\x02" and len(stored) == _SPLIT_HEADER.size:
        _, count, length = _SPLIT_HEADER.unpack(stored)
        return count, length
    raise StorageError(f"the engine KV holds a value at {key!r} that pyrivet did not write")


def put_size(entries: list[tuple[bytes, bytes]]) -> int:
    return sum(len(k) + k.count(0) + 3 + len(v) for k, v in entries)


def batches(entries: list[tuple[bytes, bytes]]) -> Iterator[list[tuple[bytes, bytes]]]:
    """``entries`` cut into groups the engine takes in one put."""
    group: list[tuple[bytes, bytes]] = []
    size = 0
    for entry in entries:
        entry_size = put_size([entry])
        if group and (len(group) >= MAX_ENTRIES_PER_PUT or size + entry_size > MAX_PUT_BYTES):
            yield group
            group, size = [], 0
        group.append(entry)
        size += entry_size
    if group:
        yield group


class Intent(msgspec.Struct, frozen=True):
    """A commit too large for one engine put (or one with range deletes), written
    before any of it is applied: replaying it applies it again, in order."""

    seq: int
    #: ``[start, end)`` key ranges to empty first.
    ranges: list[tuple[bytes, bytes]]
    #: Then these entries, already in stored form.
    puts: list[tuple[bytes, bytes]]
    #: Then these keys are deleted (tombstones left by ``puts``).
    deletes: list[bytes]


_T = TypeVar("_T")
_ENCODER: Final = msgspec.msgpack.Encoder()
RECORD_TYPES: Final = (ActorRecord, AlarmRecord, HistoryEntry, QueueMessageRecord, Intent)
_DECODERS: Final = {kind: msgspec.msgpack.Decoder(kind) for kind in RECORD_TYPES}


def encode_record(record: msgspec.Struct) -> bytes:
    return _ENCODER.encode(record)


def decode_record(kind: type[_T], data: bytes) -> _T:
    """Decode a stored record; raises `StorageError` if it does not fit ``kind``."""
    try:
        return _DECODERS[kind].decode(data)  # type: ignore[index, return-value]
    except msgspec.DecodeError as exc:
        raise StorageError(f"a stored {kind.__name__} does not decode: {exc}") from None
