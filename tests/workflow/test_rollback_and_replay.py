"""Rollback checkpoints and step rollbacks, the on_error observer, replay_from."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from pyrivet.errors import (
    EntryInProgressError,
    RollbackCheckpointError,
    RollbackError,
    WorkflowUsageError,
)
from pyrivet.testing import MockClock
from pyrivet.workflow import (
    Loop,
    LoopBreak,
    LoopContinue,
    MemoryStepContext,
    MemoryWorkflowStore,
    SimulatedCrash,
    StepErrorEvent,
    WorkflowContext,
    WorkflowErrorEvent,
    read_history,
    workflow,
)

from .conftest import engine_for

Ctx = WorkflowContext[MemoryStepContext]


def booking_workflow(undone: list[str], calls: Counter[str]) -> Any:
    def book(name: str) -> Any:
        def run(s: MemoryStepContext) -> str:
            calls[name] += 1
            s.state[name] = "booked"
            return f"{name}-ref"

        return run

    async def undo(s: MemoryStepContext, ref: str) -> None:
        undone.append(ref)
        s.state[ref.removesuffix("-ref")] = "cancelled"
        await s.point()

    def pay(s: MemoryStepContext) -> None:
        calls["pay"] += 1
        raise RollbackError("card declined")

    @workflow
    async def wf(ctx: Ctx) -> None:
        await ctx.step("before", book("before"), rollback=None)
        await ctx.rollback_checkpoint("cp")
        await ctx.step("flight", book("flight"), rollback=undo)
        await ctx.step("hotel", book("hotel"), rollback=undo)
        await ctx.step("pay", pay)

    return wf


async def test_rollback_error_undoes_steps_since_checkpoint_in_reverse(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    undone: list[str] = []
    calls: Counter[str] = Counter()
    wf = booking_workflow(undone, calls)
    engine, _ = engine_for(wf, clock, store)
    with pytest.raises(RollbackError, match="card declined"):
        await engine.run()
    assert undone == ["hotel-ref", "flight-ref"]
    assert store.state == {"before": "booked", "flight": "cancelled", "hotel": "cancelled"}
    assert read_history(store.records).state == "failed"
    assert calls["pay"] == 1
    # Running it again replays the failure; nothing is rolled back twice.
    with pytest.raises(RollbackError):
        await engine_for(wf, clock, store)[0].run()
    assert undone == ["hotel-ref", "flight-ref"]
    assert calls == {"before": 1, "flight": 1, "hotel": 1, "pay": 1}


async def test_crash_during_rollback_finishes_it_once(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    undone: list[str] = []
    wf = booking_workflow(undone, Counter())
    engine, host = engine_for(wf, clock, store)
    with pytest.raises(RollbackError):
        await engine.run()
    crash_points = host.point_labels
    # Crash right after the first rollback callback's await point.
    first_undo = crash_points.index("in step hotel")
    for crash_at in (first_undo, first_undo + 2):
        store2 = MemoryWorkflowStore()
        undone.clear()
        crashing, _ = engine_for(wf, clock, store2, crash_at=crash_at)
        with pytest.raises(SimulatedCrash):
            await crashing.run()
        assert read_history(store2.records).state == "rolling_back"
        with pytest.raises(RollbackError):
            await engine_for(wf, clock, store2)[0].run()
        assert store2.state["hotel"] == "cancelled"
        assert store2.state["flight"] == "cancelled"
        # hotel's undo ran twice only when the crash came before its flush.
        assert undone.count("flight-ref") == 1
        assert undone.count("hotel-ref") == (2 if crash_at == first_undo else 1)


async def test_step_with_rollback_needs_a_checkpoint(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    @workflow
    async def wf(ctx: Ctx) -> None:
        await ctx.step("x", lambda s: 1, rollback=lambda s, out: None)

    with pytest.raises(RollbackCheckpointError, match="rollback_checkpoint"):
        await engine_for(wf, clock, store)[0].run()
    assert 'e["x"]' not in store.records


async def test_on_error_sees_each_attempt_and_may_fail_harmlessly(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    events: list[StepErrorEvent | WorkflowErrorEvent] = []

    def observer(c: MemoryStepContext, event: StepErrorEvent | WorkflowErrorEvent) -> None:
        events.append(event)
        c.state["errors"] = len(events)
        raise RuntimeError("observer bug")  # logged, ignored

    attempts: list[int] = []

    def flaky(s: MemoryStepContext) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("first try")
        return "ok"

    @workflow(on_error=observer)
    async def wf(ctx: Ctx) -> str:
        return await ctx.step("flaky", flaky, retry_backoff_base=2.0)

    engine, _ = engine_for(wf, clock, store)
    task = asyncio.ensure_future(engine.run())
    start = clock.now()
    await clock.advance(10)
    assert await task == "ok"
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, StepErrorEvent)
    assert (event.step, event.attempt, event.will_retry) == ("flaky", 1, True)
    assert (event.retry_delay, event.retry_at) == (4.0, start + 4.0)
    assert isinstance(event.error, ValueError)
    assert store.state == {"errors": 1}  # changed state, committed with the next flush


async def test_replay_from_a_step_reruns_it_and_what_followed(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    calls: Counter[str] = Counter()

    def counted(name: str) -> Any:
        def run(s: MemoryStepContext) -> str:
            calls[name] += 1
            return f"{name}{calls[name]}"

        return run

    @workflow
    async def wf(ctx: Ctx) -> list[str]:
        return [
            await ctx.step("a", counted("a")),
            await ctx.step("b", counted("b")),
            await ctx.step("c", counted("c")),
        ]

    engine, _ = engine_for(wf, clock, store)
    assert await engine.run() == ["a1", "b1", "c1"]
    key_b = engine.history().entries[1].key
    await engine.replay_from(key_b)
    assert engine.state == "pending"
    assert [e.name for e in read_history(store.records).entries] == ["a"]
    assert await engine.run() == ["a1", "b2", "c2"]
    fresh, _ = engine_for(wf, clock, store)
    await fresh.replay_from(None)
    assert read_history(store.records).entries == []
    assert await fresh.run() == ["a2", "b3", "c3"]
    with pytest.raises(WorkflowUsageError, match="no workflow history entry has the key"):
        await fresh.replay_from('e["nope"]')


async def test_replay_from_is_refused_while_a_step_runs_and_restarts_a_waiting_run(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    release = asyncio.Event()
    runs: Counter[str] = Counter()

    async def blocking(s: MemoryStepContext) -> str:
        runs["blocking"] += 1
        await release.wait()
        return "done"

    @workflow
    async def wf(ctx: Ctx) -> str:
        await ctx.step("blocking", blocking, timeout=0)
        await ctx.sleep("long", 1000)
        return "end"

    engine, _ = engine_for(wf, clock, store)
    task = asyncio.ensure_future(engine.run())
    await clock.advance(0)
    assert engine.step_in_progress
    with pytest.raises(EntryInProgressError):
        await engine.replay_from(None)
    release.set()
    await clock.advance(0)
    assert engine.state == "sleeping"
    key = engine.history().entries[0].key
    await engine.replay_from(key)  # the run restarts from the top, re-running the step
    await clock.advance(1000)
    assert await task == "end"
    assert runs["blocking"] == 2


async def test_replay_from_restarts_a_run_still_loading_its_history(
    clock: MockClock, store: MemoryWorkflowStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run cancelled by `replay_from` while it waits for its history to load (an
    actor's run task just woken) starts again instead of ending cancelled: the restart
    was only honoured once the run had got past the load."""
    runs: Counter[str] = Counter()

    def counted(s: MemoryStepContext) -> str:
        runs["a"] += 1
        return "a"

    @workflow
    async def wf(ctx: Ctx) -> str:
        return await ctx.step("a", counted)

    engine, host = engine_for(wf, clock, store)
    gate = asyncio.Event()
    load = host.load
    loads = [0]

    async def gated_load() -> Any:
        loads[0] += 1
        if loads[0] == 1:  # the run's own load waits; replay_from's goes through
            await gate.wait()
        return await load()

    monkeypatch.setattr(host, "load", gated_load)
    task = asyncio.ensure_future(engine.run())
    await clock.advance(0)
    assert loads[0] == 1
    await engine.replay_from(None)  # loads the history itself, then cancels the run
    gate.set()
    assert await task == "a"
    assert runs["a"] == 1


async def test_replay_from_an_old_loop_iteration_is_refused(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    async def body(ctx: Ctx, i: int) -> LoopBreak[int] | LoopContinue[int]:
        await ctx.step("s", lambda s: i)
        return Loop.break_(i) if i == 3 else Loop.continue_(i + 1)

    @workflow
    async def wf(ctx: Ctx) -> int:
        return await ctx.loop("l", body, state=0)

    engine, _ = engine_for(wf, clock, store)
    assert await engine.run() == 3
    entries = engine.history().entries
    old = next(e for e in entries if e.location == ("l", 1, "s"))
    with pytest.raises(WorkflowUsageError, match="which is at iteration 3"):
        await engine.replay_from(old.key)
    current = next(e for e in entries if e.location == ("l", 3, "s"))
    await engine.replay_from(current.key)
    assert await engine.run() == 3
