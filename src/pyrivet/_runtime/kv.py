"""`KVImpl`: ``c.kv``, the per-actor key/value space, committed with the actor's state.

Writes go into the instance's pending writes and the KV overlay, so the actor reads
them at once; they become durable with the next checkpoint (the end of the current
action in strict mode). Reads consult the overlay first, then storage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._codec.values import decode, encode
from ..errors import KVError
from .checkpoint import checkpoint_soon, kv_overlay_get
from .writes import TOMBSTONE, PendingWrites

if TYPE_CHECKING:
    from .instance import ActorInstance

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


class KVImpl:
    """See `pyrivet.actor.KV`."""

    __slots__ = ("_inst",)

    def __init__(self, inst: ActorInstance) -> None:
        self._inst = inst

    def _writes(self) -> PendingWrites:
        inst = self._inst
        if inst.writes is None:
            inst.writes = PendingWrites()
        return inst.writes

    async def get(self, key: str | bytes) -> Any:
        raw = _key_bytes(key)
        found, value = kv_overlay_get(self._inst, raw)
        if not found:
            value = await self._inst.svc.store.kv_get(self._inst.actor_id, raw)
        return None if value is None else decode(value)

    async def put(self, key: str | bytes, value: Any) -> None:
        raw = _key_bytes(key)
        data = encode(value, f"the KV value of {key!r}")
        if len(data) > MAX_VALUE_SIZE:
            raise KVError(
                f"KV value of {key!r} is {len(data)} bytes; the limit is {MAX_VALUE_SIZE}",
                code="value_too_large",
            )
        writes = self._writes()
        writes.kv_ops.append((raw, data))
        writes.kv_overlay[raw] = (None, data)
        checkpoint_soon(self._inst)

    async def delete(self, key: str | bytes) -> None:
        raw = _key_bytes(key)
        writes = self._writes()
        writes.kv_ops.append((raw, None))
        writes.kv_overlay[raw] = (None, TOMBSTONE)
        checkpoint_soon(self._inst)

    async def list(
        self, prefix: str | bytes = b"", *, limit: int | None = None
    ) -> list[tuple[Any, Any]]:
        as_text = isinstance(prefix, str)
        raw_prefix = _key_bytes(prefix)
        inst = self._inst
        stored = await inst.svc.store.kv_list(inst.actor_id, raw_prefix)
        merged: dict[bytes, bytes] = dict(stored)
        if inst.writes is not None:
            for key, (_, value) in inst.writes.kv_overlay.items():
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
