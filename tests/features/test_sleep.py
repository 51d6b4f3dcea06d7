"""Sleep: idle timeout, waking with state, what keeps an actor awake."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pyrivet import ActorDefinition, ActorOptions, Registry, actor
from pyrivet.storage import ActorStore
from pyrivet.testing import MockClock, run_actors

DriverFactory = Callable[[], ActorStore]


def sleeper_def(log: list[str], **options: Any) -> ActorDefinition[Any]:
    options.setdefault("sleep_timeout", 10.0)
    vars_made: list[int] = []

    def create_vars(c: Any) -> dict[str, Any]:
        vars_made.append(1)
        log.append("create_vars")
        return {"generation": len(vars_made), "gate": asyncio.Event()}

    sleeper = actor(
        "sleeper",
        state={"count": 0},
        create_vars=create_vars,
        options=ActorOptions(**options),
    )

    @sleeper.on_wake
    def on_wake(c: Any) -> None:
        log.append("on_wake")

    @sleeper.on_sleep
    def on_sleep(c: Any) -> None:
        log.append("on_sleep")
        c.state["slept"] = c.state.get("slept", 0) + 1

    @sleeper.action
    def increment(c: Any) -> int:
        c.state["count"] += 1
        return int(c.state["count"])

    @sleeper.action
    def info(c: Any) -> dict[str, Any]:
        return {"state": dict(c.state), "generation": c.vars["generation"]}

    @sleeper.action
    def hold_awake(c: Any) -> None:
        c.wait_until(c.keep_awake(c.vars["gate"].wait()))

    @sleeper.action
    def release(c: Any) -> None:
        c.vars["gate"].set()

    @sleeper.action
    async def wait_gate(c: Any) -> str:
        await c.vars["gate"].wait()
        return "done"

    return sleeper


async def test_sleeps_after_timeout_and_wakes_with_state(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    log: list[str] = []
    sleeper = sleeper_def(log)
    async with run_actors(Registry([sleeper]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("sleeper", ["a"])
        assert await handle.increment() == 1
        assert await handle.increment() == 2
        actor_id = await handle.resolve()
        assert log == ["create_vars", "on_wake"]
        await clock.advance(9.9)
        assert runtime.is_awake(actor_id)
        assert "on_sleep" not in log
        await clock.advance(0.2)
        assert not runtime.is_awake(actor_id)
        assert runtime.awake_count == 0
        assert log == ["create_vars", "on_wake", "on_sleep"]
        # Waking: the state (including on_sleep's change) is back, vars are rebuilt.
        info = await handle.info()
        assert info == {"state": {"count": 2, "slept": 1}, "generation": 2}
        assert runtime.is_awake(actor_id)
        assert log == ["create_vars", "on_wake", "on_sleep", "create_vars", "on_wake"]
        assert await handle.increment() == 3


async def test_activity_resets_idle_timer(driver_factory: DriverFactory, clock: MockClock) -> None:
    sleeper = sleeper_def([])
    async with run_actors(Registry([sleeper]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("sleeper", ["a"])
        await handle.increment()
        actor_id = await handle.resolve()
        for _ in range(5):
            await clock.advance(6)
            await handle.info()  # read-only activity counts too
        assert runtime.is_awake(actor_id)
        await clock.advance(9.9)
        assert runtime.is_awake(actor_id)
        await clock.advance(0.2)
        assert not runtime.is_awake(actor_id)


async def test_running_action_keeps_it_awake(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    sleeper = sleeper_def([], action_timeout=1000.0)
    async with run_actors(Registry([sleeper]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("sleeper", ["a"])
        call = asyncio.ensure_future(handle.wait_gate())
        await clock.advance(0)
        actor_id = await handle.resolve()
        await clock.advance(100)
        assert runtime.is_awake(actor_id)
        assert not call.done()
        await handle.release()
        assert await call == "done"
        await clock.advance(10.1)
        assert not runtime.is_awake(actor_id)


async def test_connection_keeps_it_awake(driver_factory: DriverFactory, clock: MockClock) -> None:
    log: list[str] = []
    sleeper = sleeper_def(log)
    async with run_actors(Registry([sleeper]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("sleeper", ["a"])
        actor_id = await handle.resolve()
        async with handle.connect():
            await clock.advance(1000)
            assert runtime.is_awake(actor_id)
            assert "on_sleep" not in log
        await clock.advance(9.9)
        assert runtime.is_awake(actor_id)
        await clock.advance(0.2)
        assert not runtime.is_awake(actor_id)
        assert log.count("on_sleep") == 1


async def test_keep_awake_keeps_it_awake(driver_factory: DriverFactory, clock: MockClock) -> None:
    sleeper = sleeper_def([])
    async with run_actors(Registry([sleeper]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("sleeper", ["a"])
        await handle.hold_awake()
        actor_id = await handle.resolve()
        await clock.advance(1000)
        assert runtime.is_awake(actor_id)
        await handle.release()
        await clock.advance(9.9)
        assert runtime.is_awake(actor_id)
        await clock.advance(0.2)
        assert not runtime.is_awake(actor_id)


async def test_no_sleep(driver_factory: DriverFactory, clock: MockClock) -> None:
    log: list[str] = []
    sleeper = sleeper_def(log, no_sleep=True)
    async with run_actors(Registry([sleeper]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("sleeper", ["a"])
        await handle.increment()
        actor_id = await handle.resolve()
        await clock.advance(100_000)
        assert runtime.is_awake(actor_id)
        assert "on_sleep" not in log
        assert await handle.info() == {"state": {"count": 1}, "generation": 1}


async def test_explicit_sleep_request(driver_factory: DriverFactory, clock: MockClock) -> None:
    log: list[str] = []
    sleeper = sleeper_def(log)

    @sleeper.action
    def nap(c: Any) -> None:
        c.state["count"] = 100
        c.sleep()

    async with run_actors(Registry([sleeper]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("sleeper", ["a"])
        await handle.nap()
        actor_id = await handle.resolve()
        await clock.advance(0)
        assert not runtime.is_awake(actor_id)
        assert log[-1] == "on_sleep"
        assert (await handle.info())["state"]["count"] == 100


async def test_thousand_actors_all_sleep(driver_factory: DriverFactory, clock: MockClock) -> None:
    sleeper = sleeper_def([])
    async with run_actors(Registry([sleeper]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handles = [client.get_or_create("sleeper", [str(i)]) for i in range(1000)]
        results = await asyncio.gather(*(h.increment() for h in handles))
        assert results == [1] * 1000
        assert runtime.awake_count == 1000
        await clock.advance(9)
        assert runtime.awake_count == 1000
        await clock.advance(1.5)
        assert runtime.awake_count == 0
        # They still have their state.
        assert await handles[123].increment() == 2
        assert runtime.awake_count == 1
