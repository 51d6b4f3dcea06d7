"""`run_actors`: a runtime and an in-process client in one ``async with``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .._runtime.registry import Registry
from .._runtime.runtime import Runtime
from .._util.clock import Clock, MockClock
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
    given. On exit every actor is put to sleep; with a `MockClock` the clock is advanced
    while that happens, so a shutdown grace period elapses instead of hanging the test.
    """
    if storage is None and data_dir is None:
        storage = MemoryDriver()
    runtime = registry.runtime(storage=storage, data_dir=data_dir, clock=clock)
    await runtime.start()
    try:
        yield runtime, Client(runtime)
    finally:
        if isinstance(clock, MockClock):
            await _close_on_mock_clock(runtime, clock)
        else:
            await runtime.aclose()


async def _close_on_mock_clock(runtime: Runtime, clock: MockClock) -> None:
    closing = asyncio.ensure_future(runtime.aclose())
    while not closing.done():
        await clock.advance(1.0)
    await closing
