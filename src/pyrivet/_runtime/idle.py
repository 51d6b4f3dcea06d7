"""`IdleSweeper`: puts actors to sleep after ``sleep_timeout`` of continuous idleness.

One timing wheel and one clock timer for the whole runtime, instead of a timer per
actor, so an idle actor costs one list slot and one float (``idle_since``).

Idle instances wait in buckets keyed by their sleep deadline rounded *up* to 1/16 s
(an actor sleeps at most 62.5 ms after its deadline, never before). When a bucket is
due each instance is re-checked: still idle and past its real deadline -> sleep; idle
but active since it was filed -> filed again under its new deadline; busy -> dropped
(it is filed again when it next goes idle). Instances that stop for another reason
(explicit sleep, destroy) are `discard`ed: counted as stale and swept out of every
bucket at once when they are half of what is filed, so a stopped actor does not stay
in memory until its old deadline.
"""

from __future__ import annotations

import heapq
import math
from typing import TYPE_CHECKING

from .._util.clock import Clock, Timer

if TYPE_CHECKING:
    from .instance import ActorInstance

__all__ = ["IdleSweeper"]

#: Buckets per second: the sleep-time resolution.
_RESOLUTION = 16


class IdleSweeper:
    """Tracks idle instances and asks them to sleep when their timeout passes."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._buckets: dict[int, list[ActorInstance]] = {}
        self._due: list[int] = []
        self._timer: Timer | None = None
        self._armed_for: int | None = None
        self._closed = False
        self._filed = 0
        self._stale = 0

    def __len__(self) -> int:
        return self._filed

    def discard(self, inst: ActorInstance) -> None:
        """Note that a filed instance stopped; compact the buckets if many did."""
        if not inst.in_idle_heap:
            return
        self._stale += 1
        if self._stale > 256 and self._stale * 2 > self._filed:
            self._compact()

    def _compact(self) -> None:
        from .instance import ActorStatus

        for slot, bucket in list(self._buckets.items()):
            live = []
            for inst in bucket:
                if inst.status is ActorStatus.RUNNING:
                    live.append(inst)
                else:
                    inst.in_idle_heap = False
            if live:
                self._buckets[slot] = live
            else:
                del self._buckets[slot]
        self._due = list(self._buckets)
        heapq.heapify(self._due)
        self._filed = sum(len(bucket) for bucket in self._buckets.values())
        self._stale = 0

    def push(self, inst: ActorInstance) -> None:
        """File an instance that just became idle (``inst.idle_since`` is set)."""
        self._file(inst, inst.idle_since + inst.definition.options.sleep_timeout)
        self._arm()

    def _file(self, inst: ActorInstance, deadline: float) -> None:
        inst.in_idle_heap = True
        self._filed += 1
        slot = math.ceil(deadline * _RESOLUTION)
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = []
            heapq.heappush(self._due, slot)
        bucket.append(inst)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        if self._closed or not self._due:
            return
        slot = self._due[0]
        if self._armed_for is not None and self._armed_for <= slot:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._armed_for = slot
        self._timer = self._clock.call_later(
            slot / _RESOLUTION - self._clock.monotonic(), self._sweep
        )

    def _sweep(self) -> None:
        self._timer = None
        self._armed_for = None
        now = self._clock.monotonic()
        now_slot = math.floor(now * _RESOLUTION)
        while self._due and self._due[0] <= now_slot:
            bucket = self._buckets.pop(heapq.heappop(self._due))
            self._filed -= len(bucket)
            for inst in bucket:
                if inst.in_idle_heap and inst.status.value != "running":
                    self._stale = max(0, self._stale - 1)
                inst.in_idle_heap = False
                if not inst.is_idle():
                    continue
                deadline = inst.idle_since + inst.definition.options.sleep_timeout
                if deadline <= now:
                    inst.request_stop("sleep")
                else:
                    self._file(inst, deadline)
        self._arm()
