"""Deadlines on the runtime's `Clock` (asyncio's own timeouts read the loop's clock).

`run_with_timeout` cancels the *current task* when the deadline passes, so the awaited
work is interrupted at its next ``await`` and the caller gets `TimeoutError`. A
cancellation from outside still propagates as `CancelledError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from .clock import Clock

__all__ = ["run_with_timeout"]

T = TypeVar("T")


async def run_with_timeout(clock: Clock, timeout: float | None, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable``; raise `TimeoutError` if it takes longer than ``timeout``.

    ``timeout=None`` waits without a limit.
    """
    if timeout is None:
        return await awaitable
    task = asyncio.current_task()
    assert task is not None, "run_with_timeout must run inside a task"
    fired = False

    def expire() -> None:
        nonlocal fired
        fired = True
        task.cancel()

    timer = clock.call_later(timeout, expire)
    try:
        return await awaitable
    except asyncio.CancelledError:
        if fired and task.uncancel() == 0:
            raise TimeoutError from None
        raise
    finally:
        timer.cancel()
