"""A workflow step's commit: the committer's lazy submit, and a step whose commit fails.

A workflow host's flush submits its commit lazily and calls `Committer.flush_owed`
right after: the batch is written at once when nothing else is queued in the event
loop's iteration, else at the start of the next one (so other records join it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pyrivet import ActorOptions, Registry, actor
from pyrivet._runtime.committer import Committer, CommitTicket
from pyrivet._runtime.journal import Journal
from pyrivet._runtime.workflow_host import _wait_durable
from pyrivet.errors import CommitError
from pyrivet.storage import CommitRecord, MemoryDriver, SQLiteDriver
from pyrivet.testing import MockClock, run_actors
from pyrivet.workflow import workflow

from .test_workflow_actor import history_in


class Heard:
    """A `CommitListener` that notes what it heard, in order, into a shared list."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def committed(self, record: CommitRecord) -> None:
        self.log.append(f"committed {record.seq}")

    def failed(self, record: CommitRecord, exc: BaseException) -> None:
        self.log.append(f"failed {record.seq}")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteDriver]:
    """An open SQLite store on this test's directory, closed after the test."""
    driver = SQLiteDriver(tmp_path)
    await driver.open()
    try:
        yield driver
    finally:
        await driver.close()


async def test_a_lazy_submit_is_written_at_once_when_nothing_else_is_queued(
    store: SQLiteDriver,
) -> None:
    committer = Committer(store)
    log: list[str] = []
    ticket = committer.submit(CommitRecord("a1", 1, state=b"1"), Heard(log), lazy=True)
    assert not committer.flush_scheduled and log == []  # nothing written or queued yet
    assert committer.flush_owed()
    assert ticket.done() and ticket.exception() is None  # written inline, no turn
    assert log == ["committed 1"]
    assert (await store.load_state("a1")).seq == 1
    assert not committer.flush_owed()  # nothing owed any more


async def test_a_lazy_submit_with_other_work_queued_is_written_after_it(
    store: SQLiteDriver,
) -> None:
    committer = Committer(store)
    log: list[str] = []
    loop = asyncio.get_running_loop()
    loop.call_soon(log.append, "other work")
    ticket = committer.submit(CommitRecord("a1", 1, state=b"1"), Heard(log), lazy=True)
    assert not committer.flush_owed()
    assert committer.flush_scheduled and not ticket.done()
    # What the queued work submits joins the same batch.
    second = committer.submit(CommitRecord("a2", 1, state=b"2"), Heard(log))
    await ticket
    await second
    assert log == ["other work", "committed 1", "committed 1"]
    assert committer.batches == 1


async def test_submits_after_the_first_flush_do_not_ask_asyncio_for_the_loop(
    store: SQLiteDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Committer.running_loop`: the loop of the last scheduled flush, while it runs
    (`asyncio.get_running_loop` is a ``getpid`` system call in Python 3.11)."""
    committer = Committer(store)
    log: list[str] = []
    await committer.submit(CommitRecord("a1", 1, state=b"1"), Heard(log))  # learns the loop
    loop = asyncio.get_running_loop()

    def no_lookup() -> asyncio.AbstractEventLoop:
        raise AssertionError("asyncio.get_running_loop called (a getpid system call)")

    monkeypatch.setattr(asyncio, "get_running_loop", no_lookup)
    ticket = committer.submit(CommitRecord("a1", 2, state=b"2"), Heard(log))
    assert committer.running_loop() is loop and committer.flush_scheduled
    monkeypatch.undo()
    await ticket
    assert log == ["committed 1", "committed 2"]


async def test_a_committer_whose_loop_stopped_asks_for_the_running_one() -> None:
    committer = Committer(MemoryDriver())
    other = asyncio.new_event_loop()
    try:
        committer._follow(other)  # a loop it served, no longer running
        assert committer.running_loop() is asyncio.get_running_loop()
    finally:
        other.close()


def failing_flow(runs: list[str], store: MemoryDriver) -> Any:
    flow_actor = actor("flow", state={"a": 0, "b": 0}, options=ActorOptions(sleep_timeout=5))

    def step_a(c: Any) -> int:
        runs.append("a")
        c.state["a"] = 1
        return 1

    def step_b(c: Any) -> int:
        runs.append("b")
        c.state["b"] = 10
        if runs.count("b") == 1:
            store.fail_next_commit(RuntimeError("disk on fire"))  # this step's commit
        return 10

    @flow_actor.run
    @workflow
    async def flow(ctx: Any) -> int:
        a = await ctx.step("a", step_a)
        b = await ctx.step("b", step_b)
        return int(a + b)

    @flow_actor.action
    def read(c: Any) -> dict[str, int]:
        return dict(c.state)

    return flow_actor


async def test_a_step_whose_commit_fails_leaves_nothing_and_runs_again_after_a_restart(
    clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryDriver()
    runs: list[str] = []
    registry = Registry([failing_flow(runs, store)])
    with caplog.at_level(logging.ERROR, logger="pyrivet.workflow"):
        async with run_actors(registry, storage=store, clock=clock) as (runtime, client):
            handle = client.get_or_create("flow", ["x"])
            actor_id = await handle.resolve()
            async with asyncio.timeout(10):  # the run fails once the commit did
                while True:
                    if any("workflow failed" in r.getMessage() for r in caplog.records):
                        break
                    await asyncio.sleep(0.001)
            failure = next(r for r in caplog.records if "workflow failed" in r.getMessage())
            assert failure.exc_info is not None
            assert type(failure.exc_info[1]).__name__ == "CommitError"
            # The failed step's state change was rolled back, and its entry not stored.
            assert await handle.read() == {"a": 1, "b": 0}
            history = await runtime.workflow_history(actor_id)
            assert [e.name for e in history.entries] == ["a"]
    assert runs == ["a", "b"]

    # After a restart, waking the actor resumes the workflow: step b runs again, only it.
    async with run_actors(registry, storage=store, clock=clock) as (runtime, client):
        handle = client.get_or_create("flow", ["x"])
        await handle.read()  # wakes the actor, which starts its run
        await history_in(runtime, actor_id, "completed")  # commits are I/O: polls
        assert await handle.read() == {"a": 1, "b": 10}
    assert runs == ["a", "b", "b"]


class _FailingStore:
    """A store whose every commit fails before returning an awaitable."""

    def commit(self, batch: Any) -> Any:
        raise RuntimeError("disk on fire")


def record_of(ticket: CommitTicket) -> CommitRecord | None:
    """The record a ticket holds (read through a call: mypy keeps no narrowing)."""
    return ticket.record


async def test_a_settled_ticket_lets_go_of_its_record(store: SQLiteDriver) -> None:
    # The committer queues tickets, each carrying its record until it is settled: a
    # ticket a caller keeps (an in-flight commit's, an output gate's) holds no record.
    committer = Committer(store)
    log: list[str] = []
    record = CommitRecord("a1", 1, state=b"1")
    ticket = committer.submit(record, Heard(log), lazy=True)
    assert record_of(ticket) is record
    assert committer.flush_owed() and ticket.done()
    assert record_of(ticket) is None and log == ["committed 1"]

    failing = Committer(_FailingStore())  # type: ignore[arg-type]
    first = failing.submit(CommitRecord("a1", 1, state=b"1"), Heard(log))
    later = failing.submit(CommitRecord("a1", 2, state=b"2"), Heard(log))
    for ticket in (first, later):  # the batch fails, then each record on its own
        with pytest.raises(CommitError):
            await ticket
    assert record_of(first) is None and record_of(later) is None
    assert log[1:] == ["failed 1", "failed 2"]


async def test_a_steps_wait_for_a_commit_reports_its_failure_or_cancellation() -> None:
    # `_wait_durable` (a generator-based coroutine: one object alive across the turn).
    listener = Heard([])
    failed = CommitTicket(listener)
    waiting = asyncio.ensure_future(_wait_durable(failed, True))
    await asyncio.sleep(0)
    failed.resolve(RuntimeError("lost the disk"))
    with pytest.raises(CommitError, match="lost the disk"):
        await waiting

    durable = CommitTicket(listener)
    waiting = asyncio.ensure_future(_wait_durable(durable, False))
    await asyncio.sleep(0)
    durable.resolve()
    await waiting
    assert waiting.done() and waiting.exception() is None

    never = CommitTicket(listener)
    waiting = asyncio.ensure_future(_wait_durable(never, True))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # past the turn: waiting on the ticket now
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    never.resolve()  # a cancelled waiter does not disturb the ticket
    assert never.done() and never.exception() is None


async def test_a_workflow_stages_its_alarm_without_queueing_a_save(
    clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The "resume at once" alarm is staged right before a checkpoint (the creation's,
    # the last flush's): a save queued for the next loop iteration would only be
    # cancelled by it. The alarm still rides in those commits.
    soon_calls: list[str] = []
    real_soon = Journal.soon

    def counting_soon(journal: Journal) -> None:
        soon_calls.append(journal.owner.actor_id)
        real_soon(journal)

    monkeypatch.setattr(Journal, "soon", counting_soon)
    store = MemoryDriver()
    flow_actor = actor("flow", state={"n": 0})

    @flow_actor.run
    @workflow
    async def flow(ctx: Any) -> int:
        for i in range(3):
            await ctx.step(f"s{i}", lambda c, i=i: c.state.update(n=i + 1) or i)
        return 3

    async with run_actors(Registry([flow_actor]), storage=store, clock=clock) as (runtime, client):
        actor_id = await client.get_or_create("flow", ["x"]).resolve()
        await history_in(runtime, actor_id, "completed")
        assert await store.list_alarms(actor_id) == []  # deleted with the completion
        entries = (await runtime.workflow_history(actor_id)).entries
        assert [e.name for e in entries][:3] == ["s0", "s1", "s2"]
        history = await store.read_history(actor_id)
        alarm_ops = [e for e in history if e.ops is not None and b"alarm." in e.ops]
        assert [e.kind for e in alarm_ops] == ["create", "workflow"]  # put, then delete
    assert soon_calls == []
