"""Reads of an actor's engine KV in `EngineStore`'s layout (``_store_layout``).

Tombstones read as absent, values split over parts are joined, and range listings page
through the engine until they have enough live entries. Every function runs on the
envoy's event loop and raises `StorageError` when the engine answers a request with an
error (or the envoy closed before it answered).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Final, TypeVar

from ..errors import StorageError
from . import _store_layout as layout
from ._errors import EngineError
from ._kv import EngineKV

__all__ = ["engine_call", "read_range", "read_values"]

_T = TypeVar("_T")
#: Entries asked for per list request when reading everything under a prefix.
_PAGE: Final = 4096


async def read_values(kv: EngineKV, actor_id: str, keys: list[bytes]) -> list[bytes | None]:
    """The data stored at ``keys`` (None: absent or a tombstone), split values joined."""
    stored = await _get_raw(kv, actor_id, keys)
    values: list[bytes | None] = []
    for key, value in zip(keys, stored, strict=True):
        values.append(None if value is None else await _data(kv, actor_id, key, value))
    return values


async def _data(kv: EngineKV, actor_id: str, key: bytes, stored: bytes) -> bytes | None:
    decoded = layout.decode_value(key, stored)
    if not isinstance(decoded, tuple):
        return decoded
    count, length = decoded
    part_keys = layout.part_keys(key, count)
    parts = await _get_raw(kv, actor_id, part_keys)
    if any(part is None for part in parts):
        raise StorageError(f"actor {actor_id}: a part of the value at {key!r} is missing")
    data = b"".join(part for part in parts if part is not None)
    if len(data) != length:
        raise StorageError(f"actor {actor_id}: the value at {key!r} has the wrong length")
    return data


async def _get_raw(kv: EngineKV, actor_id: str, keys: list[bytes]) -> list[bytes | None]:
    """The stored values of ``keys`` as the engine holds them, in requests of at most
    128 keys sent together."""
    step = layout.MAX_ENTRIES_PER_PUT
    groups = await asyncio.gather(
        *(
            engine_call(actor_id, kv.get(actor_id, keys[i : i + step]))
            for i in range(0, len(keys), step)
        )
    )
    return [value for group in groups for value in group]


async def read_range(
    kv: EngineKV,
    actor_id: str,
    start: bytes,
    end: bytes,
    *,
    reverse: bool = False,
    limit: int | None = None,
) -> list[tuple[bytes, bytes]]:
    """Live entries with ``start <= key < end`` in key order (descending if
    ``reverse``), at most ``limit``: tombstones skipped, split values joined. Pages
    through the engine until enough entries are found or the range is done."""
    out: list[tuple[bytes, bytes]] = []
    low, high = start, end
    while low < high and (limit is None or len(out) < limit):
        want = _PAGE if limit is None else min(_PAGE, limit - len(out) + 8)
        page: list[tuple[bytes, bytes]] = await engine_call(
            actor_id,
            kv.list(actor_id, start=low, end=high, exclusive=True, reverse=reverse, limit=want),
        )
        for key, stored in page:
            data = await _data(kv, actor_id, key, stored)
            if data is not None:
                out.append((key, data))
        if len(page) < want:
            break
        last = page[-1][0]
        if reverse:
            high = last
        else:
            low = last + b"\x00"
    return out if limit is None else out[:limit]


async def engine_call(actor_id: str, call: Awaitable[_T]) -> _T:
    """Await one engine request; an error reply or a closed envoy becomes a
    `StorageError` naming the actor."""
    try:
        return await call
    except EngineError as exc:
        message = str(exc)
        if actor_id not in message:
            message = f"actor {actor_id}: {message}"
        raise StorageError(message) from exc
