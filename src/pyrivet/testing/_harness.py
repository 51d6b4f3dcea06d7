"""`run_actors`: a runtime and an in-process client in one ``async with``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .._runtime.registry import Registry
from .._runtime.runtime import Runtime
from .._util.clock import Clock
from ..client import Client
from ..storage import MemoryDriver
from ..storage._base import ActorStore

__all__ = ["run_actors"]


@asynccontextmanager
async def run_actors(
    registry: Registry,
    *,
    storage: ActorStore | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[tuple[Runtime, Client]]:
    """Run ``registry`` in this process and yield ``(runtime, client)``.

    Storage defaults to a `MemoryDriver` unless ``data_dir`` (SQLite) or ``storage`` is
    given. The runtime is closed (every actor put to sleep) on exit.
    """
    if storage is None and data_dir is None:
        storage = MemoryDriver()
    async with registry.runtime(storage=storage, data_dir=data_dir, clock=clock) as runtime:
        yield runtime, Client(runtime)
