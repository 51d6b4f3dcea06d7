"""The actor list of the inspector page (``GET /ui/api/actors?q=``).

`list_actors` is the one place the page's list comes from. It reads the actor table
through `ActorStore.list_actors` and filters here, because the page searches keys too
(the management API's ``GET /actors?name=`` pages by name only); a store-side key
search can replace it here without touching the page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ..._runtime.runtime import Runtime

__all__ = ["MAX_LISTED", "list_actors"]

#: The most actors one answer lists (the page narrows with its search box).
MAX_LISTED: Final = 500


async def list_actors(runtime: Runtime, query: str) -> dict[str, Any]:
    """Live actors whose name or key contains ``query`` (case-insensitive), sorted by
    name then key: ``{actors: [{actorId, name, key, awake}], truncated}``."""
    needle = query.strip().lower()
    found = []
    for record in await runtime.storage.list_actors():
        text = f"{record.name} {'/'.join(record.key)}".lower()
        if needle and needle not in text:
            continue
        found.append(record)
    found.sort(key=lambda r: (r.name, r.key))
    return {
        "actors": [
            {
                "actorId": r.actor_id,
                "name": r.name,
                "key": list(r.key),
                "awake": runtime.is_awake(r.actor_id),
            }
            for r in found[:MAX_LISTED]
        ],
        "truncated": len(found) > MAX_LISTED,
    }
