"""`IdleSweeper`: puts actors to sleep after ``sleep_timeout`` of continuous idleness.

One timing wheel and one clock timer for the whole runtime, instead of a timer per
actor. Idle instances wait in buckets keyed by their sleep deadline rounded *up* to
1/16 s (an actor sleeps at most 62.5 ms after its deadline, never before).

A bucket is an intrusive ring: the instances themselves carry the links
(`IdleLink`), so filing an instance allocates nothing, moving it to a later bucket
when it goes idle again and taking it out when it stops are O(1), and an instance that
stopped is never kept alive by the wheel. An idle actor costs the wheel two pointers.

Every time an instance goes idle it is (re)filed under ``now + sleep_timeout``; work in
between does not touch the wheel. When a bucket is due, each instance still in it has
been idle since its deadline or became busy and did not go idle again: idle -> sleep,
busy -> dropped (it is filed again when it next goes idle).
"""

from __future__ import annotations

import heapq
import math
from typing import Any

from .._util.clock import Clock, Timer

__all__ = ["IdleLink", "IdleSweeper"]

#: Buckets per second: the sleep-time resolution.
_RESOLUTION = 16


class IdleLink:
    """What the wheel files: the two links an instance needs to sit in a bucket (None:
    not filed), and the two questions the sweeper asks it (`ActorInstance` answers)."""

    __slots__ = ("idle_next", "idle_prev")

    def __init__(self) -> None:
        self.idle_next: Any = None
        self.idle_prev: Any = None

    def is_idle(self) -> bool:
        """Whether it may sleep now."""
        return False

    def request_stop(self, kind: str) -> None:
        """Start a sleep (``"sleep"``) in the background."""
        raise NotImplementedError


class _Bucket(IdleLink):
    """The head of one bucket's ring."""

    __slots__ = ("slot",)

    def __init__(self, slot: int) -> None:
        self.idle_next = self.idle_prev = self
        self.slot = slot


class IdleSweeper:
    """Tracks idle instances and asks them to sleep when their timeout passes."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}
        #: Slots of the buckets, as a heap; it may hold slots whose bucket emptied, but
        #: never more than twice as many as there are buckets (plus a few).
        self._due: list[int] = []
        self._timer: Timer | None = None
        self._armed_for: int | None = None
        self._closed = False
        self._filed = 0

    def __len__(self) -> int:
        """How many instances are filed."""
        return self._filed

    @property
    def bucket_count(self) -> int:
        return len(self._buckets)

    def file(self, inst: IdleLink, sleep_timeout: float) -> None:
        """File an instance that just became idle under ``now + sleep_timeout``."""
        deadline = self._clock.monotonic() + sleep_timeout
        slot = math.ceil(deadline * _RESOLUTION)
        bucket = self._buckets.get(slot)
        if bucket is not None and inst.idle_next is bucket:
            return  # already the last one filed there (back-to-back work on one actor)
        if inst.idle_next is not None:
            self._unlink(inst)
        if bucket is None:
            bucket = self._buckets[slot] = _Bucket(slot)
            heapq.heappush(self._due, slot)
        last = bucket.idle_prev
        inst.idle_prev = last
        inst.idle_next = bucket
        last.idle_next = inst
        bucket.idle_prev = inst
        self._filed += 1
        self._arm()

    def discard(self, inst: IdleLink) -> None:
        """Take out an instance that stopped, so the wheel holds no reference to it."""
        if inst.idle_next is not None:
            self._unlink(inst)

    def _unlink(self, inst: IdleLink) -> None:
        prev, nxt = inst.idle_prev, inst.idle_next
        prev.idle_next = nxt
        nxt.idle_prev = prev
        inst.idle_prev = inst.idle_next = None
        self._filed -= 1
        if prev is nxt and type(prev) is _Bucket:  # the bucket is empty now
            self._drop(prev)

    def _drop(self, bucket: _Bucket) -> None:
        """Forget an empty bucket; rebuild the heap once most of its slots are stale."""
        buckets = self._buckets
        del buckets[bucket.slot]
        bucket.idle_next = bucket.idle_prev = None  # break the ring's self-cycle
        if len(self._due) > 2 * len(buckets) + 16:
            self._due = list(buckets)
            heapq.heapify(self._due)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        if self._closed:
            return
        due = self._due
        while due and due[0] not in self._buckets:
            heapq.heappop(due)
        if not due:
            return
        slot = due[0]
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
        now_slot = math.floor(self._clock.monotonic() * _RESOLUTION)
        due = self._due
        while due and due[0] <= now_slot:
            bucket = self._buckets.pop(heapq.heappop(due), None)
            if bucket is None:
                continue
            # Every instance here passed its deadline (slot <= now): detach the ring
            # whole, then let each one still idle sleep.
            node = bucket.idle_next
            bucket.idle_next = bucket.idle_prev = None
            while node is not bucket:
                inst: IdleLink = node
                node = inst.idle_next
                inst.idle_prev = inst.idle_next = None
                self._filed -= 1
                if inst.is_idle():
                    inst.request_stop("sleep")
        self._arm()
