"""``c.schedule`` (`ScheduleImpl`): durable timers, staged in the actor's journal.

A schedule made or cancelled by actor code is staged in the journal and becomes durable
with the unit of work that made it; the runtime's `AlarmScheduler` mirrors it once the
commit is durable. Listing shows the committed schedules with the not-yet-durable
changes applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from .._codec.values import decode, encode
from .._util.ids import new_id
from ..actor._context import Schedule, ScheduleEntry
from ..actor._definition import ACTION_NAME_ATTR
from ..errors import ScheduleError
from ..storage._base import AlarmRecord
from .alarms import next_cron_fire
from .journal import Journal

__all__ = ["ScheduleEntryImpl", "ScheduleImpl"]

#: The alarm kinds that are the actor's own schedules (``c.schedule``).
_SCHEDULE_KINDS = frozenset({"once", "cron"})


@dataclass(frozen=True, slots=True)
class ScheduleEntryImpl:
    """A pending schedule as returned by ``c.schedule.list()``."""

    id: str
    action: str
    args: list[Any]
    fire_at: float
    cron: str | None


class ScheduleImpl(Schedule):
    """``c.schedule``; see `pyrivet.actor.Schedule`."""

    __slots__ = ("_inst", "_journal")

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._inst = journal.owner

    def _action_name(self, action: str | Callable[..., Any]) -> str:
        name = action if isinstance(action, str) else getattr(action, ACTION_NAME_ATTR, None)
        if not isinstance(name, str) or name not in self._inst.definition.actions:
            raise ScheduleError(
                f"actor {self._inst.name!r} has no action {name or action!r} to schedule",
                code="unknown_action",
            )
        return name

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
        self._journal.stage_alarm_put(alarm)
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
        self._journal.stage_alarm_delete(schedule_id)
        return True

    def list(self) -> list[ScheduleEntry]:
        entries: list[ScheduleEntry] = [
            ScheduleEntryImpl(a.alarm_id, a.action, decode(a.args), a.fire_at_ms / 1000, a.cron)
            for a in self._pending_map().values()
        ]
        entries.sort(key=lambda e: (e.fire_at, e.id))
        return entries

    def _pending_map(self) -> dict[str, AlarmRecord]:
        """Committed alarms with this actor's not-yet-durable changes applied."""
        inst = self._inst
        alarms = {a.alarm_id: a for a in inst.svc.alarms.for_actor(inst.actor_id)}
        writes = self._journal.pending
        if writes is not None:
            for gated in writes.gated:
                for alarm_id in gated.alarm_deletes:
                    alarms.pop(alarm_id, None)
                for alarm in gated.alarm_puts:
                    alarms[alarm.alarm_id] = alarm
            for alarm_id in writes.alarm_deletes:
                alarms.pop(alarm_id, None)
            alarms.update(writes.alarm_puts)
        # The workflow's wake-up alarm is the runtime's, not a schedule of the actor.
        return {k: a for k, a in alarms.items() if a.kind in _SCHEDULE_KINDS}
