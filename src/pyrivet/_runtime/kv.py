"""`KVImpl`: ``c.kv``, the per-actor key/value space, committed with the actor's state.

Writes are staged in the actor's journal, whose KV overlay lets the actor read them at
once; they become durable with the next checkpoint (the end of the current action in
strict mode). Reads take what they need of the overlay first (before awaiting
storage, so a commit landing meanwhile cannot hide a write), then merge storage in.

Every operation validates all of its input before staging anything, so one that
raises `KVError` leaves the actor's KV as it was (a batch is all or nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._codec.values import decode, encode
from ..actor._context import KV, KeyType
from ..errors import KVError
from ..storage._base import prefix_end
from .journal import Journal

__all__ = [
    "DEFAULT_LIST_LIMIT",
    "MAX_BATCH_KEYS",
    "MAX_BATCH_PUT_SIZE",
    "MAX_KEY_SIZE",
    "MAX_VALUE_SIZE",
    "RESERVED_KEY",
    "KVImpl",
]

#: RivetKit's limits (``actors/limits.mdx``).
MAX_KEY_SIZE = 2048
MAX_VALUE_SIZE = 128 * 1024
MAX_BATCH_KEYS = 128
#: The keys and encoded values of one ``put_batch``, together.
MAX_BATCH_PUT_SIZE = 976 * 1024
DEFAULT_LIST_LIMIT = 16_384

#: The key the runtime keeps in an actor's KV space while it has connection records
#: (``hibernation.py``); ``c.kv`` listings leave it out.
RESERVED_KEY = b"\x00pyrivet/rt"

# Aliases: inside `KVImpl`, ``list`` names the method.
_Listing = list[tuple[Any, Any]]
_Entries = list[tuple[bytes, bytes]]


def _key_bytes(key: str | bytes) -> bytes:
    if isinstance(key, str):
        data = key.encode()
    elif isinstance(key, bytes | bytearray | memoryview):
        data = bytes(key)
    else:
        raise KVError(f"KV keys are str or bytes, got {type(key).__name__}", code="invalid_key")
    if len(data) > MAX_KEY_SIZE:
        raise KVError(
            f"KV key is {len(data)} bytes; the limit is {MAX_KEY_SIZE}", code="key_too_large"
        )
    return data


def _value_bytes(key: str | bytes, value: Any) -> bytes:
    data = encode(value, f"the KV value of {key!r}")
    if len(data) > MAX_VALUE_SIZE:
        raise KVError(
            f"KV value of {key!r} is {len(data)} bytes encoded; the limit is {MAX_VALUE_SIZE}",
            code="value_too_large",
        )
    return data


def _batch_keys(keys: Iterable[str | bytes], what: str) -> list[bytes]:
    if isinstance(keys, str | bytes | bytearray | memoryview):
        raise KVError(
            f"{what} takes a list of keys, not one key; use the single-key method",
            code="invalid_argument",
        )
    try:
        given = list(keys)
    except TypeError:
        raise KVError(
            f"{what} takes a list of keys, got {type(keys).__name__}", code="invalid_argument"
        ) from None
    _check_batch_size(len(given), what)
    return [_key_bytes(key) for key in given]


def _check_batch_size(count: int, what: str) -> None:
    if count > MAX_BATCH_KEYS:
        raise KVError(
            f"{what} got {count} keys; the limit is {MAX_BATCH_KEYS} per batch, "
            "split it into several calls",
            code="batch_too_large",
        )


def _pairs(items: Mapping[str | bytes, Any] | Iterable[tuple[str | bytes, Any]]) -> list[Any]:
    try:
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
    except TypeError:
        raise KVError(
            f"put_batch takes (key, value) pairs or a mapping, got {type(items).__name__}",
            code="invalid_argument",
        ) from None
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise KVError(
                f"put_batch takes (key, value) pairs or a mapping, got an item {pair!r}",
                code="invalid_argument",
            )
    return pairs


def _limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIST_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise KVError(
            f"a KV listing's limit is an int >= 0 or None, got {limit!r}", code="invalid_argument"
        )
    return limit


def _as_text(key_type: KeyType | None, first: str | bytes) -> bool:
    if key_type is None:
        return isinstance(first, str)
    if key_type not in ("text", "binary"):
        raise KVError(
            f'key_type is "text", "binary" or None, got {key_type!r}', code="invalid_argument"
        )
    return key_type == "text"


def _text_key(key: bytes) -> str:
    try:
        return key.decode()
    except UnicodeDecodeError:
        raise KVError(
            f"KV key {key!r} is not UTF-8 text; list binary keys with a bytes prefix "
            'or key_type="binary"',
            code="invalid_key",
        ) from None


def _live_segments(
    start: bytes, end: bytes | None, dead: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes | None]]:
    """``[start, end)`` without the sorted, disjoint ``dead`` ranges inside it."""
    segments: list[tuple[bytes, bytes | None]] = []
    at = start
    for lo, hi in dead:
        if lo > at:
            segments.append((at, lo))
        at = max(at, hi)
    if end is None or at < end:
        segments.append((at, end))
    return segments


class KVImpl(KV):
    """See `pyrivet.actor.KV`."""

    __slots__ = ("_journal",)

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    async def get(self, key: str | bytes) -> Any:
        raw = _key_bytes(key)
        found, value = self._journal.kv_lookup(raw)
        if not found:
            owner = self._journal.owner
            value = await owner.svc.store.kv_get(owner.actor_id, raw)
        return None if value is None else decode(value)

    async def get_batch(self, keys: Iterable[str | bytes]) -> list[Any]:
        raw = _batch_keys(keys, "get_batch")
        journal = self._journal
        values: list[bytes | None] = [None] * len(raw)
        missing: list[int] = []
        for i, key in enumerate(raw):
            found, value = journal.kv_lookup(key)
            if found:
                values[i] = value
            else:
                missing.append(i)
        if missing:
            owner = journal.owner
            stored = await owner.svc.store.kv_get_batch(owner.actor_id, [raw[i] for i in missing])
            for i, value in zip(missing, stored, strict=True):
                values[i] = value
        return [None if value is None else decode(value) for value in values]

    async def put(self, key: str | bytes, value: Any) -> None:
        raw = _key_bytes(key)
        self._journal.stage_kv(raw, _value_bytes(key, value))

    async def put_batch(
        self, items: Mapping[str | bytes, Any] | Iterable[tuple[str | bytes, Any]]
    ) -> None:
        pairs = _pairs(items)
        _check_batch_size(len(pairs), "put_batch")
        staged = [(_key_bytes(key), _value_bytes(key, value)) for key, value in pairs]
        size = sum(len(key) + len(value) for key, value in staged)
        if size > MAX_BATCH_PUT_SIZE:
            raise KVError(
                f"put_batch writes {size} bytes of keys and values; the limit is "
                f"{MAX_BATCH_PUT_SIZE} per batch, split it into several calls",
                code="payload_too_large",
            )
        for key, value in staged:
            self._journal.stage_kv(key, value)

    async def delete(self, key: str | bytes) -> None:
        self._journal.stage_kv(_key_bytes(key), None)

    async def delete_batch(self, keys: Iterable[str | bytes]) -> None:
        for key in _batch_keys(keys, "delete_batch"):
            self._journal.stage_kv(key, None)

    async def delete_range(self, start: str | bytes, end: str | bytes) -> None:
        lo, hi = _key_bytes(start), _key_bytes(end)
        if lo < hi:
            self._journal.stage_kv_delete_range(lo, hi)

    async def list(
        self,
        prefix: str | bytes = b"",
        *,
        reverse: bool = False,
        limit: int | None = None,
        key_type: KeyType | None = None,
    ) -> _Listing:
        raw = _key_bytes(prefix)
        as_text = _as_text(key_type, prefix)
        entries = await self._scan(raw, prefix_end(raw), bool(reverse), _limit(limit))
        return self._decode(entries, as_text)

    async def list_range(
        self,
        start: str | bytes,
        end: str | bytes,
        *,
        reverse: bool = False,
        limit: int | None = None,
        key_type: KeyType | None = None,
    ) -> _Listing:
        lo, hi = _key_bytes(start), _key_bytes(end)
        as_text = _as_text(key_type, start)
        entries = await self._scan(lo, hi, bool(reverse), _limit(limit))
        return self._decode(entries, as_text)

    @staticmethod
    def _decode(entries: _Entries, as_text: bool) -> _Listing:
        return [(_text_key(key) if as_text else key, decode(value)) for key, value in entries]

    async def _scan(self, start: bytes, end: bytes | None, reverse: bool, limit: int) -> _Entries:
        """Entries in ``[start, end)``, without the runtime's reserved key."""
        if start <= RESERVED_KEY and (end is None or end > RESERVED_KEY):
            entries = await self._merged(start, end, reverse, limit + 1)
            return [e for e in entries if e[0] != RESERVED_KEY][:limit]
        return await self._merged(start, end, reverse, limit)

    async def _merged(self, start: bytes, end: bytes | None, reverse: bool, limit: int) -> _Entries:
        """Entries in ``[start, end)``: storage's with the overlay merged in."""
        if limit == 0 or (end is not None and start >= end):
            return []
        owner = self._journal.owner
        store = owner.svc.store
        writes = self._journal.pending
        if writes is None:
            return await store.kv_list_range(
                owner.actor_id, start, end, reverse=reverse, limit=limit
            )
        points, dead = writes.kv_window(start, end)
        merged: dict[bytes, bytes] = {}
        for lo, hi in _live_segments(start, end, dead):
            # Each overlay key of the segment may hide or repeat one stored entry.
            extra = sum(1 for key in points if lo <= key and (hi is None or key < hi))
            stored = await store.kv_list_range(
                owner.actor_id, lo, hi, reverse=reverse, limit=limit + extra
            )
            merged.update(stored)
        for key, value in points.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        keys = sorted(merged, reverse=reverse)[:limit]
        return [(key, merged[key]) for key in keys]
