"""Where the runtime reads time and arms timers.

Everything in pyrivet that waits (sleep timers, action timeouts, schedules, grace
periods) goes through a `Clock`, so tests run on `MockClock` and never really wait.

A clock offers two readings: `now()` (wall time, epoch seconds, used for what is stored:
schedule times, event timestamps) and `monotonic()` (used for durations). On
`MockClock` both advance together.

Timers are plain callbacks run on the event loop (`call_at` / `call_later`); the
returned `Timer` can be cancelled. Callbacks must not raise; an exception is logged by
the event loop's exception handler.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = ["Clock", "MockClock", "SystemClock", "Timer"]


class Timer(Protocol):
    """A pending callback; `cancel()` is idempotent and safe after it fired."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """The source of time and timers for one runtime."""

    def now(self) -> float:
        """Wall-clock time in epoch seconds."""
        ...

    def monotonic(self) -> float:
        """A monotonic reading in seconds, for measuring durations."""
        ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Run ``callback`` on the event loop after ``delay`` seconds of this clock."""
        ...

    async def sleep(self, delay: float) -> None:
        """Wait ``delay`` seconds of this clock."""
        ...


class SystemClock:
    """The real clock: `time.time()` and the running event loop's timers."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(max(0.0, delay))


class _MockTimer:
    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], object]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class MockClock:
    """A clock that only moves when a test says so.

    ```python
    clock = MockClock()
    ...
    await clock.advance(30)   # fires every timer due within the next 30 s, in order
    ```

    `advance` moves time forward timer by timer, letting the event loop run the work
    each timer starts before moving on, so cascades (a timer that arms another timer)
    behave as on a real clock.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._start = start
        self._timers: list[tuple[float, int, _MockTimer]] = []
        self._counter = itertools.count()
        self._settlers: list[Callable[[], Awaitable[object] | None]] = []

    def add_settler(self, settler: Callable[[], Awaitable[object] | None]) -> None:
        """Register work that `advance` waits for between timers.

        A settler returns an awaitable while it has work in flight outside the event
        loop (e.g. a commit on the SQLite writer thread) and None when it is idle. The
        runtime registers its committer so that a test's `advance` sees each timer's
        consequences fully applied before the next timer fires.
        """
        self._settlers.append(settler)

    def remove_settler(self, settler: Callable[[], Awaitable[object] | None]) -> None:
        """Undo `add_settler`; unknown settlers are ignored."""
        if settler in self._settlers:
            self._settlers.remove(settler)

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now - self._start

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        timer = _MockTimer(self._now + max(0.0, delay), callback)
        heapq.heappush(self._timers, (timer.deadline, next(self._counter), timer))
        return timer

    async def sleep(self, delay: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_later(delay, wake)
        try:
            await future
        finally:
            timer.cancel()

    def next_deadline(self) -> float | None:
        """The time of the earliest pending timer, or None."""
        self._drop_cancelled()
        return self._timers[0][0] if self._timers else None

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing due timers in deadline order."""
        target = self._now + seconds
        await self.settle()
        while True:
            self._drop_cancelled()
            if not self._timers or self._timers[0][0] > target:
                break
            deadline, _, timer = heapq.heappop(self._timers)
            self._now = max(self._now, deadline)
            timer.callback()
            await self.settle()
        self._now = target
        await self.settle()

    async def settle(self) -> None:
        """Run the event loop until it and every registered settler are idle."""
        while True:
            await _drain_ready()
            pending = [w for w in (s() for s in self._settlers) if w is not None]
            if not pending:
                await _drain_ready()
                if not any(s() is not None for s in self._settlers):
                    return
                continue
            for waiter in pending:
                await waiter

    def _drop_cancelled(self) -> None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)


async def _drain_ready(max_rounds: int = 1000) -> None:
    """Yield until the event loop has no ready callbacks left (bounded)."""
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)
    for _ in range(max_rounds):
        await asyncio.sleep(0)
        if ready is not None and not ready:
            return
