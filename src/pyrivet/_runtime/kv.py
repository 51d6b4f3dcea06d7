"""`KVImpl`: ``c.kv``, the per-actor key/value space, committed with the actor's state.

Writes are staged in the actor's journal, whose KV overlay lets the actor read them at
once; they become durable with the next checkpoint (the end of the current action in
strict mode). Reads consult the overlay first, then storage.
"""

from __future__ import annotations

from typing import Any

from .._codec.values import decode, encode
from ..actor._context import KV
from ..errors import KVError
from .journal import Journal
from .writes import TOMBSTONE

__all__ = ["MAX_KEY_SIZE", "MAX_VALUE_SIZE", "KVImpl"]

MAX_KEY_SIZE = 2048
MAX_VALUE_SIZE = 128 * 1024


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


def _text_key(key: bytes) -> str:
    try:
        return key.decode()
    except UnicodeDecodeError:
        raise KVError(
            f"KV key {key!r} is not UTF-8 text; list binary keys with a bytes prefix",
            code="invalid_key",
        ) from None


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

    async def put(self, key: str | bytes, value: Any) -> None:
        raw = _key_bytes(key)
        data = encode(value, f"the KV value of {key!r}")
        if len(data) > MAX_VALUE_SIZE:
            raise KVError(
                f"KV value of {key!r} is {len(data)} bytes; the limit is {MAX_VALUE_SIZE}",
                code="value_too_large",
            )
        self._journal.stage_kv(raw, data)

    async def delete(self, key: str | bytes) -> None:
        raw = _key_bytes(key)
        self._journal.stage_kv(raw, None)

    async def list(
        self, prefix: str | bytes = b"", *, limit: int | None = None
    ) -> list[tuple[Any, Any]]:
        as_text = isinstance(prefix, str)
        raw_prefix = _key_bytes(prefix)
        owner = self._journal.owner
        stored = await owner.svc.store.kv_list(owner.actor_id, raw_prefix)
        merged: dict[bytes, bytes] = dict(stored)
        writes = self._journal.pending
        if writes is not None:
            for key, (_, value) in writes.kv_overlay.items():
                if not key.startswith(raw_prefix):
                    continue
                if value is TOMBSTONE:
                    merged.pop(key, None)
                else:
                    merged[key] = value
        keys = sorted(merged)
        if limit is not None:
            keys = keys[:limit]
        return [(_text_key(key) if as_text else key, decode(merged[key])) for key in keys]
