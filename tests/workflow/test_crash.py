"""Crash at every await point: no completed step runs again, none is lost.

The memory host raises `SimulatedCrash` at its N-th await point (before and after each
flush, in each wait, inside step bodies). For every N the run is dropped there and a
new engine over the stored data alone runs the workflow to its end. A step's effect on
state is committed with its history entry, so each step's effect is applied exactly
once, and a step whose completion was flushed before the crash never runs again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from pyrivet.testing import MockClock
from pyrivet.workflow import (
    Loop,
    LoopBreak,
    LoopContinue,
    MemoryStepContext,
    MemoryWorkflowStore,
    SimulatedCrash,
    Workflow,
    WorkflowContext,
    read_history,
    workflow,
)

from .conftest import engine_for

Ctx = WorkflowContext[MemoryStepContext]


def build(calls: Counter[str]) -> Workflow:
    def effect(name: str) -> Any:
        async def run(s: MemoryStepContext) -> str:
            calls[name] += 1
            s.state[name] = s.state.get(name, 0) + 1
            await s.point()
            return name.upper()

        return run

    async def body(ctx: Ctx, i: int) -> LoopBreak[int] | LoopContinue[int]:
        await ctx.step("tick", effect(f"tick{i}"))
        return Loop.break_(i) if i == 2 else Loop.continue_(i + 1)

    @workflow
    async def wf(ctx: Ctx) -> list[Any]:
        a = await ctx.step("a", effect("a"))
        await ctx.sleep("nap", 10)
        looped = await ctx.loop("ticks", body, state=0, history_prune_interval=2, history_size=1)

        async def nap_then_y(c: Ctx) -> str:
            await c.sleep("nap", 0.5)
            return await c.step("y", effect("y"))

        joined = await ctx.join("fan", {"x": lambda c: c.step("x", effect("x")), "y": nap_then_y})
        b = await ctx.step("b", effect("b"))
        return [a, looped, joined, b]

    return wf


EXPECTED = ["A", 2, {"x": "X", "y": "Y"}, "B"]
STEPS = ["a", "tick0", "tick1", "tick2", "x", "y", "b"]


async def run_to_end(
    wf: Workflow, clock: MockClock, store: MemoryWorkflowStore, crash_at: int | None
) -> bool:
    """Run once (maybe crashing); True if it completed."""
    engine, _ = engine_for(wf, clock, store, crash_at=crash_at)
    task = asyncio.ensure_future(engine.run())
    await clock.advance(30)
    try:
        result = await task
    except SimulatedCrash:
        return False
    assert result == EXPECTED
    return True


async def test_crash_at_every_await_point_loses_nothing_and_repeats_nothing(
    clock: MockClock,
) -> None:
    crash_at = 0
    while True:
        calls: Counter[str] = Counter()
        wf = build(calls)
        store = MemoryWorkflowStore()
        if await run_to_end(wf, clock, store, crash_at):
            assert crash_at > 20, "the crash points were never reached"
            return
        completed_before = {
            e.output.lower() if isinstance(e.output, str) else e.name
            for e in read_history(store.records).entries
            if e.kind == "step" and e.status == "completed"
        }
        runs_before = Counter(calls)
        assert await run_to_end(wf, clock, store, None)
        # Each step's effect on the committed state: exactly once.
        assert store.state == dict.fromkeys(STEPS, 1), f"crash at point {crash_at}"
        for name in STEPS:
            reran = calls[name] - runs_before[name]
            if name in completed_before:
                assert reran == 0, f"{name} ran again after crash at point {crash_at}"
            else:
                assert reran <= 1
        crash_at += 1


def build_queue_race(calls: Counter[str]) -> Workflow:
    async def handle(s: MemoryStepContext, body: Any) -> Any:
        calls[f"handle-{body}"] += 1
        s.state.setdefault("handled", []).append(body)
        await s.point()
        return body

    async def wait_message(ctx: Ctx) -> Any:
        message = await ctx.queue.next("m")
        assert message is not None
        return await ctx.step("handle", lambda s: handle(s, message.body))

    async def time_out(ctx: Ctx) -> str:
        await ctx.sleep("t", 1000)
        return "timeout"

    @workflow
    async def wf(ctx: Ctx) -> list[Any]:
        first = await ctx.race("first", {"timeout": time_out, "message": wait_message})
        second = await ctx.try_step("after", lambda s: calls.update(["after"]) or "done")
        return [first.winner, first.value, second.ok]

    return wf


async def test_crash_with_queue_and_race_handles_each_message_once(clock: MockClock) -> None:
    crash_at = 0
    while True:
        calls: Counter[str] = Counter()
        wf = build_queue_race(calls)
        store = MemoryWorkflowStore()
        store.send("m", "hello")
        engine, _ = engine_for(wf, clock, store, crash_at=crash_at)
        try:
            assert await engine.run() == ["message", "hello", True]
            assert crash_at > 5
            return
        except SimulatedCrash:
            pass
        engine, _ = engine_for(wf, clock, store)
        assert await engine.run() == ["message", "hello", True], f"crash at {crash_at}"
        assert store.state == {"handled": ["hello"]}, f"crash at {crash_at}"
        assert store.queue == []
        crash_at += 1
