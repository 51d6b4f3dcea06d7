"""The runtime's `AlarmScheduler`: every committed schedule of the process, and one timer.

A schedule is an `AlarmRecord` committed with the unit of work that created it
(``c.schedule`` is `schedule.ScheduleImpl`). The `AlarmScheduler` mirrors every
committed alarm of the process in a heap and arms one clock timer for the earliest.
When an alarm is due the runtime wakes its actor (if asleep) and the instance runs it
(`ActorInstance.fire_alarm`):

* one-off: the alarm is deleted in a commit that must be durable *before* the action
  runs, so it fires at most once;
* cron: the next fire time is computed from *now* and stored the same way, so ticks
  missed while the process was down collapse into one fire.

An alarm that is due and that its owner says needs no firing (``handled``: a running
workflow's "resume at once" alarm, whose run is in memory) is mirrored without a heap
entry: it arms no timer, and the fire it would cause in the next iteration would only be
skipped.

In envoy mode (`restrict`) another process wakes sleeping actors for their schedules
(the Rivet Engine, told each actor's earliest alarm through ``on_earliest``): the
scheduler then arms its timer only for actors in memory (`resume` / `suspend`), and a
woken actor's due alarms fire at once.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from .._util.clock import Clock, Timer
from ..storage._base import AlarmRecord, CommitRecord

__all__ = ["AlarmScheduler", "next_cron_fire"]

log = logging.getLogger("pyrivet.schedule")


def next_cron_fire(expression: str, timezone: str, after: float) -> float:
    """The first tick of ``expression`` in ``timezone`` strictly after epoch ``after``."""
    base = datetime.fromtimestamp(after, ZoneInfo(timezone))
    return float(croniter(expression, base).get_next(float))


class AlarmScheduler:
    """Every committed alarm of this process, and one timer for the earliest."""

    def __init__(
        self,
        clock: Clock,
        on_due: Callable[[AlarmRecord], None],
        handled: Callable[[AlarmRecord], bool] | None = None,
    ) -> None:
        """``handled(alarm)``: whether a committed alarm is taken care of in memory, so
        that firing it would do nothing (see the module docstring); it must not raise
        and is asked only in `apply`."""
        self._clock = clock
        self._on_due = on_due
        self._handled = handled
        self._alarms: dict[str, AlarmRecord] = {}
        self._by_actor: dict[str, set[str]] = {}
        self._heap: list[tuple[int, str]] = []
        self._firing: set[str] = set()
        self._timer: Timer | None = None
        self._armed_for: int | None = None
        self._closed = False
        #: Actors whose alarms fire here; None: every actor's (standalone).
        self._active: set[str] | None = None
        #: Called with (actor_id, earliest fire_at_ms or None) when an actor's earliest
        #: alarm may have changed (envoy mode); must not raise.
        self.on_earliest: Callable[[str, int | None], None] | None = None

    def restrict(self) -> None:
        """Fire only alarms of actors passed to `resume` (and not `suspend`ed since)."""
        self._active = set()

    def resume(self, actor_id: str) -> None:
        """The actor is in memory: arm for its alarms (due ones fire at once)."""
        if self._active is None or actor_id in self._active:
            return
        self._active.add(actor_id)
        for alarm_id in self._by_actor.get(actor_id, ()):
            alarm = self._alarms[alarm_id]
            heapq.heappush(self._heap, (alarm.fire_at_ms, alarm_id))
        self._arm()

    def suspend(self, actor_id: str) -> None:
        """The actor left memory: its alarms no longer arm the timer (restricted mode)."""
        if self._active is not None:
            self._active.discard(actor_id)

    def earliest(self, actor_id: str) -> int | None:
        """The earliest fire time (epoch ms) of the actor's alarms, None if it has none."""
        ids = self._by_actor.get(actor_id)
        return min(self._alarms[a].fire_at_ms for a in ids) if ids else None

    def load(self, alarms: list[AlarmRecord]) -> None:
        """Add alarms read from storage at start (due ones fire at once)."""
        for alarm in alarms:
            self._add(alarm)
        self._arm()

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def apply(self, record: CommitRecord) -> None:
        """Mirror the alarm changes of a durable commit."""
        if not record.alarm_puts and not record.alarm_deletes:
            return
        actors = {a.actor_id for a in record.alarm_puts}
        for alarm_id in record.alarm_deletes:
            removed_from = self._remove(alarm_id)
            if removed_from is not None:
                actors.add(removed_from)
        handled = self._handled
        pushed = False
        for alarm in record.alarm_puts:
            if handled is not None and handled(alarm):
                self._mirror(alarm)  # no heap entry: a stale one of its id is skipped
            else:
                self._add(alarm)
                pushed = True
        if pushed:  # a delete leaves its heap entry to be skipped when it comes up
            self._arm()
        self._report(actors)

    def _report(self, actors: Iterable[str]) -> None:
        if self.on_earliest is None:
            return
        for actor_id in actors:
            self.on_earliest(actor_id, self.earliest(actor_id))

    def forget_actor(self, actor_id: str) -> None:
        """Drop every alarm of a destroyed actor."""
        for alarm_id in list(self._by_actor.get(actor_id, ())):
            self._remove(alarm_id)

    def for_actor(self, actor_id: str) -> list[AlarmRecord]:
        return [self._alarms[a] for a in self._by_actor.get(actor_id, ())]

    def done_firing(self, alarm_id: str) -> None:
        self._firing.discard(alarm_id)
        self._arm()

    def _add(self, alarm: AlarmRecord) -> None:
        self._mirror(alarm)
        heapq.heappush(self._heap, (alarm.fire_at_ms, alarm.alarm_id))

    def _mirror(self, alarm: AlarmRecord) -> None:
        """Know ``alarm`` (`earliest`, `for_actor`, `resume`), without arming for it."""
        self._alarms[alarm.alarm_id] = alarm
        self._by_actor.setdefault(alarm.actor_id, set()).add(alarm.alarm_id)

    def _remove(self, alarm_id: str) -> str | None:
        """Forget an alarm; the id of its actor (None: it was not known)."""
        alarm = self._alarms.pop(alarm_id, None)
        if alarm is None:
            return None
        ids = self._by_actor.get(alarm.actor_id)
        if ids is not None:
            ids.discard(alarm_id)
            if not ids:
                del self._by_actor[alarm.actor_id]
        return alarm.actor_id

    def _arm(self) -> None:
        if self._closed:
            return
        heap = self._heap
        while heap:
            fire_at_ms, alarm_id = heap[0]
            alarm = self._alarms.get(alarm_id)
            if alarm is None or alarm.fire_at_ms != fire_at_ms or not self._fires(alarm):
                heapq.heappop(heap)  # `resume` pushes a suspended actor's alarms again
                continue
            break
        if not heap:
            return
        due = heap[0][0]
        if self._armed_for is not None and self._armed_for <= due and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._armed_for = due
        self._timer = self._clock.call_later(due / 1000 - self._clock.now(), self._fire_due)

    def _fire_due(self) -> None:
        self._timer = None
        self._armed_for = None
        now_ms = int(self._clock.now() * 1000)
        deferred = []
        while self._heap and self._heap[0][0] <= now_ms:
            entry = heapq.heappop(self._heap)
            alarm = self._alarms.get(entry[1])
            if alarm is None or alarm.fire_at_ms != entry[0] or not self._fires(alarm):
                continue
            if alarm.alarm_id in self._firing:
                deferred.append(entry)
                continue
            self._firing.add(alarm.alarm_id)
            self._on_due(alarm)
        for entry in deferred:
            heapq.heappush(self._heap, entry)
        if not deferred:
            self._arm()

    def _fires(self, alarm: AlarmRecord) -> bool:
        return self._active is None or alarm.actor_id in self._active
