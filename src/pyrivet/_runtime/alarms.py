"""Durable schedules: ``c.schedule`` (`ScheduleImpl`) and the runtime's `AlarmScheduler`.

A schedule is an `AlarmRecord` committed with the unit of work that created it. The
`AlarmScheduler` mirrors every committed alarm of the process in a heap and arms one
clock timer for the earliest. When an alarm is due the runtime wakes its actor (if
asleep) and calls `fire`:

* one-off: the alarm is deleted in a commit that must be durable *before* the action
  runs, so it fires at most once;
* cron: the next fire time is computed from *now* and stored the same way, so ticks
  missed while the process was down collapse into one fire.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from .._codec.values import decode, encode
from .._util.clock import Clock, Timer
from .._util.ids import new_id
from ..actor._definition import ACTION_NAME_ATTR
from ..errors import ActorError, ScheduleError
from ..storage._base import AlarmRecord, CommitRecord
from . import checkpoint
from .writes import PendingWrites

if TYPE_CHECKING:
    from .instance import ActorInstance

__all__ = ["AlarmScheduler", "ScheduleEntryImpl", "ScheduleImpl", "fire", "next_cron_fire"]

log = logging.getLogger("pyrivet.schedule")


def next_cron_fire(expression: str, timezone: str, after: float) -> float:
    """The first tick of ``expression`` in ``timezone`` strictly after epoch ``after``."""
    base = datetime.fromtimestamp(after, ZoneInfo(timezone))
    return float(croniter(expression, base).get_next(float))


@dataclass(frozen=True, slots=True)
class ScheduleEntryImpl:
    """A pending schedule as returned by ``c.schedule.list()``."""

    id: str
    action: str
    args: list[Any]
    fire_at: float
    cron: str | None


class AlarmScheduler:
    """Every committed alarm of this process, and one timer for the earliest."""

    def __init__(self, clock: Clock, on_due: Callable[[AlarmRecord], None]) -> None:
        self._clock = clock
        self._on_due = on_due
        self._alarms: dict[str, AlarmRecord] = {}
        self._by_actor: dict[str, set[str]] = {}
        self._heap: list[tuple[int, str]] = []
        self._firing: set[str] = set()
        self._timer: Timer | None = None
        self._armed_for: int | None = None
        self._closed = False

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
        for alarm_id in record.alarm_deletes:
            self._remove(alarm_id)
        for alarm in record.alarm_puts:
            self._add(alarm)
        self._arm()

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
        self._alarms[alarm.alarm_id] = alarm
        self._by_actor.setdefault(alarm.actor_id, set()).add(alarm.alarm_id)
        heapq.heappush(self._heap, (alarm.fire_at_ms, alarm.alarm_id))

    def _remove(self, alarm_id: str) -> None:
        alarm = self._alarms.pop(alarm_id, None)
        if alarm is None:
            return
        ids = self._by_actor.get(alarm.actor_id)
        if ids is not None:
            ids.discard(alarm_id)
            if not ids:
                del self._by_actor[alarm.actor_id]

    def _arm(self) -> None:
        if self._closed:
            return
        heap = self._heap
        while heap:
            fire_at_ms, alarm_id = heap[0]
            alarm = self._alarms.get(alarm_id)
            if alarm is None or alarm.fire_at_ms != fire_at_ms:
                heapq.heappop(heap)
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
            if alarm is None or alarm.fire_at_ms != entry[0]:
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


async def fire(inst: ActorInstance, alarm: AlarmRecord) -> None:
    """Claim a due alarm durably, then run its action with no connection.

    Errors of the action are logged (there is no caller to receive them).
    """
    writes = inst.writes
    if writes is None:
        writes = inst.writes = PendingWrites()
    now = inst.svc.clock.now()
    if alarm.kind == "cron" and alarm.cron is not None:
        next_at = next_cron_fire(alarm.cron, alarm.timezone or "UTC", now)
        writes.alarm_puts[alarm.alarm_id] = AlarmRecord(
            alarm.actor_id,
            alarm.alarm_id,
            int(next_at * 1000),
            alarm.kind,
            alarm.action,
            alarm.args,
            alarm.created_at_ms,
            alarm.cron,
            alarm.timezone,
        )
    else:
        writes.alarm_deletes.add(alarm.alarm_id)
    by = f"schedule:{alarm.alarm_id}"
    inst.busy += 1
    try:
        claim = checkpoint.checkpoint(inst, "schedule", name=alarm.action, by=by)
        if claim is not None:
            await claim
        spec = inst.definition.actions.get(alarm.action)
        if spec is None:
            log.error(
                "actor %s (%s): scheduled action %r no longer exists; schedule %s dropped",
                inst.name,
                inst.actor_id,
                alarm.action,
                alarm.alarm_id,
            )
            return
        args = decode(alarm.args)
        # The schedule is claimed: run it even if a shutdown began meanwhile (shutdown
        # waits for it, as for any work in flight).
        await inst.invoke(spec, args, None, encoded_args=alarm.args, by=by, during_shutdown=True)
    except ActorError as exc:
        log.error(
            "actor %s (%s): scheduled action %r failed: %s",
            inst.name,
            inst.actor_id,
            alarm.action,
            exc.message,
        )
    finally:
        inst.busy -= 1
        inst.became_idle()


class ScheduleImpl:
    """``c.schedule``; see `pyrivet.actor.Schedule`."""

    __slots__ = ("_inst",)

    def __init__(self, inst: ActorInstance) -> None:
        self._inst = inst

    def _action_name(self, action: str | Callable[..., Any]) -> str:
        name = action if isinstance(action, str) else getattr(action, ACTION_NAME_ATTR, None)
        if not isinstance(name, str) or name not in self._inst.definition.actions:
            raise ScheduleError(
                f"actor {self._inst.name!r} has no action {name or action!r} to schedule",
                code="unknown_action",
            )
        return name

    def _writes(self) -> PendingWrites:
        inst = self._inst
        if inst.writes is None:
            inst.writes = PendingWrites()
        return inst.writes

    def _put(self, alarm: AlarmRecord) -> str:
        pending = self._pending_map()
        if (
            alarm.alarm_id not in pending
            and len(pending) >= self._inst.definition.options.max_schedules
        ):
            raise ScheduleError(
                f"actor {self._inst.name!r} already has "
                f"{self._inst.definition.options.max_schedules} schedules (max_schedules); "
                "cancel some first",
                code="max_schedules_exceeded",
            )
        writes = self._writes()
        writes.alarm_deletes.discard(alarm.alarm_id)
        writes.alarm_puts[alarm.alarm_id] = alarm
        checkpoint.checkpoint_soon(self._inst)
        return alarm.alarm_id

    def after(self, delay: float, action: str | Callable[..., Any], *args: Any) -> str:
        return self.at(self._inst.svc.clock.now() + delay, action, *args)

    def at(self, timestamp: float, action: str | Callable[..., Any], *args: Any) -> str:
        inst = self._inst
        name = self._action_name(action)
        alarm = AlarmRecord(
            inst.actor_id,
            new_id(),
            int(timestamp * 1000),
            "once",
            name,
            encode(list(args), "the schedule arguments"),
            inst.svc.now_ms(),
        )
        return self._put(alarm)

    def cron(
        self,
        expression: str,
        action: str | Callable[..., Any],
        *args: Any,
        name: str | None = None,
        timezone: str = "UTC",
    ) -> str:
        inst = self._inst
        action_name = self._action_name(action)
        if len(expression.split()) != 5 or not croniter.is_valid(expression):
            raise ScheduleError(
                f"invalid cron expression {expression!r}: use 5 fields "
                "(minute hour day-of-month month day-of-week), e.g. '0 9 * * *'",
                code="invalid_cron_expression",
            )
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(
                f"unknown time zone {timezone!r}; use an IANA name such as 'Europe/Paris'",
                code="invalid_timezone",
            ) from None
        if name is not None and not (0 < len(name.encode()) <= 128):
            raise ScheduleError("a cron job name is 1 to 128 bytes", code="invalid_name")
        fire_at = next_cron_fire(expression, timezone, inst.svc.clock.now())
        alarm = AlarmRecord(
            inst.actor_id,
            name or new_id(),
            int(fire_at * 1000),
            "cron",
            action_name,
            encode(list(args), "the schedule arguments"),
            inst.svc.now_ms(),
            expression,
            timezone,
        )
        return self._put(alarm)

    def cancel(self, schedule_id: str) -> bool:
        if schedule_id not in self._pending_map():
            return False
        writes = self._writes()
        writes.alarm_puts.pop(schedule_id, None)
        writes.alarm_deletes.add(schedule_id)
        checkpoint.checkpoint_soon(self._inst)
        return True

    def list(self) -> list[ScheduleEntryImpl]:
        entries = [
            ScheduleEntryImpl(a.alarm_id, a.action, decode(a.args), a.fire_at_ms / 1000, a.cron)
            for a in self._pending_map().values()
        ]
        entries.sort(key=lambda e: (e.fire_at, e.id))
        return entries

    def _pending_map(self) -> dict[str, AlarmRecord]:
        """Committed alarms with this actor's not-yet-durable changes applied."""
        inst = self._inst
        alarms = {a.alarm_id: a for a in inst.svc.alarms.for_actor(inst.actor_id)}
        writes = inst.writes
        if writes is not None:
            for gated in writes.gated:
                for alarm_id in gated.alarm_deletes:
                    alarms.pop(alarm_id, None)
                for alarm in gated.alarm_puts:
                    alarms[alarm.alarm_id] = alarm
            for alarm_id in writes.alarm_deletes:
                alarms.pop(alarm_id, None)
            alarms.update(writes.alarm_puts)
        return alarms
