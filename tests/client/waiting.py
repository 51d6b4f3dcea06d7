"""Waiting for conditions that depend on real network I/O (bounded in time)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until it holds; `TimeoutError` after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.005)


async def until_async(predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Like `until`, for an async predicate."""
    async with asyncio.timeout(timeout):
        while True:
            if await predicate():
                return
            await asyncio.sleep(0.02)
