"""Queue waits through the host, `removed` and `get_version`."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from pyrivet.errors import HistoryDivergedError, WorkflowEvicted, WorkflowUsageError
from pyrivet.testing import MockClock
from pyrivet.workflow import (
    MemoryStepContext,
    MemoryWorkflowStore,
    SimulatedCrash,
    WorkflowContext,
    read_history,
    workflow,
)

from .conftest import engine_for

Ctx = WorkflowContext[MemoryStepContext]


async def test_queue_next_records_the_message_for_replay(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    @workflow
    async def wf(ctx: Ctx) -> list[Any]:
        first = await ctx.queue.next("cmd", names=["cmd"])
        assert first is not None
        await ctx.sleep("pause", 5)
        return [first.id, first.name, first.body]

    store.send("other", "ignored")
    engine, _ = engine_for(wf, clock, store)
    task = asyncio.ensure_future(engine.run())
    await clock.advance(1)
    assert engine.state == "sleeping"  # waiting for a message
    store.send("cmd", {"go": True})
    await clock.advance(5)
    assert await task == [2, "cmd", {"go": True}]
    # Consumed in the flush that recorded it; the other queue is untouched.
    assert [m.name for m in store.queue] == ["other"]
    store.records.pop("meta")
    assert await engine_for(wf, clock, store)[0].run() == [2, "cmd", {"go": True}]


async def test_crash_between_receive_and_record_keeps_the_message(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    @workflow
    async def wf(ctx: Ctx) -> Any:
        message = await ctx.queue.next("cmd")
        assert message is not None
        return message.body

    store.send("cmd", "hello")
    # Points: receive (0), then before the flush recording the message (1).
    engine, _ = engine_for(wf, clock, store, crash_at=1)
    with pytest.raises(SimulatedCrash):
        await engine.run()
    assert [m.body for m in store.queue] == ["hello"]
    assert await engine_for(wf, clock, store)[0].run() == "hello"
    assert store.queue == []


async def test_queue_timeout_is_a_durable_deadline(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    @workflow
    async def wf(ctx: Ctx) -> list[Any]:
        batch = await ctx.queue.next_batch("wait", count=2, timeout=60)
        return [m.body for m in batch]

    engine, host = engine_for(wf, clock, store, evict_sleeps=True)
    with pytest.raises(WorkflowEvicted):
        await engine.run()
    assert host.wake_at == clock.now() + 60
    await clock.advance(60)
    assert await engine_for(wf, clock, store)[0].run() == []


async def test_completable_message_stays_until_completed(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    @workflow
    async def wf(ctx: Ctx) -> int:
        got = await ctx.queue.next_batch("jobs", count=5, completable=True)
        for message in got:
            await message.complete({"done": message.body})
        return len(got)

    first = store.send("jobs", 1)
    store.send("jobs", 2)
    assert await engine_for(wf, clock, store)[0].run() == 2
    assert store.queue == []
    assert store.completions[first] == {"done": 1}


async def test_removed_stands_in_for_deleted_entries(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    @workflow
    async def v1(ctx: Ctx) -> None:
        await ctx.step("old", lambda s: 1)
        await ctx.sleep("wait", 1)

    @workflow
    async def v2(ctx: Ctx) -> str:
        await ctx.removed("old", "step")
        await ctx.sleep("wait", 1)
        return await ctx.step("new", lambda s: "new")

    @workflow
    async def v2_wrong_kind(ctx: Ctx) -> None:
        await ctx.removed("old", "sleep")

    engine, _ = engine_for(v1, clock, store, evict_sleeps=True)
    with pytest.raises(WorkflowEvicted):
        await engine.run()
    with pytest.raises(HistoryDivergedError, match="recorded a step named 'old'"):
        await engine_for(v2_wrong_kind, clock, store)[0].run()
    await clock.advance(1)
    assert await engine_for(v2, clock, store)[0].run() == "new"
    # A fresh workflow of the new code records nothing for the removed entry.
    fresh = MemoryWorkflowStore()
    engine, _ = engine_for(v2, clock, fresh)
    task = asyncio.ensure_future(engine.run())
    await clock.advance(1)
    assert await task == "new"
    assert [e.name for e in read_history(fresh.records).entries] == ["wait", "new"]
    with pytest.raises(WorkflowUsageError, match="kind must be one of"):

        @workflow
        async def bad(ctx: Ctx) -> None:
            await ctx.removed("x", "nonsense")

        await engine_for(bad, clock, MemoryWorkflowStore())[0].run()


async def test_get_version_pins_old_instances_to_1(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    @workflow
    async def v1(ctx: Ctx) -> str:
        await ctx.step("charge", lambda s: "charged")
        await ctx.sleep("wait", 10)
        return await ctx.step("ship", lambda s: "shipped")

    @workflow
    async def v2(ctx: Ctx) -> str:
        version = await ctx.get_version("fraud-check", 2)
        if version >= 2:
            await ctx.step("fraud", lambda s: "ok")
        await ctx.step("charge", lambda s: "charged")
        await ctx.sleep("wait", 10)
        shipped = await ctx.step("ship", lambda s: "shipped")
        return f"v{version} {shipped}"

    old, _ = engine_for(v1, clock, store, evict_sleeps=True)
    with pytest.raises(WorkflowEvicted):
        await old.run()
    await clock.advance(10)
    assert await engine_for(v2, clock, store)[0].run() == "v1 shipped"
    new_store = MemoryWorkflowStore()
    engine, _ = engine_for(v2, clock, new_store)
    task = asyncio.ensure_future(engine.run())
    await clock.advance(10)
    assert await task == "v2 shipped"
    new_store.records.pop("meta")
    assert await engine_for(v2, clock, new_store)[0].run() == "v2 shipped"


async def test_a_context_and_its_queue_make_no_reference_cycle(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    """A context (one per run, loop iteration and branch) is freed when its run ends,
    not left for the garbage collector: ``ctx.queue`` does not keep a cycle alive."""
    seen: list[WorkflowContext[Any]] = []

    @workflow
    async def flow(ctx: WorkflowContext[Any]) -> None:
        seen.append(ctx)
        assert ctx.queue is not None

    await engine_for(flow, clock, store)[0].run()
    ctx = seen[0]
    assert not any(ctx in gc.get_referents(held) for held in gc.get_referents(ctx))
