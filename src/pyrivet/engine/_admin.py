"""The engine's HTTP API, as the envoy needs it: its version, the pool's config, and
destroying an actor.

Blocking `urllib` calls run on a worker thread (`asyncio.to_thread`): they happen once
per connection attempt, and keep envoy mode free of an HTTP client dependency.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Final

from ._errors import EngineError, EngineVersionError
from ._protocol import PROTOCOL_VERSION

__all__ = ["ENGINE_RELEASE", "check_version", "destroy_actor", "ensure_runner_config"]

#: The engine release whose envoy protocol `pyrivet.engine._protocol` speaks.
ENGINE_RELEASE: Final = "2.3.19"
_TIMEOUT: Final = 10.0


def _request(endpoint: str, method: str, path: str, token: str | None, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(endpoint.rstrip("/") + path, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode(errors="replace")
        raise EngineError(
            f"{method} {path} on the engine failed: HTTP {exc.code} {detail}"
        ) from None


async def check_version(endpoint: str, token: str | None) -> dict[str, Any]:
    """Read ``GET /metadata`` and refuse an engine of another envoy protocol version.

    Raises:
        EngineVersionError: the engine's ``envoy_protocol_version`` is not ours.
        EngineError: the engine answered with an HTTP error.
        OSError: the engine cannot be reached (the caller retries).
    """
    meta = await asyncio.to_thread(_request, endpoint, "GET", "/metadata", token)
    theirs = meta.get("envoy_protocol_version") if isinstance(meta, dict) else None
    if theirs != PROTOCOL_VERSION:
        version = meta.get("version", "unknown") if isinstance(meta, dict) else "unknown"
        raise EngineVersionError(
            f"the Rivet Engine at {endpoint} (version {version}) speaks envoy protocol "
            f"version {theirs}, but this pyrivet speaks version {PROTOCOL_VERSION}; run "
            f"rivet-engine {ENGINE_RELEASE} (npm @rivetkit/engine-cli-* {ENGINE_RELEASE}, as "
            "pinned by tests/conformance/js/package-lock.json) or a pyrivet built for your engine"
        )
    result: dict[str, Any] = meta
    return result


async def ensure_runner_config(endpoint: str, namespace: str, pool: str, token: str | None) -> bool:
    """Create the pool's runner config unless it exists; True if it was created.

    Without one the engine closes an envoy's socket with ``ws.no_runner_config``.

    Raises:
        EngineError: the engine refused (HTTP error); OSError: unreachable.
    """
    query = urllib.parse.urlencode({"namespace": namespace})
    listed = await asyncio.to_thread(_request, endpoint, "GET", f"/runner-configs?{query}", token)
    configs = listed.get("runner_configs", {}) if isinstance(listed, dict) else {}
    if pool in configs:
        return False
    path = f"/runner-configs/{urllib.parse.quote(pool, safe='')}?{query}"
    body: dict[str, Any] = {"datacenters": {"default": {"normal": {}}}}
    await asyncio.to_thread(_request, endpoint, "PUT", path, token, body)
    return True


async def destroy_actor(endpoint: str, namespace: str, actor_id: str, token: str | None) -> None:
    """Ask the engine to destroy an actor (``DELETE /actors/{id}``).

    Raises:
        EngineError: the engine refused (HTTP error); OSError: unreachable.
    """
    query = urllib.parse.urlencode({"namespace": namespace})
    path = f"/actors/{urllib.parse.quote(actor_id, safe='')}?{query}"
    await asyncio.to_thread(_request, endpoint, "DELETE", path, token)
