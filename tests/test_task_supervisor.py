"""`TaskSupervisor`: tasks it owns, on the loop it was given."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from pyrivet._util.tasks import TaskSupervisor


async def _one() -> int:
    return 1


async def test_a_supervisor_given_its_loop_spawns_without_asking_for_the_running_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    supervisor = TaskSupervisor("test", asyncio.get_running_loop())

    def no_lookup() -> asyncio.AbstractEventLoop:
        raise AssertionError("asyncio.get_running_loop called (a getpid system call)")

    monkeypatch.setattr(asyncio, "get_running_loop", no_lookup)
    task = supervisor.spawn(_one())
    monkeypatch.undo()
    assert await task == 1
    await supervisor.aclose()


async def test_a_supervisor_without_a_loop_uses_the_running_one() -> None:
    supervisor = TaskSupervisor("test")
    assert await supervisor.spawn(_one()) == 1
    await supervisor.aclose()


async def test_spawn_eager_runs_a_coroutine_that_does_not_wait_in_the_caller() -> None:
    supervisor = TaskSupervisor("test", asyncio.get_running_loop())
    ran: list[str] = []

    async def step() -> None:
        ran.append("ran")

    assert supervisor.spawn_eager(step()) is None
    assert ran == ["ran"] and len(supervisor) == 0  # finished before returning, no task
    await supervisor.aclose()


_where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="caller")


async def test_spawn_eager_goes_on_in_an_owned_task_once_the_coroutine_waits() -> None:
    supervisor = TaskSupervisor("test", asyncio.get_running_loop())
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    seen: list[object] = []

    async def waits() -> None:
        _where.set("first step")
        seen.append(asyncio.current_task())
        seen.append(await future)
        await asyncio.sleep(0)  # a bare yield, then more
        seen.append((asyncio.current_task(), _where.get()))

    caller = asyncio.current_task()
    task = supervisor.spawn_eager(waits(), name="eager")
    assert task is not None and task.get_name() == "eager" and len(supervisor) == 1
    assert seen == [caller]  # the first step ran in the caller, up to the wait
    assert _where.get() == "caller"  # in a copy of the caller's context
    future.set_result(7)
    await task
    # The rest ran in the task, with the context the first step left.
    assert seen == [caller, 7, (task, "first step")]
    assert len(supervisor) == 0
    await supervisor.aclose()


async def test_a_bare_yield_in_the_first_step_resumes_in_the_tasks_first_step() -> None:
    """The loop turn a bare yield asks for is the one before the task's first step: the
    coroutine goes on there (after the callbacks queued before it, before those queued
    after), not one step later (a WebSocket strict action's reply, after its commit)."""
    loop = asyncio.get_running_loop()
    supervisor = TaskSupervisor("test", loop)
    order: list[str] = []

    async def turns() -> None:
        order.append("first step")
        await asyncio.sleep(0)  # a bare yield
        order.append("rest")

    loop.call_soon(order.append, "queued before")
    task = supervisor.spawn_eager(turns())
    assert task is not None
    loop.call_soon(order.append, "queued after")
    await task
    assert order == ["first step", "queued before", "rest", "queued after"]
    await supervisor.aclose()


async def test_a_task_of_spawn_eager_cancelled_while_waiting_cancels_the_coroutine() -> None:
    supervisor = TaskSupervisor("test", asyncio.get_running_loop())
    cleanup: list[str] = []

    async def waits() -> None:
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            cleanup.append("cancelled inside")
            raise

    task = supervisor.spawn_eager(waits())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleanup == ["cancelled inside"]
    await supervisor.aclose()


async def test_spawn_eager_logs_what_the_coroutine_raises_in_either_part(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor = TaskSupervisor("test", asyncio.get_running_loop())

    async def fails_at_once() -> None:
        raise ValueError("first")

    async def fails_later() -> None:
        await asyncio.sleep(0)
        raise ValueError("later")

    assert supervisor.spawn_eager(fails_at_once(), name="a") is None
    task = supervisor.spawn_eager(fails_later(), name="b")
    assert task is not None
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)  # the done callback
    failures = [(r.getMessage(), str(r.exc_info[1])) for r in caplog.records if r.exc_info]
    assert failures == [
        ("test: background task a failed", "first"),
        ("test: background task b failed", "later"),
    ]
    await supervisor.aclose()


async def test_then_runs_after_the_supervisor_heard_the_task_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``then(task)`` is called from the supervisor's own done callback (no second loop
    callback), after a failure was logged, for tasks that end, fail or are cancelled."""
    supervisor = TaskSupervisor("test", asyncio.get_running_loop())
    heard: list[tuple[str, int]] = []

    def then(task: asyncio.Task[object]) -> None:
        heard.append((task.get_name(), len(caplog.records)))

    async def fails() -> None:
        raise RuntimeError("boom")

    async def waits() -> None:
        await asyncio.Event().wait()

    done = supervisor.spawn(_one(), name="done", then=then)
    failed = supervisor.spawn(fails(), name="failed", then=then)
    cancelled = supervisor.spawn(waits(), name="cancelled", then=then)
    assert len(done._callbacks) == 1  # the supervisor's only
    await asyncio.wait([done, failed])
    cancelled.cancel()
    await asyncio.wait([cancelled])
    await asyncio.sleep(0)  # done callbacks run in the iteration after the task ended
    assert heard == [("done", 0), ("failed", 1), ("cancelled", 1)]
    assert "background task failed failed" in caplog.text
    assert len(supervisor) == 0
    await supervisor.aclose()
