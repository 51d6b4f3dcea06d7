"""Loops with durable state and history pruning; sleep and sleep_until with eviction."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from pyrivet.errors import WorkflowEvicted, WorkflowUsageError
from pyrivet.testing import MockClock
from pyrivet.workflow import (
    Loop,
    LoopBreak,
    LoopContinue,
    MemoryStepContext,
    MemoryWorkflowStore,
    SimulatedCrash,
    WorkflowContext,
    read_history,
    workflow,
)

from .conftest import engine_for

Ctx = WorkflowContext[MemoryStepContext]


async def test_loop_resumes_at_its_iteration_with_its_state(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    calls: Counter[int] = Counter()

    async def body(ctx: Ctx, total: int) -> LoopBreak[int] | LoopContinue[int]:
        async def add(s: MemoryStepContext) -> int:
            calls[total] += 1
            s.state["sum"] = total + 1
            await s.point()
            return total + 1

        new_total = await ctx.step("add", add)
        if new_total == 5:
            return Loop.break_(new_total * 10)
        return Loop.continue_(new_total)

    @workflow
    async def wf(ctx: Ctx) -> int:
        return await ctx.loop("count", body, state=0)

    # Crash inside the body of the fourth iteration's step (await points: 3 per
    # completed iteration: the step's own point, before and after its flush).
    engine, _ = engine_for(wf, clock, store, crash_at=9)
    with pytest.raises(SimulatedCrash):
        await engine.run()
    loop = next(e for e in read_history(store.records).entries if e.kind == "loop")
    assert (loop.iteration, loop.state) == (2, 2)  # iteration 3's start is not flushed yet
    engine, _ = engine_for(wf, clock, store)
    assert await engine.run() == 50
    assert store.state == {"sum": 5}
    # Iterations whose step completed durably never ran again; the crashed one re-ran.
    assert calls == {0: 1, 1: 1, 2: 1, 3: 2, 4: 1}


async def test_loop_prunes_old_iterations(clock: MockClock, store: MemoryWorkflowStore) -> None:
    async def body(ctx: Ctx, i: int) -> LoopBreak[int] | LoopContinue[int]:
        await ctx.step("work", lambda s: i)
        return Loop.break_(i) if i == 24 else Loop.continue_(i + 1)

    @workflow
    async def wf(ctx: Ctx) -> int:
        return await ctx.loop("l", body, state=0, history_prune_interval=10, history_size=3)

    engine, _ = engine_for(wf, clock, store)
    assert await engine.run() == 24
    iterations = sorted(
        e.location[1] for e in read_history(store.records).entries if e.name == "work"
    )
    # Pruned at iteration 20, keeping 17..19; 20..24 came after.
    assert iterations == list(range(17, 25))


async def test_loop_body_must_return_loop_control(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    async def body(ctx: Ctx, state: None) -> LoopBreak[int]:
        return 5  # type: ignore[return-value]

    @workflow
    async def wf(ctx: Ctx) -> int:
        return await ctx.loop("l", body)

    with pytest.raises(WorkflowUsageError, match=r"return Loop.break_\(value\)"):
        await engine_for(wf, clock, store)[0].run()


async def test_none_continues_with_same_state(clock: MockClock, store: MemoryWorkflowStore) -> None:
    seen: list[str] = []

    async def body(ctx: Ctx, state: str) -> LoopBreak[int] | None:
        seen.append(state)
        return Loop.break_(len(seen)) if len(seen) == 3 else None

    @workflow
    async def wf(ctx: Ctx) -> int:
        return await ctx.loop("l", body, state="same")

    assert await engine_for(wf, clock, store)[0].run() == 3
    assert seen == ["same"] * 3


async def test_sleep_until_with_eviction_wakes_at_the_recorded_deadline(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    target = clock.now() + 3600
    ran: list[float] = []

    @workflow
    async def wf(ctx: Ctx) -> float:
        await ctx.sleep_until("until", target)
        await ctx.sleep("then", 30)

        def after(s: MemoryStepContext) -> float:
            ran.append(clock.now())
            return clock.now()

        return await ctx.step("after", after)

    engine, host = engine_for(wf, clock, store, evict_sleeps=True)
    with pytest.raises(WorkflowEvicted):
        await engine.run()
    assert host.wake_at == target
    await clock.advance(100)  # woken early (e.g. by a request): it sleeps again
    engine, host = engine_for(wf, clock, store, evict_sleeps=True)
    with pytest.raises(WorkflowEvicted):
        await engine.run()
    assert host.wake_at == target
    await clock.advance(3500)
    engine, host = engine_for(wf, clock, store, evict_sleeps=True)
    with pytest.raises(WorkflowEvicted):
        await engine.run()
    # The second sleep's deadline counts from when it first ran, and is now recorded.
    assert host.wake_at == target + 30
    await clock.advance(30)
    engine, _ = engine_for(wf, clock, store, evict_sleeps=True)
    assert await engine.run() == target + 30
    assert ran == [target + 30]


async def test_in_process_sleep_and_evict(clock: MockClock, store: MemoryWorkflowStore) -> None:
    @workflow
    async def wf(ctx: Ctx) -> str:
        await ctx.sleep("a", 10)
        return "woke"

    engine, _ = engine_for(wf, clock, store)
    task = asyncio.ensure_future(engine.run())
    await clock.advance(5)
    engine.evict()
    with pytest.raises(WorkflowEvicted):
        await task
    assert read_history(store.records).state == "sleeping"
    engine2, _ = engine_for(wf, clock, store)
    task2 = asyncio.ensure_future(engine2.run())
    await clock.advance(4)
    assert not task2.done()
    await clock.advance(1)
    assert await task2 == "woke"


async def test_bad_durations_are_refused(clock: MockClock, store: MemoryWorkflowStore) -> None:
    @workflow
    async def wf(ctx: Ctx) -> None:
        await ctx.sleep("a", -1)

    with pytest.raises(WorkflowUsageError, match="finite number of seconds >= 0"):
        await engine_for(wf, clock, store)[0].run()
    assert 'e["a"]' not in store.records
