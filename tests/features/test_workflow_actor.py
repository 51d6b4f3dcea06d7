"""Durable workflows as an actor's ``run`` handler (``@actor.run`` over ``@workflow``).

Every test runs on the memory and the SQLite driver (``driver_factory``); a restart is
a new runtime over the same storage.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pyrivet import ActorDefinition, ActorOptions, Queue, Registry, Runtime, actor
from pyrivet.errors import WorkflowUsageError
from pyrivet.storage import ActorStore, MemoryDriver
from pyrivet.testing import MockClock, run_actors
from pyrivet.workflow import Loop, WorkflowHistory, workflow

DriverFactory = Callable[[], ActorStore]


async def history_in(runtime: Runtime, actor_id: str, *states: str) -> WorkflowHistory:
    """The workflow's history once its state is one of ``states`` (polls: commits are
    real I/O)."""
    async with asyncio.timeout(10):
        while True:
            history = await runtime.workflow_history(actor_id)
            if history.state in states:
                return history
            await asyncio.sleep(0.005)


def step_after(gate: asyncio.Event) -> Callable[[Any], Awaitable[int]]:
    """A step body that waits for ``gate``, then counts in ``c.state["n"]``."""

    async def step(c: Any) -> int:
        await gate.wait()
        c.state["n"] += 1
        return int(c.state["n"])

    return step


def counter_workflow(runs: list[str], *, fail_b: list[bool] | None = None) -> ActorDefinition[Any]:
    """Two steps that change state; ``runs`` records every step body executed."""
    counter = actor("counter", state={"a": 0, "b": 0}, options=ActorOptions(sleep_timeout=5))

    def step_a(c: Any) -> int:
        runs.append("a")
        c.state["a"] += 1
        return int(c.state["a"])

    def step_b(c: Any) -> int:
        runs.append("b")
        if fail_b is not None and fail_b[0]:
            raise RuntimeError("b is broken")
        c.state["b"] += 10
        return int(c.state["b"])

    @counter.run
    @workflow
    async def flow(ctx: Any) -> dict[str, int]:
        a = await ctx.step("a", step_a)
        b = await ctx.step("b", step_b, max_retries=1, retry_backoff_base=1.0)
        return {"a": a, "b": b}

    @counter.action
    def read(c: Any) -> dict[str, int]:
        return dict(c.state)

    return counter


async def test_steps_commit_with_state_and_replay_after_restart(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    runs: list[str] = []
    registry = Registry([counter_workflow(runs)])
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (runtime, client):
        handle = client.get_or_create("counter", ["x"])
        actor_id = await handle.resolve()
        history = await history_in(runtime, actor_id, "completed")
        assert history.output == {"a": 1, "b": 10}
        assert [e.name for e in history.entries] == ["a", "b"]
        assert await handle.read() == {"a": 1, "b": 10}
        # Each step's commit carries its history records, named after the step.
        commits = [h for h in await runtime.history(actor_id) if h.kind == "workflow"]
        assert [h.name for h in commits][:2] == ["a", "b"]
        assert any(op[0] == "workflow.put" for op in commits[0].ops)
        assert commits[0].state == {"a": 1, "b": 0}
    assert runs == ["a", "b"]

    # A restart wakes the actor again: the completed workflow is not run again.
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (runtime, client):
        handle = client.get_or_create("counter", ["x"])
        assert await handle.read() == {"a": 1, "b": 10}
        history = await history_in(runtime, await handle.resolve(), "completed")
        assert history.output == {"a": 1, "b": 10}
    assert runs == ["a", "b"]


class CountingLoads(MemoryDriver):
    """The memory driver, counting the workflow loads it serves: (actor id, whether it
    found records)."""

    def __init__(self) -> None:
        super().__init__()
        self.workflow_loads: list[tuple[str, bool]] = []

    async def load_workflow(self, actor_id: str) -> dict[str, bytes]:
        records = await super().load_workflow(actor_id)
        self.workflow_loads.append((actor_id, bool(records)))
        return records


async def test_a_new_actor_starts_its_workflow_without_reading_storage(clock: MockClock) -> None:
    runs: list[str] = []
    registry = Registry([counter_workflow(runs)])
    store = CountingLoads()
    async with run_actors(registry, storage=store, clock=clock) as (runtime, client):
        handle = client.get_or_create("counter", ["x"])
        actor_id = await handle.resolve()
        await history_in(runtime, actor_id, "completed")
    # Created by this start: nothing can be stored for it yet, so the start reads nothing.
    # (Once it completed, its history is read from storage: the engine unloaded it.)
    assert (actor_id, False) not in store.workflow_loads
    assert runs == ["a", "b"]

    # A wake reads what the first run stored (and so does not run the steps again).
    store.workflow_loads.clear()
    async with run_actors(registry, storage=store, clock=clock) as (runtime, client):
        handle = client.get_or_create("counter", ["x"])
        assert await handle.read() == {"a": 1, "b": 10}
        await history_in(runtime, actor_id, "completed")
    assert store.workflow_loads[0] == (actor_id, True)
    assert runs == ["a", "b"]


async def test_a_completed_workflow_is_unloaded_and_its_history_read_from_storage(
    clock: MockClock,
) -> None:
    """An actor that stays awake after its workflow completed keeps no history in
    memory; reading the history, replaying and cancelling load it again."""
    runs: list[str] = []
    registry = Registry([counter_workflow(runs)])
    store = CountingLoads()
    async with run_actors(registry, storage=store, clock=clock) as (runtime, client):
        actor_id = await client.get_or_create("counter", ["x"]).resolve()
        await history_in(runtime, actor_id, "completed")
        inst = runtime._instances[actor_id]
        assert inst.life is not None and inst.life.workflow is not None
        run_task = inst.life.run_task
        if run_task is not None:  # the run may still be ending (its final flush)
            await asyncio.wait([run_task])
        assert inst.life.workflow.engine.state == "pending"  # unloaded: nothing in memory
        assert inst.life.run_task is None  # the finished run task is not kept either
        history = await runtime.workflow_history(actor_id)
        assert history.state == "completed"
        assert [e.name for e in history.entries] == ["a", "b"]
        assert store.workflow_loads[-1] == (actor_id, True)
        await runtime.replay_workflow(actor_id, history.entries[1].key)
        await history_in(runtime, actor_id, "completed")
        assert runs == ["a", "b", "b"]


async def test_a_failing_step_fails_the_workflow_and_the_actor_keeps_serving(
    driver_factory: DriverFactory, clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[str] = []
    fail_b = [True]
    registry = Registry([counter_workflow(runs, fail_b=fail_b)])
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (runtime, client):
        handle = client.get_or_create("counter", ["x"])
        actor_id = await handle.resolve()
        with caplog.at_level(logging.ERROR, logger="pyrivet.workflow"):
            history = None
            for _ in range(50):
                await clock.advance(1)
                history = await runtime.workflow_history(actor_id)
                if history.state == "failed":
                    break
            assert history is not None and history.state == "failed"
        assert "workflow failed; the actor keeps serving" in caplog.text
        assert runs == ["a", "b", "b"]  # one retry, then exhausted
        assert await handle.read() == {"a": 1, "b": 0}
        # The failed workflow does not keep the actor awake.
        await clock.advance(6)
        assert not runtime.is_awake(actor_id)
        # Fixed, and run again from the failed step: "a" is not repeated.
        fail_b[0] = False
        await runtime.replay_workflow(actor_id, history.entries[1].key)
        history = await history_in(runtime, actor_id, "completed")
        assert history.output == {"a": 1, "b": 10}
        assert runs == ["a", "b", "b", "b"]
        assert await handle.read() == {"a": 1, "b": 10}


async def test_workflow_sleep_lets_the_actor_sleep_and_an_alarm_wakes_it(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    runs: list[str] = []
    napper = actor("napper", state={"steps": []}, options=ActorOptions(sleep_timeout=5))

    def note(what: str) -> Callable[[Any], str]:
        def body(c: Any) -> str:
            runs.append(what)
            c.state["steps"].append(what)
            return what

        return body

    @napper.run
    @workflow
    async def flow(ctx: Any) -> str:
        await ctx.step("before", note("before"))
        await ctx.sleep("nap", 3600)
        return str(await ctx.step("after", note("after")))

    @napper.action
    def steps(c: Any) -> list[str]:
        return list(c.state["steps"])

    @napper.action
    def schedules(c: Any) -> int:
        return len(c.schedule.list())

    registry = Registry([napper])
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (runtime, client):
        handle = client.get_or_create("napper", ["n"])
        actor_id = await handle.resolve()
        await history_in(runtime, actor_id, "sleeping")
        # The workflow's wake-up alarm is not one of the actor's schedules.
        assert await handle.schedules() == 0
        await clock.advance(10)
        assert not runtime.is_awake(actor_id)
        assert runs == ["before"]
        await clock.advance(3600)
        history = await history_in(runtime, actor_id, "completed")
        assert history.output == "after"
        assert await handle.steps() == ["before", "after"]
    assert runs == ["before", "after"]


async def test_workflow_sleep_survives_a_restart(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    runs: list[str] = []
    napper = actor("napper", state={"n": 0}, options=ActorOptions(sleep_timeout=5))

    def bump(c: Any) -> int:
        runs.append("bump")
        c.state["n"] += 1
        return int(c.state["n"])

    @napper.run
    @workflow
    async def flow(ctx: Any) -> int:
        await ctx.step("one", bump)
        await ctx.sleep("nap", 100)
        return int(await ctx.step("two", bump))

    registry = Registry([napper])
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (runtime, client):
        actor_id = await client.get_or_create("napper", ["n"]).resolve()
        await history_in(runtime, actor_id, "sleeping")
    # The runtime stopped while the workflow slept; the next one starts after the
    # deadline: the stored alarm wakes the actor with no request at all.
    await clock.advance(200)
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (runtime, _):
        await clock.advance(1)  # the mock clock runs due timers when it moves
        history = await history_in(runtime, actor_id, "completed")
        assert history.output == 2
    assert runs == ["bump", "bump"]


def mailbox_workflow(runs: list[Any]) -> ActorDefinition[Any]:
    agent = actor(
        "agent",
        state={"seen": []},
        queues={"prompts": Queue(str), "asks": Queue(str, completion=str)},
        options=ActorOptions(sleep_timeout=5),
    )

    @agent.run
    @workflow
    async def flow(ctx: Any) -> None:
        async def turn(ctx: Any, count: int) -> Any:
            message = await ctx.queue.next("prompt", names=["prompts"])

            def record(c: Any) -> int:
                runs.append(message.body)
                c.state["seen"].append(message.body)
                return len(c.state["seen"])

            seen = await ctx.step("record", record)
            ask = await ctx.queue.next("ask", names=["asks"], completable=True)
            await ask.complete(f"{ask.body}:{seen}")
            return Loop.continue_(count + 1)

        await ctx.loop("turns", turn, state=0)

    @agent.action
    def seen(c: Any) -> list[str]:
        return list(c.state["seen"])

    return agent


async def test_workflow_receives_from_the_actor_queue(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    runs: list[Any] = []
    registry = Registry([mailbox_workflow(runs)])
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (runtime, client):
        handle = client.get_or_create("agent", ["a"])
        actor_id = await handle.resolve()
        await handle.send("prompts", "hello")
        assert (await handle.send("asks", "q1", wait=True, timeout=30)).response == "q1:1"
        assert await handle.seen() == ["hello"]
        # Waiting for the next prompt, the actor may sleep; a message wakes it again.
        await clock.advance(10)
        assert not runtime.is_awake(actor_id)
        await handle.send("prompts", "again")
        assert (await handle.send("asks", "q2", wait=True, timeout=30)).response == "q2:2"
        assert await handle.seen() == ["hello", "again"]
    assert runs == ["hello", "again"]
    # Nothing was delivered twice, and nothing is left queued.
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (runtime, client):
        handle = client.get_or_create("agent", ["a"])
        assert await handle.seen() == ["hello", "again"]
        history = await runtime.workflow_history(await handle.resolve())
        assert history.state in ("running", "sleeping")
    assert runs == ["hello", "again"]


async def test_actions_during_a_step_wait_for_its_commit(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()
    worker = actor("worker", state={"step": 0, "action": 0})

    async def slow(c: Any) -> int:
        c.state["step"] = 1  # half of the step
        entered.set()
        await gate.wait()
        c.state["step"] = 2
        return 2

    @worker.run
    @workflow
    async def flow(ctx: Any) -> int:
        return int(await ctx.step("slow", slow, timeout=0))

    @worker.action
    def poke(c: Any) -> dict[str, int]:
        c.state["action"] += 1
        return dict(c.state)

    registry = Registry([worker])
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (runtime, client):
        handle = client.get_or_create("worker", ["w"])
        actor_id = await handle.resolve()
        await entered.wait()
        poking = asyncio.ensure_future(handle.poke())
        for _ in range(20):
            await asyncio.sleep(0)
        # The action ran (it saw half a step) but its reply waits for the step's commit:
        # committing now would make half a step durable.
        assert not poking.done()
        assert [h.kind for h in await runtime.history(actor_id)].count("action") == 0
        gate.set()
        assert await poking == {"step": 1, "action": 1}
        history = await history_in(runtime, actor_id, "completed")
        assert history.output == 2
        states = [h.state for h in await runtime.history(actor_id) if h.state_changed]
        assert {"step": 1, "action": 0} not in states
        assert states[-1] == {"step": 2, "action": 1}


async def test_history_api_errors_and_cancel(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    plain = actor("plain", state={})

    @plain.action
    def noop(c: Any) -> None:
        return None

    waiter = actor("waiter", state={}, options=ActorOptions(sleep_timeout=5))

    @waiter.run
    @workflow
    async def flow(ctx: Any) -> None:
        await ctx.sleep("long", 10_000)

    registry = Registry([plain, waiter])
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (runtime, client):
        plain_id = await client.get_or_create("plain", ["p"]).resolve()
        with pytest.raises(WorkflowUsageError, match="no workflow"):
            await runtime.workflow_history(plain_id)
        with pytest.raises(WorkflowUsageError, match="no workflow"):
            await runtime.replay_workflow(plain_id)
        waiter_id = await client.get_or_create("waiter", ["w"]).resolve()
        await history_in(runtime, waiter_id, "sleeping")
        with pytest.raises(WorkflowUsageError, match="no workflow history entry"):
            await runtime.replay_workflow(waiter_id, "nope")
        await runtime.cancel_workflow(waiter_id)
        assert (await history_in(runtime, waiter_id, "cancelled")).state == "cancelled"
        # Cancelled for good: its alarm is gone, so a restart does not resume it.
        await clock.advance(20_000)
        assert (await runtime.workflow_history(waiter_id)).state == "cancelled"


def versioned(runs: list[str], first: str) -> ActorDefinition[Any]:
    """A workflow whose first step is named ``first`` (a deploy that renamed it)."""
    flow_actor = actor("flow", state={"n": 0}, options=ActorOptions(sleep_timeout=5))

    def bump(c: Any) -> int:
        runs.append(first)
        c.state["n"] += 1
        return int(c.state["n"])

    @flow_actor.run
    @workflow
    async def flow(ctx: Any) -> int:
        await ctx.step(first, bump)
        await ctx.sleep("wait", 50)
        return int(await ctx.step("last", bump))

    @flow_actor.action
    def n(c: Any) -> int:
        return int(c.state["n"])

    return flow_actor


async def test_changed_code_diverges_clearly_and_loses_nothing(
    driver_factory: DriverFactory, clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[str] = []
    async with run_actors(
        Registry([versioned(runs, "first")]), storage=driver_factory(), clock=clock
    ) as (runtime, client):
        actor_id = await client.get_or_create("flow", ["f"]).resolve()
        before = await history_in(runtime, actor_id, "sleeping")
    # Deployed with the first step renamed: the history no longer matches.
    with caplog.at_level(logging.ERROR, logger="pyrivet.workflow"):
        async with run_actors(
            Registry([versioned(runs, "renamed")]), storage=driver_factory(), clock=clock
        ) as (runtime, client):
            handle = client.get_or_create("flow", ["f"])
            assert await handle.n() == 1  # the actor serves; its state is intact

            async with asyncio.timeout(10):
                while True:
                    if "workflow history diverged" in caplog.text:
                        break
                    await asyncio.sleep(0.005)
            assert "'renamed'" in caplog.text and "'first'" in caplog.text
            after = await runtime.workflow_history(actor_id)
            assert [e.key for e in after.entries] == [e.key for e in before.entries]
    assert runs == ["first"]
    # The matching code resumes where it was: nothing was lost.
    await clock.advance(100)
    async with run_actors(
        Registry([versioned(runs, "first")]), storage=driver_factory(), clock=clock
    ) as (runtime, client):
        await clock.advance(1)
        assert (await history_in(runtime, actor_id, "completed")).output == 2
    assert runs == ["first", "first"]


async def test_step_context_is_the_actor_and_the_orchestration_context_is_not(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    counter = actor("counter", state={"n": 0})

    @counter.action
    def add(c: Any, amount: int) -> int:
        c.state["n"] += amount
        return int(c.state["n"])

    caller = actor("caller", state={"calls": 0, "misuse": ""})

    async def call_counter(c: Any) -> int:
        c.state["calls"] += 1
        await c.kv.put("last", "called")
        return int(await c.client().get_or_create("counter", ["shared"]).add(5))

    @caller.run
    @workflow
    async def flow(ctx: Any) -> int:
        total = int(await ctx.step("call", call_counter))
        try:
            ctx.state["calls"] = 99
        except WorkflowUsageError as exc:
            misuse = str(exc)
        await ctx.step("note", lambda c: c.state.update(misuse=misuse))
        return total

    @caller.action
    async def report(c: Any) -> list[Any]:
        return [c.state["calls"], c.state["misuse"], await c.kv.get("last")]

    async with run_actors(Registry([counter, caller]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("caller", ["c"])
        actor_id = await handle.resolve()
        assert (await history_in(runtime, actor_id, "completed")).output == 5
        calls, misuse, last = await handle.report()
        assert calls == 1 and last == "called"
        assert "only available inside workflow steps" in misuse
        assert await client.get_or_create("counter", ["shared"]).add(0) == 5


def docs_example() -> ActorDefinition[Any]:
    """The ``orders`` example of docs/workflows.md, as written there."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "workflows.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    source = next(b for b in blocks if "orders = actor(" in b)
    namespace: dict[str, Any] = {}
    exec(compile(source, "docs/workflows.md", "exec"), namespace)
    definition: ActorDefinition[Any] = namespace["orders"]

    @definition.action
    def status(c: Any) -> str:
        return str(c.state["status"])

    return definition


async def test_the_docs_example_runs(driver_factory: DriverFactory, clock: MockClock) -> None:
    async with run_actors(Registry([docs_example()]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("orders", ["o-1"])
        actor_id = await handle.resolve()
        await history_in(runtime, actor_id, "sleeping")
        assert await handle.status() == "reserved"
        await handle.send("approvals", {"by": "ann"})
        await history_in(runtime, actor_id, "sleeping")
        await clock.advance(3601)
        await history_in(runtime, actor_id, "completed")
        assert await handle.status() == "shipped"


async def test_join_branches_sleep_and_wait_for_a_message_in_an_actor(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    joiner = actor(
        "joiner", state={"log": []}, queues=["go"], options=ActorOptions(sleep_timeout=5)
    )

    async def napper(ctx: Any) -> str:
        await ctx.step("first", lambda c: c.state["log"].append("nap-start"))
        await ctx.sleep("nap", 60)
        await ctx.step("second", lambda c: c.state["log"].append("nap-end"))
        return "rested"

    async def listener(ctx: Any) -> Any:
        message = await ctx.queue.next("go", names=["go"])
        await ctx.step("heard", lambda c: c.state["log"].append(f"heard-{message.body}"))
        return message.body

    @joiner.run
    @workflow
    async def flow(ctx: Any) -> Any:
        return await ctx.join("both", {"nap": napper, "listen": listener})

    @joiner.action
    def log(c: Any) -> list[str]:
        return list(c.state["log"])

    async with run_actors(Registry([joiner]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("joiner", ["j"])
        actor_id = await handle.resolve()
        await history_in(runtime, actor_id, "sleeping")
        await clock.advance(10)  # both branches wait: the actor sleeps
        assert not runtime.is_awake(actor_id)
        await handle.send("go", "now")
        await clock.advance(60)
        history = await history_in(runtime, actor_id, "completed")
        assert history.output == {"nap": "rested", "listen": "now"}
        assert sorted(await handle.log()) == ["heard-now", "nap-end", "nap-start"]


async def test_a_step_that_ends_while_a_branch_sleeps_lets_the_actor_sleep(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    """A step's end tells the actor it may be idle when another branch of the run is
    parked in a wait (the host skips that only while the run task is busy)."""
    gate = asyncio.Event()
    pair = actor("pair", state={"n": 0}, options=ActorOptions(sleep_timeout=5))
    slow = step_after(gate)

    async def napper(ctx: Any) -> str:
        await ctx.sleep("nap", 60)
        return "rested"

    async def worker(ctx: Any) -> int:
        return int(await ctx.step("slow", slow))

    @pair.run
    @workflow
    async def flow(ctx: Any) -> Any:
        return await ctx.join("both", {"nap": napper, "work": worker})

    async with run_actors(Registry([pair]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        actor_id = await client.get_or_create("pair", ["p"]).resolve()
        for _ in range(20):
            await asyncio.sleep(0)
        await clock.advance(10)  # the step runs: the actor stays awake
        assert runtime.is_awake(actor_id)
        gate.set()
        async with asyncio.timeout(10):  # the step's commit is real I/O
            while True:
                history = await runtime.workflow_history(actor_id)
                if history.entries[-1].status == "completed":
                    break
                await asyncio.sleep(0.005)
        await clock.advance(10)  # only the nap is left: the actor sleeps
        assert not runtime.is_awake(actor_id)
        await clock.advance(60)  # its alarm wakes it and the workflow completes
        history = await history_in(runtime, actor_id, "completed")
        assert history.output == {"nap": "rested", "work": 1}


async def test_a_workflow_whose_actor_was_created_before_a_crash_runs_after_it(
    clock: MockClock,
) -> None:
    """The "resume at once" alarm is in the creation commit: a crash between that commit
    and the first step's leaves a workflow that the restart runs with no request."""
    ran = asyncio.Event()
    gate = asyncio.Event()
    blocking = [True]
    late = actor("late", state={"n": 0}, options=ActorOptions(sleep_timeout=5))

    async def first(c: Any) -> int:
        if blocking[0]:
            await gate.wait()  # the crash comes while this runs
        c.state["n"] += 1
        return int(c.state["n"])

    @late.run
    @workflow
    async def flow(ctx: Any) -> int:
        n = await ctx.step("first", first)
        ran.set()
        return int(n)

    registry = Registry([late])
    store = MemoryDriver()
    async with run_actors(registry, storage=store, clock=clock) as (runtime, client):
        actor_id = await client.get_or_create("late", ["x"]).resolve()
        for _ in range(5):
            await asyncio.sleep(0)
        # What a kill -9 now leaves: every commit made so far, nothing after.
        image = copy.deepcopy(store)
        gate.set()
    blocking[0] = False
    ran.clear()
    async with run_actors(registry, storage=image, clock=clock) as (runtime, _):
        await clock.advance(1)  # the mock clock runs due timers when it moves
        async with asyncio.timeout(10):
            await ran.wait()  # no request reached the actor: its alarm woke it
        history = await history_in(runtime, actor_id, "completed")
        assert history.output == 1


async def test_a_new_workflow_commits_its_first_step_with_its_creation(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    runs: list[str] = []
    registry = Registry([counter_workflow(runs)])
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (runtime, client):
        before = runtime.committer_stats()
        actor_id = await client.get_or_create("counter", ["x"]).resolve()
        await history_in(runtime, actor_id, "completed")
        await runtime.drain()
        batches, records = (
            now - then for now, then in zip(runtime.committer_stats(), before, strict=True)
        )
        kinds = [(h.kind, h.name) for h in await runtime.history(actor_id)]
    assert kinds == [("create", None), ("workflow", "a"), ("workflow", "b"), ("workflow", None)]
    # The creation and step a share one transaction (one fsync less per workflow).
    assert (records, batches) == (4, 3)


async def test_a_running_workflows_resume_at_once_alarm_arms_no_timer(
    driver_factory: DriverFactory, clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While its actor runs, the workflow's "resume at once" alarm is stored and
    mirrored (a crash resumes the workflow) but arms no scheduler timer: its fire would
    find the actor awake and do nothing."""
    armed: list[object] = []
    real_call_later = clock.call_later

    def counting_call_later(delay: float, callback: Callable[[], object]) -> Any:
        if getattr(callback, "__name__", "") == "_fire_due":
            armed.append(callback)
        return real_call_later(delay, callback)

    monkeypatch.setattr(clock, "call_later", counting_call_later)
    gate = asyncio.Event()
    waiting = actor("waiting", state={"n": 0}, options=ActorOptions(sleep_timeout=5))

    @waiting.run
    @workflow
    async def flow(ctx: Any) -> int:
        return int(await ctx.step("first", step_after(gate)))

    store = driver_factory()
    async with run_actors(Registry([waiting]), storage=store, clock=clock) as (runtime, client):
        actor_id = await client.get_or_create("waiting", ["x"]).resolve()
        for _ in range(5):
            await asyncio.sleep(0)
        assert runtime.earliest_alarm(actor_id) is not None  # mirrored
        assert [a.kind for a in await store.list_alarms(actor_id)] == ["workflow"]  # stored
        gate.set()
        history = await history_in(runtime, actor_id, "completed")
        assert history.output == 1
        await runtime.drain()  # the completion commit is durable, its alarm delete applied
        assert runtime.earliest_alarm(actor_id) is None  # deleted with the completion
    assert armed == []
