"""`run_with_timeout`: deadlines on the runtime's clock, and no timer for work that
ends in its first step."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from pyrivet._util.clock import MockClock, Timer
from pyrivet._util.timeouts import run_with_timeout


class CountingClock(MockClock):
    """A mock clock that counts the timers armed on it."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = 0

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        self.armed += 1
        return super().call_later(delay, callback)

    def jump(self, seconds: float) -> None:
        """Move time forward at once, firing nothing (a long synchronous step)."""
        self._now += seconds


async def test_a_coroutine_that_ends_without_waiting_arms_no_timer() -> None:
    clock = CountingClock()

    async def quick() -> int:
        return 7

    async def fails() -> int:
        raise ValueError("no")

    assert await run_with_timeout(clock, 5, quick()) == 7
    with pytest.raises(ValueError, match="no"):
        await run_with_timeout(clock, 5, fails())
    assert clock.armed == 0


async def test_a_coroutine_that_waits_gets_its_result_or_times_out() -> None:
    clock = CountingClock()
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def waits(turns: int) -> int:
        for _ in range(turns):
            await asyncio.sleep(0)  # bare yields: the awaiting task is rescheduled
        return await future

    task = asyncio.ensure_future(run_with_timeout(clock, 5, waits(2)))
    await asyncio.sleep(0)
    future.set_result(3)
    assert await task == 3
    assert clock.armed == 1

    never: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def waits_forever() -> int:
        return await never

    task = asyncio.ensure_future(run_with_timeout(clock, 5, waits_forever()))
    await asyncio.sleep(0)
    await clock.advance(4.9)
    assert not task.done()
    await clock.advance(0.2)
    with pytest.raises(TimeoutError):
        await task
    assert never.cancelled()  # the wait was interrupted, as an await's would be


async def test_the_deadline_counts_from_the_call_and_outside_cancels_propagate() -> None:
    clock = CountingClock()
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def slow_first_step() -> None:
        clock.jump(3)  # a first step that runs 3 s before it waits
        await never

    task = asyncio.ensure_future(run_with_timeout(clock, 5, slow_first_step()))
    await asyncio.sleep(0)
    await clock.advance(2.1)  # 5.1 s after the call
    with pytest.raises(TimeoutError):
        await task

    other: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def waits() -> None:
        await other

    task = asyncio.ensure_future(run_with_timeout(clock, 5, waits()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert other.cancelled()
