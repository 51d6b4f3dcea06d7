"""An actor's KV in the engine, as calls: `EngineKV` over `Envoy.kv` requests.

Each call is one ``ToRivetKvRequest`` round trip, answered after the engine applied
it. Raises `EngineKVError` when the engine answers with an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._envoy import Envoy
from ._schema import Tagged

__all__ = ["EngineKV"]


class EngineKV:
    """Per-actor KV operations through one envoy connection."""

    def __init__(self, envoy: Envoy) -> None:
        self._envoy = envoy

    async def get(self, actor_id: str, keys: Sequence[bytes]) -> list[bytes | None]:
        """The values of ``keys`` in order; None where a key is absent."""
        answer = await self._envoy.kv(actor_id, Tagged("KvGetRequest", {"keys": list(keys)}))
        found = dict(zip(answer.val["keys"], answer.val["values"], strict=True))
        return [found.get(key) for key in keys]

    async def list(
        self,
        actor_id: str,
        *,
        prefix: bytes | None = None,
        start: bytes | None = None,
        end: bytes | None = None,
        exclusive: bool = False,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """Entries in key order: all, those under ``prefix``, or from ``start`` to
        ``end``: the engine includes ``end`` unless ``exclusive``."""
        query: Tagged
        if prefix is not None:
            query = Tagged("KvListPrefixQuery", {"key": prefix})
        elif start is not None or end is not None:
            if start is None or end is None:
                raise ValueError("a range list needs both start and end")
            query = Tagged("KvListRangeQuery", {"start": start, "end": end, "exclusive": exclusive})
        else:
            query = Tagged("KvListAllQuery")
        request: dict[str, Any] = {"query": query, "reverse": reverse or None, "limit": limit}
        answer = await self._envoy.kv(actor_id, Tagged("KvListRequest", request))
        return list(zip(answer.val["keys"], answer.val["values"], strict=True))

    async def put(self, actor_id: str, entries: Sequence[tuple[bytes, bytes]]) -> None:
        """Write ``entries`` in one request (atomic in the engine)."""
        keys = [key for key, _ in entries]
        values = [value for _, value in entries]
        await self._envoy.kv(actor_id, Tagged("KvPutRequest", {"keys": keys, "values": values}))

    async def delete(self, actor_id: str, keys: Sequence[bytes]) -> None:
        await self._envoy.kv(actor_id, Tagged("KvDeleteRequest", {"keys": list(keys)}))

    async def delete_range(self, actor_id: str, start: bytes, end: bytes) -> None:
        """Delete every key with ``start <= key < end``."""
        await self._envoy.kv(actor_id, Tagged("KvDeleteRangeRequest", {"start": start, "end": end}))

    async def drop(self, actor_id: str) -> None:
        """Delete all of the actor's keys."""
        await self._envoy.kv(actor_id, Tagged("KvDropRequest"))
