"""Memory: what an awake actor keeps, and that a sleeping one keeps nothing."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable
from typing import Any

from pyrivet import ActorOptions, Registry, actor
from pyrivet.storage import ActorStore
from pyrivet.testing import MockClock, run_actors

DriverFactory = Callable[[], ActorStore]

counter = actor("counter", state={"count": 0}, options=ActorOptions(sleep_timeout=10.0))


@counter.action
def increment(c: Any) -> int:
    c.state["count"] += 1
    return int(c.state["count"])


def _instances_of(actor_ids: set[str]) -> list[Any]:
    from pyrivet._runtime.instance import ActorInstance

    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, ActorInstance) and o.actor_id in actor_ids]


async def test_an_actor_put_to_sleep_is_not_kept_by_the_idle_timer(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([counter]), storage=driver_factory(), clock=clock) as (rt, cl):
        handles = [cl.get_or_create("counter", [f"k{i}"]) for i in range(40)]
        await asyncio.gather(*(h.increment() for h in handles))
        ids = {await h.resolve() for h in handles}
        idle = rt._services.idle
        assert len(idle) == 40  # all idle, waiting for their timeout
        await asyncio.gather(*(rt.sleep(i) for i in ids))
        assert len(idle) == 0 and idle.bucket_count == 0
        assert _instances_of(ids) == []
        # They wake again and go back to the timer.
        assert await handles[0].increment() == 2
        assert len(idle) == 1


async def test_work_moves_an_actor_to_a_later_deadline(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([counter]), storage=driver_factory(), clock=clock) as (rt, cl):
        handle = cl.get_or_create("counter", ["a"])
        await handle.increment()
        actor_id = await handle.resolve()
        for _ in range(3):
            await clock.advance(6)
            await handle.increment()
        assert len(rt._services.idle) == 1
        await clock.advance(9.9)
        assert rt.is_awake(actor_id)
        await clock.advance(0.2)
        assert not rt.is_awake(actor_id)
        assert len(rt._services.idle) == 0


async def test_the_table_of_awake_actors_shrinks_after_they_sleep(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([counter]), storage=driver_factory(), clock=clock) as (rt, cl):
        handles = [cl.get_or_create("counter", [f"k{i}"]) for i in range(1500)]
        await asyncio.gather(*(h.increment() for h in handles))
        assert rt.awake_count == 1500
        peak = sys.getsizeof(rt._instances)
        survivors = handles[:10]
        ids = [await h.resolve() for h in handles[10:]]
        await asyncio.gather(*(rt.sleep(i) for i in ids))
        assert rt.awake_count == 10
        assert sys.getsizeof(rt._instances) * 4 < peak
        assert [await h.increment() for h in survivors] == [2] * 10


keyed = actor("keyed", state={"n": 0})


@keyed.action
def key_of(c: Any) -> list[Any]:
    key = c.key
    return [type(key).__name__, list(key)]


async def test_the_key_is_a_tuple_whatever_its_length(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([keyed]), storage=driver_factory(), clock=clock) as (rt, cl):
        for key in ([], ["a"], ["a", "b"]):
            handle = cl.get_or_create("keyed", key)
            assert await handle.key_of() == ["tuple", key]
            await rt.sleep(await handle.resolve())
            assert await handle.key_of() == ["tuple", key]  # woken from storage


async def test_an_idle_actor_keeps_no_commit_bookkeeping(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([counter]), storage=driver_factory(), clock=clock) as (rt, cl):
        handle = cl.get_or_create("counter", ["a"])
        assert [await handle.increment() for _ in range(3)] == [1, 2, 3]
        inst = rt._instances[await handle.resolve()]
        journal = inst.journal
        assert journal.idle and journal.pending is None and inst.life is None
        assert journal.durable_seq == journal.seq == 4  # the creation and three actions
        assert journal.durable_state == journal.saved_state
