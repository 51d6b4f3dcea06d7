"""Steps: recording and replay, retries with deterministic backoff, timeouts, critical
errors, workflow states, the history read API, divergence and misuse."""

from __future__ import annotations

import asyncio
import enum
import gc
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from pyrivet.errors import (
    CriticalError,
    HistoryDivergedError,
    StepExhaustedError,
    StepTimeoutError,
    WorkflowEvicted,
    WorkflowUsageError,
)
from pyrivet.storage._base import CommitRecord, HistoryEntry
from pyrivet.testing import MockClock
from pyrivet.workflow import (
    MemoryStepContext,
    MemoryWorkflowStore,
    StepErrorEvent,
    WorkflowContext,
    WorkflowErrorEvent,
    read_history,
    workflow,
)
from pyrivet.workflow._history import History
from pyrivet.workflow._records import META_KEY, EntryRecord, encode_record, entry_key

from .conftest import engine_for

Ctx = WorkflowContext[MemoryStepContext]


def counting(calls: Counter[str]) -> Callable[[str], Callable[[MemoryStepContext], str]]:
    """``count(name)``: a step callback that counts its runs in ``calls``, returns name."""

    def count(name: str) -> Callable[[MemoryStepContext], str]:
        def run(s: MemoryStepContext) -> str:
            calls[name] += 1
            return name

        return run

    return count


async def test_steps_run_once_and_replay_returns_recorded_outputs(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    calls: Counter[str] = Counter()

    async def load(s: MemoryStepContext) -> dict[str, Any]:
        calls["load"] += 1
        s.state["loaded"] = True
        return {"items": (1, 2)}

    def total(s: MemoryStepContext) -> int:
        calls["total"] += 1
        return 3

    @workflow
    async def wf(ctx: Ctx) -> list[Any]:
        order = await ctx.step("load", load)
        n = await ctx.step("total", total)
        return [order, n]

    engine, _ = engine_for(wf, clock, store)
    # The live result is already the stored form: the tuple comes back as a list.
    assert await engine.run() == [{"items": [1, 2]}, 3]
    assert engine.state == "completed"
    assert store.state == {"loaded": True}
    again, _ = engine_for(wf, clock, store)
    assert await again.run() == [{"items": [1, 2]}, 3]
    assert calls == {"load": 1, "total": 1}


async def test_replay_after_eviction_does_not_rerun_completed_steps(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    calls: Counter[str] = Counter()

    count = counting(calls)

    @workflow
    async def wf(ctx: Ctx) -> str:
        await ctx.step("a", count("a"))
        await ctx.sleep("nap", 60)
        return await ctx.step("b", count("b"))

    engine, host = engine_for(wf, clock, store, evict_sleeps=True)
    with pytest.raises(WorkflowEvicted):
        await engine.run()
    assert engine.state == "sleeping"
    assert read_history(store.records).state == "sleeping"
    assert host.wake_at == clock.now() + 60
    await clock.advance(60)
    engine, _ = engine_for(wf, clock, store, evict_sleeps=True)
    assert await engine.run() == "b"
    assert calls == {"a": 1, "b": 1}


async def test_retries_wait_deterministic_backoff_then_succeed(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    attempts_at: list[float] = []

    def flaky(s: MemoryStepContext) -> str:
        attempts_at.append(clock.now())
        if len(attempts_at) < 3:
            raise ValueError("not yet")
        return "ok"

    @workflow
    async def wf(ctx: Ctx) -> str:
        return await ctx.step("flaky", flaky, retry_backoff_base=1.0, retry_backoff_max=100.0)

    engine, _ = engine_for(wf, clock, store)
    task = asyncio.ensure_future(engine.run())
    await clock.advance(10)
    assert await task == "ok"
    start = attempts_at[0]
    # min(max, base * 2**attempts) after failed attempt number `attempts`.
    assert [t - start for t in attempts_at] == [0.0, 2.0, 6.0]
    entry = engine.history().entries[0]
    assert (entry.status, entry.attempts, entry.error) == ("completed", 3, None)


async def test_retry_backoff_survives_a_restart(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    attempts_at: list[float] = []

    def failing(s: MemoryStepContext) -> str:
        attempts_at.append(clock.now())
        if len(attempts_at) < 2:
            raise ValueError("boom")
        return "done"

    @workflow
    async def wf(ctx: Ctx) -> str:
        return await ctx.step("s", failing, retry_backoff_base=5.0)

    engine, host = engine_for(wf, clock, store, evict_sleeps=True)
    with pytest.raises(WorkflowEvicted):
        await engine.run()
    record = read_history(store.records).entries[0]
    assert (record.status, record.attempts, record.error) == ("failed", 1, "ValueError: boom")
    assert host.wake_at == attempts_at[0] + 10.0
    await clock.advance(4)  # a restart before the retry is due waits for the same instant
    engine, host = engine_for(wf, clock, store, evict_sleeps=True)
    with pytest.raises(WorkflowEvicted):
        await engine.run()
    assert host.wake_at == attempts_at[0] + 10.0
    assert len(attempts_at) == 1
    await clock.advance(6)
    engine, _ = engine_for(wf, clock, store)
    assert await engine.run() == "done"
    assert attempts_at[1] - attempts_at[0] == 10.0


async def test_exhausted_step_fails_workflow_and_stays_exhausted(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    calls: Counter[str] = Counter()
    events: list[StepErrorEvent | WorkflowErrorEvent] = []

    def broken(s: MemoryStepContext) -> None:
        calls["broken"] += 1
        raise RuntimeError("disk full")

    async def on_error(c: Any, event: StepErrorEvent | WorkflowErrorEvent) -> None:
        events.append(event)

    @workflow(on_error=on_error)
    async def wf(ctx: Ctx) -> None:
        await ctx.step("broken", broken, max_retries=2, retry_backoff_base=0.0)

    engine, _ = engine_for(wf, clock, store)
    with pytest.raises(StepExhaustedError) as caught:
        await engine.run()
    assert (caught.value.step, caught.value.attempts) == ("broken", 3)
    assert "RuntimeError: disk full" in str(caught.value)
    assert calls["broken"] == 3
    assert engine.state == "failed"
    stored = read_history(store.records)
    assert stored.state == "failed"
    assert (stored.entries[0].status, stored.entries[0].error_kind) == ("exhausted", "exhausted")
    step_events = [e for e in events if isinstance(e, StepErrorEvent)]
    assert [(e.attempt, e.will_retry) for e in step_events] == [(1, True), (2, True), (3, False)]
    assert isinstance(events[-1], WorkflowErrorEvent)
    # A restart replays the failure without running the step again, and reports nothing.
    events.clear()
    again, _ = engine_for(wf, clock, store)
    with pytest.raises(StepExhaustedError):
        await again.run()
    assert calls["broken"] == 3
    assert [type(e) for e in events] == [WorkflowErrorEvent]


async def test_critical_error_is_not_retried(clock: MockClock, store: MemoryWorkflowStore) -> None:
    calls: Counter[str] = Counter()

    def refuse(s: MemoryStepContext) -> None:
        calls["refuse"] += 1
        raise CriticalError("no such customer")

    @workflow
    async def wf(ctx: Ctx) -> None:
        await ctx.step("refuse", refuse)

    engine, _ = engine_for(wf, clock, store)
    with pytest.raises(CriticalError, match="no such customer") as caught:
        await engine.run()
    assert caught.value.step == "refuse"
    assert calls["refuse"] == 1
    assert engine.history().entries[0].error_kind == "critical"


async def test_timeout_fails_the_step_unless_retry_on_timeout(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    async def slow(s: MemoryStepContext) -> str:
        await clock.sleep(10)
        return "late"

    @workflow
    async def wf(ctx: Ctx) -> str:
        return await ctx.step("slow", slow, timeout=5)

    engine, _ = engine_for(wf, clock, store)
    task = asyncio.ensure_future(engine.run())
    await clock.advance(20)
    with pytest.raises(StepTimeoutError) as caught:
        await task
    assert caught.value.attempts == 1

    tries: list[float] = []

    async def slow_then_fast(s: MemoryStepContext) -> str:
        tries.append(clock.now())
        if len(tries) == 1:
            await clock.sleep(10)
        return "ok"

    @workflow
    async def wf2(ctx: Ctx) -> str:
        return await ctx.step("s", slow_then_fast, timeout=5, retry_on_timeout=True)

    engine2, _ = engine_for(wf2, clock, MemoryWorkflowStore())
    task2 = asyncio.ensure_future(engine2.run())
    await clock.advance(20)
    assert await task2 == "ok"
    assert len(tries) == 2


async def test_history_read_api_lists_entries_in_order(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    @workflow
    async def wf(ctx: Ctx) -> str:
        await ctx.step("first", lambda s: 1)
        await ctx.sleep("wait", 5)
        await ctx.step("second", lambda s: {"x": 2})
        return "end"

    engine, _ = engine_for(wf, clock, store)
    states = [engine.state]
    task = asyncio.ensure_future(engine.run())
    await clock.advance(0)
    states.append(engine.state)
    assert states == ["pending", "sleeping"]
    await clock.advance(5)
    assert await task == "end"
    view = engine.history()
    assert view.state == "completed"
    assert view.output == "end"
    assert [(e.name, e.kind, e.status, e.output) for e in view.entries] == [
        ("first", "step", "completed", 1),
        ("wait", "sleep", "completed", None),
        ("second", "step", "completed", {"x": 2}),
    ]
    assert view.entries[1].deadline == clock.now()
    assert read_history(store.records) == view


async def test_divergence_names_the_step_and_changes_nothing(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    @workflow
    async def v1(ctx: Ctx) -> None:
        await ctx.step("a", lambda s: 1)
        await ctx.step("b", lambda s: 2)

    @workflow
    async def v2_other_name(ctx: Ctx) -> None:
        await ctx.step("a", lambda s: 1)
        await ctx.step("c", lambda s: 3)

    @workflow
    async def v3_other_kind(ctx: Ctx) -> None:
        await ctx.step("a", lambda s: 1)
        await ctx.sleep("b", 1)

    @workflow
    async def v4_dropped(ctx: Ctx) -> None:
        await ctx.step("a", lambda s: 1)

    engine, _ = engine_for(v1, clock, store)
    await engine.run()
    # A completed workflow returns its output without running: take the history of one
    # that crashed after its last step.
    store.records.pop("meta")
    before = dict(store.records)
    with pytest.raises(HistoryDivergedError, match=r"step 'b' next .* runs step 'c'") as caught:
        await engine_for(v2_other_name, clock, store)[0].run()
    assert caught.value.entry == "c"
    assert "ctx.removed('b', 'step')" in str(caught.value)
    with pytest.raises(
        HistoryDivergedError, match="recorded a step named 'b' there, the code now runs a sleep"
    ):
        await engine_for(v3_other_kind, clock, store)[0].run()
    with pytest.raises(
        HistoryDivergedError, match="has step 'b' in the workflow, which the code no longer"
    ):
        await engine_for(v4_dropped, clock, store)[0].run()
    assert store.records == before
    # The matching code still runs it to completion: nothing was lost.
    await engine_for(v1, clock, store)[0].run()
    assert read_history(store.records).state == "completed"


async def test_orchestration_context_refuses_state_and_side_effects(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    seen: list[str] = []

    @workflow
    async def wf(ctx: Ctx) -> None:
        for name in ("state", "vars", "kv", "broadcast", "db", "client", "destroy"):
            try:
                getattr(ctx, name)
            except WorkflowUsageError as exc:
                seen.append(str(exc))
        try:
            ctx.queue.send("jobs", {})
        except WorkflowUsageError as exc:
            seen.append(str(exc))

        async def nested(s: MemoryStepContext) -> None:
            await ctx.step("inner", lambda s2: 1)

        await ctx.step("outer", nested, max_retries=0)

    engine, _ = engine_for(wf, clock, store)
    with pytest.raises(StepExhaustedError, match="inside step 'outer'"):
        await engine.run()
    assert len(seen) == 8
    assert "ctx.state is only available inside workflow steps" in seen[0]
    assert "ctx.queue.send is only available inside workflow steps" in seen[-1]


async def test_bad_input_gets_clear_errors(clock: MockClock, store: MemoryWorkflowStore) -> None:
    @workflow
    async def dup(ctx: Ctx) -> None:
        await ctx.step("x", lambda s: 1)
        await ctx.step("x", lambda s: 2)

    engine, _ = engine_for(dup, clock, store)
    with pytest.raises(WorkflowUsageError, match="'x' is used twice in the workflow"):
        await engine.run()
    # Misuse is a bug in the code, not a failure of the workflow: nothing is recorded.
    assert engine.state == "failed"
    assert read_history(store.records).state == "running"

    @workflow
    async def negative(ctx: Ctx) -> None:
        await ctx.step("y", lambda s: 1, max_retries=-1)

    with pytest.raises(WorkflowUsageError, match="max_retries must be >= 0"):
        await engine_for(negative, clock, MemoryWorkflowStore())[0].run()

    @workflow
    async def unencodable(ctx: Ctx) -> None:
        await ctx.step("z", lambda s: object())

    with pytest.raises(CriticalError, match="cannot encode the output of workflow step 'z'"):
        await engine_for(unencodable, clock, MemoryWorkflowStore())[0].run()

    with pytest.raises(WorkflowUsageError, match="takes a Workflow"):
        engine_for(dup.fn, clock, MemoryWorkflowStore())  # type: ignore[arg-type]


async def test_stored_record_from_newer_format_is_refused(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    import msgspec

    store.records["meta"] = msgspec.msgpack.encode({"v": 99, "state": "running"})

    @workflow
    async def wf(ctx: Ctx) -> None:
        return None

    with pytest.raises(Exception, match="format version 99, newer than this pyrivet reads"):
        await engine_for(wf, clock, store)[0].run()


async def test_ephemeral_step_is_written_with_the_next_flush(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    calls: Counter[str] = Counter()

    count = counting(calls)

    @workflow
    async def wf(ctx: Ctx) -> str:
        await ctx.step("cheap", count("cheap"), ephemeral=True)
        await ctx.sleep("nap", 5)
        return await ctx.step("last", count("last"))

    engine, _ = engine_for(wf, clock, store, evict_sleeps=True)
    flushes_before = store.flushes
    with pytest.raises(WorkflowEvicted):
        await engine.run()
    # One flush carried both the ephemeral step and the sleep's deadline.
    assert store.flushes - flushes_before == 1
    assert [e.name for e in read_history(store.records).entries] == ["cheap", "nap"]
    await clock.advance(5)
    assert await engine_for(wf, clock, store)[0].run() == "last"
    assert calls == {"cheap": 1, "last": 1}


async def test_a_step_returns_its_stored_form_live_as_on_replay(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    """Plain scalars come back as they are; anything else (an int subclass such as an
    IntEnum, a tuple) comes back decoded from what was stored, live and on replay."""

    class Level(enum.IntEnum):
        HIGH = 2

    def nothing(s: MemoryStepContext) -> Any:
        return None

    @workflow
    async def flow(ctx: Ctx) -> list[Any]:
        outputs = [
            await ctx.step("int", lambda s: 7),
            await ctx.step("level", lambda s: Level.HIGH),
            await ctx.step("pair", lambda s: (1, "a")),
            await ctx.step("none", nothing),
        ]
        return [(type(o).__name__, o) for o in outputs]

    expected = [("int", 7), ("int", 2), ("list", [1, "a"]), ("NoneType", None)]
    live = await engine_for(flow, clock, store)[0].run()
    assert live == [list(pair) for pair in expected]
    assert await engine_for(flow, clock, store)[0].run() == live


def test_history_and_commit_records_are_not_tracked_by_the_collector() -> None:
    # A workflow keeps one entry per step for its whole run, and every commit makes a
    # record and a history entry alive until it settles: untracked, no collection walks
    # them (they can be part of no reference cycle).
    entry = EntryRecord(kind="step", location=("a",), seq=0, errors={"b": "x"})
    event = HistoryEntry("actor", 1, 0, "workflow", "a", None, None, b"\x80", b"\x90")
    record = CommitRecord("actor", 1, None, b"\x80", event=event, kv_puts=[(b"k", b"v")])
    assert not any(gc.is_tracked(r) for r in (entry, event, record))


def test_take_with_writes_the_record_and_takes_the_queued_writes() -> None:
    history = History({})
    first = history.new_entry("step", ("a",))
    history.write(first)
    history.set_state("running")  # the meta record changed too
    second = history.new_entry("step", ("b",))
    second.status = "completed"
    writes = history.take_with(second)
    assert set(writes) == {entry_key(("a",)), entry_key(("b",)), META_KEY}
    assert writes[entry_key(("b",))] == encode_record(second)
    assert history.take_writes() == {}  # the queue is empty, the meta clean
    assert history.by_location[("b",)] is second
