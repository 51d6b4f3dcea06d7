"""What the engine does when the host fails, and cancellation."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import pytest

from pyrivet.errors import CommitError, WorkflowCancelledError, WorkflowError, WorkflowEvicted
from pyrivet.testing import MockClock
from pyrivet.workflow import (
    MemoryStepContext,
    MemoryWorkflowHost,
    MemoryWorkflowStore,
    WorkflowContext,
    WorkflowEngine,
    Writes,
    read_history,
    workflow,
)

from .conftest import engine_for

Ctx = WorkflowContext[MemoryStepContext]


class FailingHost(MemoryWorkflowHost):
    """Its flush number ``fail_at`` (0-based) raises, writing nothing."""

    def __init__(self, clock: MockClock, store: MemoryWorkflowStore, fail_at: int) -> None:
        super().__init__(clock, store)
        self.fail_at = fail_at
        self.flush_calls = 0

    async def flush(self, writes: Writes) -> None:
        index = self.flush_calls
        self.flush_calls += 1
        if index == self.fail_at:
            raise CommitError("disk on fire")
        await super().flush(writes)


async def test_failed_flush_means_the_step_did_not_happen(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    calls: Counter[str] = Counter()

    def step(name: str) -> Callable[[MemoryStepContext], str]:
        def run(s: MemoryStepContext) -> str:
            calls[name] += 1
            s.state[name] = s.state.get(name, 0) + 1
            return name

        return run

    swallowed: list[BaseException] = []

    @workflow
    async def wf(ctx: Ctx) -> str:
        await ctx.step("a", step("a"))
        try:
            await ctx.step("b", step("b"))
        except CommitError as exc:
            # Workflow code that swallows the host's failure cannot go on.
            swallowed.append(exc)
        return await ctx.step("c", step("c"))

    host = FailingHost(clock, store, fail_at=1)
    engine = WorkflowEngine(wf, host)
    with pytest.raises(WorkflowError, match="writing its history failed"):
        await engine.run()
    assert len(swallowed) == 1
    assert store.state == {"a": 1}
    assert [e.name for e in read_history(store.records).entries] == ["a"]
    # The same engine reloads from storage; the new host's working state is the stored one.
    engine2, _ = engine_for(wf, clock, store)
    assert await engine2.run() == "c"
    assert store.state == {"a": 1, "b": 1, "c": 1}
    assert calls == {"a": 1, "b": 2, "c": 1}


async def test_flush_failure_propagates_unchanged(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    @workflow
    async def wf(ctx: Ctx) -> int:
        return await ctx.step("a", lambda s: 1)

    engine = WorkflowEngine(wf, FailingHost(clock, store, fail_at=0))
    with pytest.raises(CommitError, match="disk on fire"):
        await engine.run()
    assert store.records == {}
    # The next run reloads and succeeds (the host's second flush works).
    assert await engine.run() == 1


async def test_cancel_stops_the_run_and_sticks_until_reset(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    @workflow
    async def wf(ctx: Ctx) -> str:
        await ctx.step("a", lambda s: 1)
        await ctx.sleep("long", 100)
        return "end"

    engine, _ = engine_for(wf, clock, store)
    task = asyncio.ensure_future(engine.run())
    await clock.advance(1)
    await engine.cancel()
    with pytest.raises(WorkflowCancelledError):
        await task
    assert read_history(store.records).state == "cancelled"
    again, _ = engine_for(wf, clock, store)
    with pytest.raises(WorkflowCancelledError, match="replay_from"):
        await again.run()
    await again.replay_from(None)
    task = asyncio.ensure_future(again.run())
    await clock.advance(100)
    assert await task == "end"


async def test_step_windows_enclose_each_attempt_and_its_flush(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    tries: Counter[str] = Counter()

    def flaky(s: MemoryStepContext) -> str:
        tries["flaky"] += 1
        if tries["flaky"] == 1:
            raise ValueError("again")
        return "ok"

    async def branch(ctx: Ctx, name: str) -> str:
        return await ctx.step(name, lambda s: name)

    @workflow
    async def wf(ctx: Ctx) -> None:
        await ctx.step("flaky", flaky, retry_backoff_base=0)
        await ctx.join("j", {"x": lambda c: branch(c, "x"), "y": lambda c: branch(c, "y")})

    engine, host = engine_for(wf, clock, store)
    await engine.run()
    windows = host.step_windows
    # Windows never overlap, and each attempt's outcome was flushed inside its window.
    assert [(kind, name) for kind, name, _ in windows] == [
        ("started", "flaky"),
        ("finished", "flaky"),
        ("started", "flaky"),
        ("finished", "flaky"),
        ("started", "x"),
        ("finished", "x"),
        ("started", "y"),
        ("finished", "y"),
    ]
    for start, end in zip(windows[::2], windows[1::2], strict=True):
        assert end[2] == start[2] + 1


async def test_one_run_at_a_time_and_is_evicted(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    seen: list[bool] = []

    async def watcher(ctx: Ctx) -> None:
        await ctx.sleep("w", 10)

    async def observer(ctx: Ctx) -> None:
        try:
            await ctx.sleep("o", 10)
        finally:
            seen.append(ctx.is_evicted())

    @workflow
    async def wf(ctx: Ctx) -> None:
        seen.append(ctx.is_evicted())
        await ctx.join("j", {"w": watcher, "o": observer})

    engine, _ = engine_for(wf, clock, store)
    task = asyncio.ensure_future(engine.run())
    await clock.advance(1)
    with pytest.raises(WorkflowError, match="already running"):
        await engine.run()
    engine.evict()
    with pytest.raises(WorkflowEvicted):
        await task
    assert seen == [False, True]
