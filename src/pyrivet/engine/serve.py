"""`serve_envoy`: run a registry as an envoy of the Rivet Engine until told to stop.

Starts the registry's runtime on an `EngineStore` (the actors' data in the engine's
per-actor KV; ``storage="local"``: on the SQLite data directory), builds the ASGI app of
standalone mode over it (``make_app``, passed in by the CLI: the server package sits
beside this one), connects an `EnvoyHost`, and waits. Stopping (the callback given to
``install_signals``, or cancelling) tells the engine the envoy stops, then closes the
host, then the runtime: every actor asleep and its state committed.

Raises `EngineError` (or a subclass) if the envoy gives up: a protocol version the
engine does not speak, an engine unreachable past ``give_up_after``, a refusal.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from .._runtime.registry import Registry
from .._runtime.runtime import Runtime
from ._envoy import EnvoyConfig
from ._host import EnvoyHost
from ._store import EngineStore
from ._tunnel import AsgiApp

__all__ = ["serve_envoy"]


async def serve_envoy(
    registry: Registry,
    make_app: Callable[[Runtime], AsgiApp],
    *,
    endpoint: str,
    namespace: str = "default",
    pool: str = "default",
    token: str | None = None,
    give_up_after: float | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    storage: str = "engine",
    local_actor_db: bool = False,
    on_ready: Callable[[], object] | None = None,
    install_signals: Callable[[Callable[[], None]], None] | None = None,
) -> None:
    """Host ``registry``'s actors for the engine at ``endpoint`` until stopped.

    ``storage`` is ``"engine"`` (the default: every actor's data in the engine's KV,
    ``c.db`` files under ``data_dir/actor-db`` if ``local_actor_db``, else ``c.db``
    fails with a clear error) or ``"local"`` (SQLite in ``data_dir``).
    """
    if storage not in ("engine", "local"):
        raise ValueError(f"storage is 'engine' or 'local', not {storage!r}")
    stop = asyncio.Event()
    if install_signals is not None:
        install_signals(stop.set)
    config = EnvoyConfig(
        endpoint, namespace=namespace, pool=pool, token=token, give_up_after=give_up_after
    )
    if storage == "engine":
        base = Path(data_dir if data_dir is not None else ".pyrivet")
        store = EngineStore(local_db_dir=base / "actor-db" if local_actor_db else None)
        runtime = registry.runtime(storage=store)
    else:
        runtime = registry.runtime(data_dir=data_dir)
    async with runtime, EnvoyHost(runtime, make_app(runtime), config) as host:
        await host.envoy.wait_ready()
        if on_ready is not None:
            on_ready()
        stopping = asyncio.ensure_future(stop.wait())
        failed = asyncio.ensure_future(host.envoy.run_until_failed())
        try:
            await asyncio.wait({stopping, failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if failed.done():
            failed.result()  # raises why the envoy gave up
        failed.cancel()
