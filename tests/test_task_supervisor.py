"""`TaskSupervisor`: tasks it owns, on the loop it was given."""

from __future__ import annotations

import asyncio

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
