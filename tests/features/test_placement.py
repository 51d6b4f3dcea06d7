"""A runtime whose actors are stopped and woken by a `Placement` (envoy mode's contract).

The engine is replaced by a recording placement; the clock is a `MockClock`. What the
Rivet Engine does with the requests is tested in tests/engine/test_lifecycle.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from pyrivet import ActorError, ActorOptions, Registry, actor
from pyrivet._runtime.placement import Placement
from pyrivet.errors import ActorStoppingError
from pyrivet.testing import MockClock, run_actors

T0 = 1_700_000_000.0


class Recorder(Placement):
    """Allows wakes of the actors in ``hosted``; records what the runtime asks."""

    def __init__(self) -> None:
        self.hosted: set[str] = set()
        self.stops: list[tuple[str, str]] = []
        self.alarms: list[tuple[str, int | None]] = []

    def request_stop(self, actor_id: str, kind: str) -> None:
        self.stops.append((actor_id, kind))

    def refuse_wake(self, actor_id: str) -> BaseException | None:
        if actor_id in self.hosted:
            return None
        return ActorError("not hosted here", group="guard", code="actor_stopped_while_waiting")

    def alarm_changed(self, actor_id: str, fire_at_ms: int | None) -> None:
        self.alarms.append((actor_id, fire_at_ms))


def registry() -> Registry:
    worker = actor("worker", state={"done": []}, options=ActorOptions(sleep_timeout=5.0))

    @worker.action
    def remind(c: Any, delay: float, tag: str) -> None:
        c.schedule.after(delay, "mark", tag)

    @worker.action
    def mark(c: Any, tag: str) -> None:
        c.state["done"].append(tag)

    @worker.action
    def done(c: Any) -> list[str]:
        return list(c.state["done"])

    @worker.action
    def rest(c: Any) -> None:
        c.sleep()

    @worker.action
    def vanish(c: Any) -> None:
        c.destroy()

    return Registry([worker])


async def test_stops_are_asked_of_the_placement_and_wakes_need_its_consent() -> None:
    clock = MockClock(T0)
    placement = Recorder()
    async with run_actors(registry(), clock=clock) as (runtime, client):
        runtime.attach_placement(placement)
        with pytest.raises(RuntimeError):
            runtime.attach_placement(placement)  # once only
        placement.hosted.add("a1")
        await runtime.host("a1", "worker", ("k",))
        handle = client.get_for_id("worker", "a1")
        await clock.advance(6)
        # Idle past sleep_timeout: asked once, still awake and serving.
        assert placement.stops == [("a1", "sleep")]
        assert runtime.is_awake("a1")
        assert await handle.done() == []
        await handle.rest()  # c.sleep(): asked already, not again
        await handle.vanish()  # c.destroy(): asked once
        assert placement.stops == [("a1", "sleep"), ("a1", "destroy")]
        with pytest.raises(ActorStoppingError):
            await handle.vanish()
        # The placement's owner stops it; without its consent nothing wakes it.
        placement.hosted.discard("a1")
        await runtime.sleep("a1")
        assert not runtime.is_awake("a1")
        with pytest.raises(ActorError) as refused:
            await handle.done()
        assert refused.value.code == "actor_stopped_while_waiting"
        placement.hosted.add("a1")
        assert await handle.done() == []


async def test_alarms_are_reported_and_fire_only_in_memory() -> None:
    clock = MockClock(T0)
    placement = Recorder()
    async with run_actors(registry(), clock=clock) as (runtime, client):
        runtime.attach_placement(placement)
        placement.hosted.add("a1")
        await runtime.host("a1", "worker", ("k",))
        handle = client.get_for_id("worker", "a1")
        await handle.remind(100, "late")
        due_ms = int((T0 + 100) * 1000)
        assert placement.alarms == [("a1", due_ms)]
        assert runtime.earliest_alarm("a1") == due_ms
        placement.hosted.discard("a1")
        await runtime.sleep("a1")
        # Due while asleep: the runtime does not wake it (the placement would).
        await clock.advance(200)
        assert not runtime.is_awake("a1")
        placement.hosted.add("a1")
        await runtime.host("a1", "worker", ("k",))
        await clock.advance(0)
        assert await handle.done() == ["late"]
        assert placement.alarms[-1] == ("a1", None)
        assert runtime.earliest_alarm("a1") is None
