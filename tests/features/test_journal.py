"""The journal: contributions to an actor's next commit, on_state_change, the status machine."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

import pytest

from pyrivet import ActorStatus, CommitError, Registry, actor
from pyrivet._codec.values import encode
from pyrivet._runtime.journal import InFlight
from pyrivet.storage import ActorStore, CommitRecord, MemoryDriver
from pyrivet.testing import MockClock, run_actors

DriverFactory = Callable[[], ActorStore]

counter = actor("counter", state={"count": 0})


@counter.action
def increment(c: Any, amount: int = 1) -> int:
    c.state["count"] += amount
    return int(c.state["count"])


@counter.action
async def read_kv(c: Any, key: str) -> Any:
    return await c.kv.get(key)


class KVContribution:
    """A stand-in for workflow history: one KV row written with the actor's next commit."""

    def __init__(self, key: str, value: Any) -> None:
        self.key = key.encode()
        self.value = encode(value)
        self.outcomes: list[BaseException | None] = []

    def write(self, record: CommitRecord, ops: list[Any]) -> None:
        record.kv_puts = [*record.kv_puts, (self.key, self.value)]
        ops.append(("test.put", self.key))

    def settled(self, error: BaseException | None) -> None:
        self.outcomes.append(error)


async def test_a_contribution_lands_in_the_same_commit_as_the_state(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([counter]), storage=driver_factory(), clock=clock) as (rt, cl):
        handle = cl.get_or_create("counter", ["a"])
        assert await handle.increment() == 1
        actor_id = await handle.resolve()
        inst = rt._instances[actor_id]
        contribution = KVContribution("step-1", {"done": True})
        inst.journal.contribute(contribution)
        inst.state["count"] = 10  # the change the contribution explains
        await clock.advance(0)  # the journal commits changes made outside actions soon
        await rt._services.committer.drain()
        assert contribution.outcomes == [None]
        last = (await rt.history(actor_id))[-1]
        assert (last.kind, last.state) == ("save", {"count": 10})
        assert last.ops == [("test.put", b"step-1")]
        assert await handle.read_kv("step-1") == {"done": True}


async def test_a_contribution_of_a_failed_commit_hears_the_error(clock: MockClock) -> None:
    store = MemoryDriver()
    async with run_actors(Registry([counter]), storage=store, clock=clock) as (rt, cl):
        handle = cl.get_or_create("counter", ["a"])
        assert await handle.increment() == 1
        inst = rt._instances[await handle.resolve()]
        contribution = KVContribution("step-1", 1)
        inst.journal.contribute(contribution)
        store.fail_next_commit(RuntimeError("simulated"))
        with pytest.raises(CommitError):
            await handle.increment()  # the contribution rides on this action's commit
        assert len(contribution.outcomes) == 1
        assert isinstance(contribution.outcomes[0], CommitError)
        assert await handle.read_kv("step-1") is None
        assert await handle.increment() == 2  # rolled back to the durable state


watcher = actor("watcher", state={"count": 0, "seen": 0}, vars={"errors": []})


@watcher.on_state_change
def on_change(c: Any, state: Any) -> None:
    c.vars["errors"].append(None)
    try:
        c.state = {"count": -1, "seen": 0}
    except Exception as exc:
        c.vars["errors"][-1] = [getattr(exc, "group", None), getattr(exc, "code", None), str(exc)]


@watcher.action
def bump(c: Any) -> int:
    c.state["count"] += 1
    return int(c.state["count"])


@watcher.action
def errors(c: Any) -> list[Any]:
    return list(c.vars["errors"])


@watcher.action
def state(c: Any) -> Any:
    return c.state


async def test_assigning_state_in_on_state_change_raises_there(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([watcher]), storage=driver_factory(), clock=clock) as (_, cl):
        handle = cl.get_or_create("watcher", ["a"])
        assert await handle.bump() == 1
        assert (await handle.errors())[-1] == [
            "actor",
            "state_mutation_reentrant",
            "State mutations are not allowed inside onStateChange.",
        ]
        assert await handle.state() == {"count": 1, "seen": 0}


in_place = actor("in_place", state={"count": 0, "seen": 0})


@in_place.on_state_change
def count_changes(c: Any, state: Any) -> None:
    state["seen"] += 1  # a change made in place cannot be refused as it happens


@in_place.action(name="bump")
def bump_in_place(c: Any) -> int:
    c.state["count"] += 1
    return int(c.state["count"])


@in_place.action(name="state")
def state_in_place(c: Any) -> Any:
    return c.state


async def test_a_change_made_in_place_in_on_state_change_is_undone_and_logged(
    driver_factory: DriverFactory, clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry([in_place])
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (_, cl):
        handle = cl.get_or_create("in_place", ["a"])
        with caplog.at_level(logging.ERROR, logger="pyrivet.actor"):
            assert [await handle.bump(), await handle.bump()] == [1, 2]
            assert await handle.state() == {"count": 2, "seen": 0}
        assert "State mutations are not allowed inside onStateChange." in caplog.text


def status_of(inst: Any) -> ActorStatus:
    status: ActorStatus = inst.status
    return status


async def test_a_status_move_the_machine_does_not_allow_names_both_states(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([counter]), storage=driver_factory(), clock=clock) as (rt, cl):
        handle = cl.get_or_create("counter", ["a"])
        await handle.increment()
        inst = rt._instances[await handle.resolve()]
        with pytest.raises(RuntimeError, match="cannot go from running to loading"):
            inst.set_status(ActorStatus.LOADING)
        assert status_of(inst) is ActorStatus.RUNNING
        await rt.sleep(inst.actor_id)
        assert status_of(inst) is ActorStatus.STOPPED
        with pytest.raises(RuntimeError, match="cannot go from stopped to running"):
            inst.set_status(ActorStatus.RUNNING)


def test_a_recycled_in_flight_record_comes_back_with_only_the_new_values() -> None:
    """`InFlight` objects are reused (one per commit of an actor that waits for each);
    a reused one must not carry the old ticket or snapshot."""
    first = InFlight.take(3, b"old")
    first.ticket = cast(Any, object())
    first.recycle()
    again = InFlight.take(7, None)
    assert (again.durable_seq, again.durable_state, again.ticket) == (7, None, None)
