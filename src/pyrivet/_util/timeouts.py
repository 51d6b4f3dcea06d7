"""Deadlines on the runtime's `Clock` (asyncio's own timeouts read the loop's clock).

`run_with_timeout` cancels the *current task* when the deadline passes, so the awaited
work is interrupted at its next ``await`` and the caller gets `TimeoutError`. A
cancellation from outside still propagates as `CancelledError`. A coroutine that ends
in its first step never arms the deadline's timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from types import CoroutineType
from typing import TypeVar

from .clock import Clock
from .resume import Resumed

__all__ = ["run_with_timeout"]

T = TypeVar("T")


async def run_with_timeout(clock: Clock, timeout: float | None, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable``; raise `TimeoutError` if it takes longer than ``timeout``.

    ``timeout=None`` waits without a limit. A coroutine's first step runs before the
    deadline's timer is armed, as ``await`` would run it: work that ends without waiting
    (an action that awaits nothing, a shutdown with nothing left to wait for) makes no
    timer, which a deadline could not have used (it interrupts a wait, never a step).
    The deadline still counts from the call.
    """
    if timeout is None:
        return await awaitable
    task = asyncio.current_task()
    assert task is not None, "run_with_timeout must run inside a task"
    if type(awaitable) is CoroutineType:
        started = clock.monotonic()
        try:
            waiting_on = awaitable.send(None)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        awaitable = Resumed(awaitable, waiting_on)
        timeout -= clock.monotonic() - started
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
