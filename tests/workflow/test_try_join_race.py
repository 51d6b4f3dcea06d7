"""try_step, try_ blocks, join and race: outcomes recorded and replayed."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from pyrivet.errors import CriticalError, JoinError, RaceError, StepExhaustedError
from pyrivet.testing import MockClock
from pyrivet.workflow import (
    Failure,
    MemoryStepContext,
    MemoryWorkflowStore,
    Ok,
    WorkflowContext,
    read_history,
    workflow,
)
from pyrivet.workflow._core import StepTurn

from .conftest import engine_for

Ctx = WorkflowContext[MemoryStepContext]


def critical(s: MemoryStepContext) -> None:
    raise CriticalError("bad card")


async def test_try_step_returns_failure_and_replays_it(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    calls: Counter[str] = Counter()

    def counted(s: MemoryStepContext) -> None:
        calls["c"] += 1
        critical(s)

    @workflow
    async def wf(ctx: Ctx) -> list[Any]:
        ok = await ctx.try_step("fine", lambda s: 7)
        bad = await ctx.try_step("bad", counted)
        return [ok, bad]

    first = await engine_for(wf, clock, store)[0].run()
    expected = [Ok(7), Failure("critical", "bad", 1, "CriticalError: bad card")]
    # The workflow's output is its stored form; compare the live values.
    assert first == [
        {"value": 7, "ok": True},
        {
            "kind": "critical",
            "step": "bad",
            "attempts": 1,
            "error": "CriticalError: bad card",
            "ok": False,
        },
    ]
    store.records.pop("meta")
    out: list[Any] = []

    @workflow
    async def wf_capture(ctx: Ctx) -> None:
        out.append(await ctx.try_step("fine", lambda s: 7))
        out.append(await ctx.try_step("bad", counted))

    await engine_for(wf_capture, clock, store)[0].run()
    assert out == expected
    assert calls["c"] == 1


async def test_try_step_rethrows_kinds_it_does_not_catch(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    @workflow
    async def wf(ctx: Ctx) -> None:
        await ctx.try_step("bad", critical, catch=["exhausted"])

    with pytest.raises(CriticalError):
        await engine_for(wf, clock, store)[0].run()


async def test_try_block_catches_step_failure_and_records_it(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    calls: Counter[str] = Counter()
    results: list[Any] = []

    def failing(s: MemoryStepContext) -> None:
        calls["f"] += 1
        raise ValueError("nope")

    async def block(ctx: Ctx) -> str:
        await ctx.step("first", lambda s: 1)
        await ctx.step("failing", failing, max_retries=1, retry_backoff_base=0)
        return "unreached"

    @workflow
    async def wf(ctx: Ctx) -> None:
        results.append(await ctx.try_("block", block))
        results.append(await ctx.try_("fine", lambda c: c.step("x", lambda s: "x")))

    await engine_for(wf, clock, store)[0].run()
    failure = results[0]
    assert isinstance(failure, Failure)
    assert (failure.kind, failure.step, failure.attempts) == ("exhausted", "failing", 2)
    assert results[1] == Ok("x")
    store.records.pop("meta")
    results.clear()
    await engine_for(wf, clock, store)[0].run()
    assert results == [failure, Ok("x")]
    assert calls["f"] == 2


async def test_join_runs_branches_concurrently_and_aggregates_errors(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    order: list[str] = []

    async def slow(ctx: Ctx) -> str:
        await ctx.sleep("wait", 10)
        order.append("slow")
        return "s"

    async def fast(ctx: Ctx) -> str:
        order.append("fast")
        return await ctx.step("f", lambda s: "f")

    @workflow
    async def wf(ctx: Ctx) -> dict[str, Any]:
        return await ctx.join("both", {"slow": slow, "fast": fast})

    engine, _ = engine_for(wf, clock, store)
    task = asyncio.ensure_future(engine.run())
    await clock.advance(10)
    assert await task == {"slow": "s", "fast": "f"}
    assert order == ["fast", "slow"]

    async def broken(ctx: Ctx) -> None:
        await ctx.step("b", lambda s: int("x"), max_retries=0)

    @workflow
    async def wf2(ctx: Ctx) -> dict[str, Any]:
        return await ctx.join("both", {"ok": fast, "broken": broken})

    store2 = MemoryWorkflowStore()
    with pytest.raises(JoinError) as caught:
        await engine_for(wf2, clock, store2)[0].run()
    assert list(caught.value.errors) == ["broken"]
    assert "invalid literal" in caught.value.errors["broken"]
    # The branch that succeeded is recorded: a replay does not run it again.
    steps = {e.name: e.status for e in read_history(store2.records).entries if e.kind == "step"}
    assert steps == {"f": "completed", "b": "exhausted"}
    with pytest.raises(JoinError):
        await engine_for(wf2, clock, store2)[0].run()


async def test_race_records_the_winner_and_cancels_the_rest(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    calls: Counter[str] = Counter()

    async def quick(ctx: Ctx) -> str:
        await ctx.sleep("q", 1)
        return await ctx.step("quick", lambda s: calls.update(["quick"]) or "Q")

    async def slow(ctx: Ctx) -> str:
        await ctx.sleep("s", 100)
        return await ctx.step("slow", lambda s: calls.update(["slow"]) or "S")

    @workflow
    async def wf(ctx: Ctx) -> list[Any]:
        result = await ctx.race("first", {"slow": slow, "quick": quick})
        return [result.winner, result.value]

    engine, _ = engine_for(wf, clock, store)
    task = asyncio.ensure_future(engine.run())
    await clock.advance(200)
    assert await task == ["quick", "Q"]
    assert calls == {"quick": 1}
    race = next(e for e in read_history(store.records).entries if e.kind == "race")
    assert race.output == "Q"
    # After much more time, a replay still picks the recorded winner, running nothing.
    store.records.pop("meta")
    await clock.advance(1000)
    assert await engine_for(wf, clock, store)[0].run() == ["quick", "Q"]
    assert calls == {"quick": 1}


async def test_race_where_every_branch_fails(clock: MockClock, store: MemoryWorkflowStore) -> None:
    async def bad(ctx: Ctx) -> None:
        await ctx.step("x", critical)

    @workflow
    async def wf(ctx: Ctx) -> None:
        await ctx.race("r", {"a": bad, "b": bad})

    with pytest.raises(RaceError) as caught:
        await engine_for(wf, clock, store)[0].run()
    assert sorted(caught.value.errors) == ["a", "b"]
    try_result: list[Any] = []

    @workflow
    async def caught_wf(ctx: Ctx) -> None:
        try_result.append(await ctx.try_("t", lambda c: c.race("r", {"a": bad})))

    await engine_for(caught_wf, clock, MemoryWorkflowStore())[0].run()
    assert isinstance(try_result[0], Failure) and try_result[0].kind == "race"


async def test_try_does_not_catch_other_categories(
    clock: MockClock, store: MemoryWorkflowStore
) -> None:
    async def block(ctx: Ctx) -> None:
        await ctx.step("s", lambda s: int("x"), max_retries=0)

    @workflow
    async def wf(ctx: Ctx) -> None:
        await ctx.try_("t", block, catch=["join"])

    with pytest.raises(StepExhaustedError):
        await engine_for(wf, clock, store)[0].run()


async def test_a_step_turn_handed_to_a_cancelled_waiter_goes_to_the_next() -> None:
    """Branches take turns for step bodies; a waiter cancelled just as the turn was
    handed to it passes the turn on instead of keeping it (a join whose other branch
    was cancelled, a race's loser) or dropping it (everyone after would wait forever)."""
    turn = StepTurn()
    turn.busy = True  # the first branch's step runs
    order: list[str] = []

    async def branch(name: str) -> None:
        await turn.wait()
        order.append(name)
        turn.give_back()

    loser = asyncio.ensure_future(branch("loser"))
    winner = asyncio.ensure_future(branch("winner"))
    await asyncio.sleep(0)  # both wait
    turn.give_back()  # handed to "loser"...
    loser.cancel()  # ...which is cancelled before it resumes
    await winner
    assert loser.cancelled()
    assert order == ["winner"]
    assert not turn.busy and not turn.waiters


async def test_a_step_turn_waiter_cancelled_while_waiting_leaves_the_queue() -> None:
    turn = StepTurn()
    turn.busy = True
    waiting = asyncio.ensure_future(turn.wait())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not turn.waiters
    turn.give_back()
    assert not turn.busy


async def test_a_step_turn_waiter_cancelled_as_the_turn_is_given_back_is_cancelled() -> None:
    """The waiter is cancelled, then (before its task resumes) the turn is given back:
    `give_back` skips the cancelled waiter and frees the turn; the task ends with its
    cancellation, not with an error about a waiter that is no longer queued."""
    turn = StepTurn()
    turn.busy = True
    waiting = asyncio.ensure_future(turn.wait())
    await asyncio.sleep(0)
    waiting.cancel()  # cancels its waiter at once; the task resumes later
    turn.give_back()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not turn.busy and not turn.waiters
