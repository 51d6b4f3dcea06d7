"""Schedules: one-off and cron, durable across sleep and restarts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pyrivet import ActorOptions, Registry, actor
from pyrivet.errors import ScheduleError
from pyrivet.storage import ActorStore
from pyrivet.testing import MockClock, run_actors

DriverFactory = Callable[[], ActorStore]

#: A start time on a minute boundary (2023-11-14 22:14:00 UTC), so cron ticks are whole minutes.
T0 = 1_700_000_040.0
assert T0 % 60 == 0


def sched_def(**options: Any) -> Any:
    sched = actor("sched", state={"fired": []}, options=ActorOptions(**options))

    @sched.action
    def tick(c: Any, tag: str) -> None:
        c.state["fired"].append(tag)
        if c.conn is not None:
            c.state["fired"].append("had a connection")

    @sched.action
    def after(c: Any, delay: float, tag: str) -> str:
        return str(c.schedule.after(delay, "tick", tag))

    @sched.action
    def at(c: Any, timestamp: float, tag: str) -> str:
        return str(c.schedule.at(timestamp, tick, tag))

    @sched.action
    def cron(
        c: Any, expression: str, tag: str, name: str | None = None, timezone: str = "UTC"
    ) -> str:
        return str(c.schedule.cron(expression, tick, tag, name=name, timezone=timezone))

    @sched.action
    def cancel(c: Any, schedule_id: str) -> bool:
        return bool(c.schedule.cancel(schedule_id))

    @sched.action
    def pending(c: Any) -> list[Any]:
        return [[e.id, e.action, e.args, e.fire_at, e.cron] for e in c.schedule.list()]

    @sched.action
    def fired(c: Any) -> list[str]:
        return list(c.state["fired"])

    @sched.action
    def schedule_unknown(c: Any) -> str:
        return str(c.schedule.after(1, "no_such_action"))

    return sched


async def test_after_and_at_fire_in_order(driver_factory: DriverFactory) -> None:
    clock = MockClock(T0)
    async with run_actors(Registry([sched_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("sched", ["a"])
        await handle.after(20, "b")
        await handle.after(10, "a")
        await handle.at(T0 + 15, "c")
        await clock.advance(9.9)
        assert await handle.fired() == []
        await clock.advance(0.2)
        assert await handle.fired() == ["a"]
        await clock.advance(10)
        assert await handle.fired() == ["a", "c", "b"]
        assert await handle.pending() == []
        await clock.advance(1000)
        assert await handle.fired() == ["a", "c", "b"]


async def test_at_in_the_past_fires_at_once(driver_factory: DriverFactory) -> None:
    clock = MockClock(T0)
    async with run_actors(Registry([sched_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("sched", ["a"])
        await handle.at(T0 - 100, "late")
        await clock.advance(0)
        assert await handle.fired() == ["late"]


async def test_schedule_wakes_sleeping_actor(driver_factory: DriverFactory) -> None:
    clock = MockClock(T0)
    sched = sched_def(sleep_timeout=5.0)
    async with run_actors(Registry([sched]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("sched", ["a"])
        await handle.after(100, "wake")
        actor_id = await handle.resolve()
        await clock.advance(6)
        assert not runtime.is_awake(actor_id)
        await clock.advance(94.5)
        entries = await runtime.history(actor_id)
        assert [e.state for e in entries if e.state_changed][-1] == {"fired": ["wake"]}
        by = [e.by for e in entries if e.kind == "action"][-1]
        assert by is not None and by.startswith("schedule:")
        # Woken by the schedule, it goes back to sleep when idle.
        await clock.advance(6)
        assert not runtime.is_awake(actor_id)
        assert await handle.fired() == ["wake"]


async def test_cancel(driver_factory: DriverFactory) -> None:
    clock = MockClock(T0)
    async with run_actors(Registry([sched_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("sched", ["a"])
        first = await handle.after(10, "x")
        await handle.after(20, "y")
        job = await handle.cron("* * * * *", "c", "job")
        assert job == "job"
        assert await handle.cancel(first) is True
        assert await handle.cancel(first) is False
        assert await handle.cancel("unknown-id") is False
        assert await handle.cancel("job") is True
        await clock.advance(300)
        assert await handle.fired() == ["y"]


async def test_list(driver_factory: DriverFactory) -> None:
    clock = MockClock(T0)
    async with run_actors(Registry([sched_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("sched", ["a"])
        later = await handle.after(500, "later")
        soon = await handle.after(10, "soon")
        await handle.cron("*/5 * * * *", "five", "every-five")
        assert await handle.pending() == [
            [soon, "tick", ["soon"], T0 + 10, None],
            # 22:14 -> 22:15 is the next multiple of five minutes.
            ["every-five", "tick", ["five"], T0 + 60, "*/5 * * * *"],
            [later, "tick", ["later"], T0 + 500, None],
        ]
        await clock.advance(60)
        assert await handle.fired() == ["soon", "five"]
        assert await handle.pending() == [
            [
                "every-five",
                "tick",
                ["five"],
                T0 + 360,
                "*/5 * * * *",
            ],
            [later, "tick", ["later"], T0 + 500, None],
        ]


async def test_unknown_action_is_rejected(driver_factory: DriverFactory) -> None:
    clock = MockClock(T0)
    async with run_actors(Registry([sched_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("sched", ["a"])
        with pytest.raises(ScheduleError) as info:
            await handle.schedule_unknown()
        assert info.value.code == "unknown_action"
        assert "no_such_action" in info.value.message
        assert await handle.pending() == []


@pytest.mark.parametrize(
    ("expression", "timezone", "code"),
    [
        ("* * *", "UTC", "invalid_cron_expression"),
        ("* * * * * *", "UTC", "invalid_cron_expression"),
        ("61 * * * *", "UTC", "invalid_cron_expression"),
        ("every minute", "UTC", "invalid_cron_expression"),
        ("* * * * *", "Mars/Olympus_Mons", "invalid_timezone"),
        ("* * * * *", "", "invalid_timezone"),
    ],
)
async def test_invalid_cron_or_timezone(
    driver_factory: DriverFactory, expression: str, timezone: str, code: str
) -> None:
    clock = MockClock(T0)
    async with run_actors(Registry([sched_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("sched", ["a"])
        with pytest.raises(ScheduleError) as info:
            await handle.cron(expression, "x", None, timezone)
        assert info.value.code == code
        assert await handle.pending() == []


async def test_cron_fires_on_each_tick(driver_factory: DriverFactory) -> None:
    clock = MockClock(T0)
    async with run_actors(Registry([sched_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("sched", ["a"])
        await handle.cron("* * * * *", "m")
        await clock.advance(59.9)
        assert await handle.fired() == []
        await clock.advance(0.1)
        assert await handle.fired() == ["m"]
        await clock.advance(60)
        assert await handle.fired() == ["m", "m"]
        await clock.advance(180)
        assert await handle.fired() == ["m"] * 5


async def test_cron_in_time_zone(driver_factory: DriverFactory) -> None:
    clock = MockClock(T0)
    async with run_actors(Registry([sched_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("sched", ["a"])
        await handle.cron("0 9 * * *", "paris", "nine", "Europe/Paris")
        expected = datetime(2023, 11, 15, 9, 0, tzinfo=ZoneInfo("Europe/Paris")).timestamp()
        assert (await handle.pending())[0][3] == expected
        await clock.advance(expected - T0 - 1)
        assert await handle.fired() == []
        await clock.advance(1)
        assert await handle.fired() == ["paris"]


async def test_same_cron_name_replaces_job(driver_factory: DriverFactory) -> None:
    clock = MockClock(T0)
    async with run_actors(Registry([sched_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("sched", ["a"])
        await handle.cron("* * * * *", "old", "job")
        await handle.cron("*/2 * * * *", "new", "job")
        assert [e[0] for e in await handle.pending()] == ["job"]
        await clock.advance(240)
        assert await handle.fired() == ["new", "new"]


async def test_one_off_survives_restart_and_fires_once(driver_factory: DriverFactory) -> None:
    registry = Registry([sched_def()])
    async with run_actors(registry, storage=driver_factory(), clock=MockClock(T0)) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("sched", ["a"])
        await handle.after(100, "x")
        actor_id = await handle.resolve()
    # Down past its time: it fires once when the next runtime starts.
    clock = MockClock(T0 + 500)
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (runtime, client):
        await clock.advance(0)
        assert runtime.is_awake(actor_id)
        handle = client.get_or_create("sched", ["a"])
        assert await handle.fired() == ["x"]
        await clock.advance(1000)
        assert await handle.fired() == ["x"]
        assert await handle.pending() == []
    # Not again after another restart.
    clock = MockClock(T0 + 5000)
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (runtime, client):
        await clock.advance(100)
        assert not runtime.is_awake(actor_id)
        handle = client.get_or_create("sched", ["a"])
        assert await handle.fired() == ["x"]


async def test_one_off_not_yet_due_after_restart(driver_factory: DriverFactory) -> None:
    registry = Registry([sched_def()])
    async with run_actors(registry, storage=driver_factory(), clock=MockClock(T0)) as (_, client):
        await client.get_or_create("sched", ["a"]).after(100, "x")
    clock = MockClock(T0 + 50)
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (_, client):
        handle = client.get_or_create("sched", ["a"])
        await clock.advance(49.9)
        assert await handle.fired() == []
        await clock.advance(0.2)
        assert await handle.fired() == ["x"]


async def test_missed_cron_ticks_fire_once_on_start(driver_factory: DriverFactory) -> None:
    registry = Registry([sched_def()])
    clock = MockClock(T0)
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (_, client):
        handle = client.get_or_create("sched", ["a"])
        await handle.cron("* * * * *", "m")
        await clock.advance(60)
        assert await handle.fired() == ["m"]
    # Down for about ten minutes: ten ticks were missed; they collapse into one fire.
    clock = MockClock(T0 + 60 + 630)
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (_, client):
        handle = client.get_or_create("sched", ["a"])
        await clock.advance(0)
        assert await handle.fired() == ["m", "m"]
        # The next tick is on the next minute boundary, not in the past.
        assert (await handle.pending())[0][3] == T0 + 720
        await clock.advance(29.9)
        assert await handle.fired() == ["m", "m"]
        await clock.advance(0.1)
        assert await handle.fired() == ["m", "m", "m"]


async def test_scheduled_action_runs_without_connection(driver_factory: DriverFactory) -> None:
    clock = MockClock(T0)
    async with run_actors(Registry([sched_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("sched", ["a"])
        async with handle.connect() as conn:
            await conn.after(1, "from-conn")
            await clock.advance(1)
            assert await conn.fired() == ["from-conn"]
