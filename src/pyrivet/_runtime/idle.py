"""`IdleSweeper`: puts actors to sleep after ``sleep_timeout`` of continuous idleness.

One heap and one clock timer for the whole runtime, instead of a timer per actor, so
an idle actor costs one heap slot. Instances are ordered by ``idle_key``, the deadline
computed when they were pushed; a deadline only moves later while an actor sits in the
heap (activity resets ``idle_since``), so when the timer fires an entry is re-checked:
still idle and past its real deadline -> sleep; idle but active since -> pushed back
with its new deadline; busy -> dropped (it is pushed again when it next goes idle).
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from .._util.clock import Clock, Timer

if TYPE_CHECKING:
    from .instance import ActorInstance

__all__ = ["IdleSweeper"]


class IdleSweeper:
    """Tracks idle instances and asks them to sleep when their timeout passes."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._heap: list[ActorInstance] = []
        self._timer: Timer | None = None
        self._armed_for: float | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, inst: ActorInstance) -> None:
        """Start (or keep) tracking an instance that just became idle."""
        inst.in_idle_heap = True
        inst.idle_key = inst.idle_since + inst.definition.options.sleep_timeout
        heapq.heappush(self._heap, inst)
        self._arm()

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        if self._closed or not self._heap:
            return
        due = self._heap[0].idle_key
        if self._armed_for is not None and self._armed_for <= due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._armed_for = due
        self._timer = self._clock.call_later(due - self._clock.monotonic(), self._sweep)

    def _sweep(self) -> None:
        self._timer = None
        self._armed_for = None
        now = self._clock.monotonic()
        heap = self._heap
        while heap and heap[0].idle_key <= now:
            inst = heapq.heappop(heap)
            inst.in_idle_heap = False
            if not inst.is_idle():
                continue
            deadline = inst.idle_since + inst.definition.options.sleep_timeout
            if deadline <= now:
                inst.request_stop("sleep")
            else:
                inst.in_idle_heap = True
                inst.idle_key = deadline
                heapq.heappush(heap, inst)
        self._arm()
