"""Actor-to-actor calls: ``c.client()`` in actions, hooks, ``run`` and schedules.

A call from one actor to another goes through the same client outside code uses, over
the runtime's in-process transport: the same handles, the same typed errors, and the
called actor's reply is released only once its change is durable, so a reply that
depends on it is too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, cast

import pytest

from pyrivet import (
    ActorError,
    ActorNotFoundError,
    DuplicateKeyError,
    InternalError,
    Registry,
    UserError,
    actor,
)
from pyrivet.actor import ActorConnectionRef, ActorContext
from pyrivet.storage import ActorStore, CommitRecord
from pyrivet.testing import MockClock, run_actors

DriverFactory = Callable[[], ActorStore]

#: Bound on a wait that must end at once when the code is right (a deadlock or a lost
#: event would otherwise hang the test until its pytest timeout). Never reached on success.
GUARD = 10.0

Ctx = ActorContext[Any]

# -- the actors ------------------------------------------------------------------------

shard = actor("shard", state={"count": 0})


@shard.action
def add(c: Ctx, amount: int = 1) -> int:
    c.state["count"] += amount
    c.broadcast("count", c.state["count"])
    return int(c.state["count"])


@shard.action
def fail(c: Ctx) -> None:
    raise UserError("shard refused", code="refused", metadata={"shard": c.key[0]})


@shard.action
def boom(c: Ctx) -> None:
    raise RuntimeError("a detail that must not leave the shard")


@shard.action
async def call_back(c: Ctx, coord_key: str) -> str:
    # Runs while the coordinator's action that called it is suspended, awaiting it.
    return str(await c.client().get("coord", [coord_key]).note("from shard"))


coord = actor("coord", state={"notes": [], "total": 0})


@coord.action
async def relay(c: Ctx, key: str, amount: int) -> int:
    """Returns the shard's reply and changes nothing of its own."""
    return int(await c.client().get_or_create("shard", [key]).add(amount))


@coord.action
async def relay_and_record(c: Ctx, key: str, amount: int) -> int:
    result = await c.client().get_or_create("shard", [key]).call(add, amount)
    c.state["total"] += result
    return result


@coord.action
def note(c: Ctx, text: str) -> str:
    c.state["notes"].append(text)
    return f"noted {len(c.state['notes'])}"


@coord.action
async def cycle(c: Ctx, key: str) -> list[Any]:
    c.state["notes"].append("before")
    reply = await c.client().get_or_create("shard", [key]).call_back(c.key[0])
    c.state["notes"].append("after")
    return [reply, c.state["notes"]]


@coord.action
async def call_self(c: Ctx, text: str) -> str:
    return str(await c.client().get_for_id("coord", c.actor_id).note(text))


@coord.action
async def shard_failure(c: Ctx, key: str, action: str) -> None:
    """Calls a failing shard action and lets its error escape."""
    await c.client().get_or_create("shard", [key]).action(action)


@coord.action
async def missing(c: Ctx) -> str:
    try:
        await c.client().get("shard", ["nobody"]).add(1)
    except ActorNotFoundError as exc:
        return f"{exc.group}/{exc.code}"
    return "found"


@coord.action
async def create_twice(c: Ctx, key: str) -> list[str]:
    client = c.client()
    handle = await client.create("shard", [key])
    await handle.add(7)
    try:
        await client.create("shard", [key])
    except DuplicateKeyError as exc:
        return [await handle.resolve(), exc.code]
    return [await handle.resolve(), "created twice"]


@coord.action
def schedule_relay(c: Ctx, key: str, amount: int) -> str:
    return c.schedule.after(1.0, relay, key, amount)


@coord.action
def client_identity(c: Ctx) -> bool:
    return c.client() is c.client()


waker = actor("waker", state={})


@waker.on_wake
async def waker_wakes(c: Ctx) -> None:
    c.vars = {"shard_count": await c.client().get_or_create("shard", ["from-wake"]).add(1)}


@waker.action
def shard_count_at_wake(c: Ctx) -> int:
    return int(c.vars["shard_count"])


runner = actor("runner", state={})


@runner.run
async def runner_run(c: Ctx) -> None:
    await c.client().get_or_create("shard", ["from-run"]).add(10)


@runner.action
def ping(c: Ctx) -> str:
    return "pong"


listener = actor("listener", state={}, create_vars=lambda c: {"seen": [], "heard": asyncio.Event()})


@listener.action
async def listen(c: Ctx, key: str) -> str | None:
    seen: list[int] = c.vars["seen"]
    heard: asyncio.Event = c.vars["heard"]

    def on_count(value: int) -> None:
        seen.append(value)
        heard.set()

    conn = c.client().get_or_create("shard", [key]).connect()
    conn.on("count", on_count)
    await conn.open()
    c.vars["conn"] = conn
    return conn.actor_id


@listener.action
async def heard(c: Ctx, count: int) -> list[int]:
    """The shard events heard so far, once there are at least ``count``."""
    seen: list[int] = c.vars["seen"]
    event: asyncio.Event = c.vars["heard"]
    while len(seen) < count:
        event.clear()
        await event.wait()
    return list(seen)


@listener.action
async def add_over_conn(c: Ctx, amount: int) -> int:
    conn: ActorConnectionRef = c.vars["conn"]
    return int(await conn.add(amount))


@listener.on_sleep
async def listener_sleeps(c: Ctx) -> None:
    conn: ActorConnectionRef | None = (c.vars or {}).get("conn")
    if conn is not None:
        await conn.close()


#: Actors whose start or shutdown hooks call back into themselves (directly or
#: through a shard); each records the error code it got.
async def code_of(call: Any) -> str:
    try:
        await call
    except ActorError as exc:
        return exc.code
    return "no error"


async def loopback_state(c: Ctx, input: Any) -> dict[str, Any]:
    me = c.client().get_or_create("loopback", list(c.key))
    return {"codes": [await code_of(me.codes())]}


loopback = actor("loopback", create_state=loopback_state)


@loopback.on_wake
async def loopback_wakes(c: Ctx) -> None:
    c.state["codes"].append(await code_of(c.client().get_for_id("loopback", c.actor_id).codes()))
    through_shard = c.client().get_or_create("shard", ["loop"]).call_loopback(c.key[0])
    c.state["codes"].append(await code_of(through_shard))


@loopback.on_sleep
async def loopback_sleeps(c: Ctx) -> None:
    c.state["codes"].append(await code_of(c.client().get_for_id("loopback", c.actor_id).codes()))


@loopback.action
def codes(c: Ctx) -> list[str]:
    return list(c.state["codes"])


@shard.action
async def call_loopback(c: Ctx, key: str) -> list[str]:
    return list(await c.client().get("loopback", [key]).codes())


def registry() -> Registry:
    return Registry([shard, coord, waker, runner, listener, loopback])


async def guarded(awaitable: Any) -> Any:
    async with asyncio.timeout(GUARD):
        return await awaitable


# -- calls -----------------------------------------------------------------------------


async def test_an_action_calls_another_actor(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(registry(), storage=driver_factory(), clock=clock) as (_, client):
        hub = client.get_or_create("coord", ["hub"])
        assert await hub.relay("s1", 5) == 5
        assert await hub.relay_and_record("s1", 2) == 7
        assert await client.get("shard", ["s1"]).action("add", 0) == 7
        assert await hub.call(note, "done") == "noted 1"
        created = await hub.create_twice("fresh")
        assert created[1] == "duplicate_key"
        assert await client.get_for_id("shard", created[0]).add(0) == 7
        assert await hub.client_identity() is True


async def test_a_call_cycle_interleaves_instead_of_deadlocking(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(registry(), storage=driver_factory(), clock=clock) as (_, client):
        hub = client.get_or_create("coord", ["hub"])
        # coord.cycle awaits shard.call_back, which calls coord.note: the note runs
        # while cycle is suspended at its await, between its two changes.
        reply, notes = await guarded(hub.cycle("s1"))
        assert reply == "noted 2"
        assert notes == ["before", "from shard", "after"]


async def test_an_actor_calls_itself(driver_factory: DriverFactory, clock: MockClock) -> None:
    async with run_actors(registry(), storage=driver_factory(), clock=clock) as (_, client):
        hub = client.get_or_create("coord", ["hub"])
        assert await guarded(hub.call_self("one")) == "noted 1"
        assert await guarded(hub.call_self("two")) == "noted 2"


async def test_calls_from_on_wake_and_run(driver_factory: DriverFactory, clock: MockClock) -> None:
    async with run_actors(registry(), storage=driver_factory(), clock=clock) as (_, client):
        heard: list[int] = []
        arrived = asyncio.Event()

        def on_count(value: int) -> None:
            heard.append(value)
            arrived.set()

        async with client.get_or_create("shard", ["from-run"]).connect() as conn:
            conn.on("count", on_count)
            assert await client.get_or_create("runner", ["r"]).ping() == "pong"
            await guarded(arrived.wait())
            assert heard == [10]
        assert await client.get_or_create("waker", ["w"]).shard_count_at_wake() == 1
        assert await client.get("shard", ["from-wake"]).add(0) == 1


async def test_a_scheduled_action_calls_another_actor(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(registry(), storage=driver_factory(), clock=clock) as (_, client):
        arrived = asyncio.Event()
        async with client.get_or_create("shard", ["sched"]).connect() as conn:
            conn.on("count", lambda value: arrived.set())
            await client.get_or_create("coord", ["hub"]).schedule_relay("sched", 4)
            assert not arrived.is_set()
            await clock.advance(1.0)
            await guarded(arrived.wait())
        assert await client.get("shard", ["sched"]).add(0) == 4


async def test_an_actor_connects_to_another_and_receives_its_events(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(registry(), storage=driver_factory(), clock=clock) as (_, client):
        ear = client.get_or_create("listener", ["ear"])
        shard_id = await ear.listen("loud")
        assert shard_id == await client.get("shard", ["loud"]).resolve()
        await client.get("shard", ["loud"]).add(3)
        assert await guarded(ear.heard(1)) == [3]
        # Actions over the actor's own connection; their events come back on it.
        assert await ear.add_over_conn(2) == 5
        assert await guarded(ear.heard(2)) == [3, 5]


async def test_a_call_back_into_an_actor_from_its_own_start_or_shutdown_hooks_fails_at_once(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(registry(), storage=driver_factory(), clock=clock) as (runtime, client):
        loop = client.get_or_create("loopback", ["l1"])
        # create_state (by key), on_wake (by id, and through the shard): each call would
        # wait for the start that made it; it fails with actor/call_cycle instead.
        assert await guarded(loop.codes()) == ["call_cycle"] * 3
        await guarded(runtime.sleep(await loop.resolve()))
        # on_sleep's call failed the same way; the state it saved says so.
        assert (await guarded(loop.codes()))[:4] == ["call_cycle"] * 4


# -- errors ----------------------------------------------------------------------------


def error_fields(exc: ActorError) -> tuple[type[ActorError], str, str, str, Any]:
    return (type(exc), exc.group, exc.code, exc.message, exc.metadata)


async def outside_error(awaitable: Any) -> ActorError:
    try:
        await awaitable
    except ActorError as exc:
        return exc
    raise AssertionError("the call did not fail")


async def test_errors_of_the_called_actor_reach_the_caller_as_an_outside_client_sees_them(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(registry(), storage=driver_factory(), clock=clock) as (_, client):
        hub = client.get_or_create("coord", ["hub"])
        direct = await outside_error(client.get_or_create("shard", ["s1"]).fail())
        assert isinstance(direct, UserError)
        assert (direct.code, direct.metadata) == ("refused", {"shard": "s1"})
        # Uncaught in coord, the shard's UserError passes through it unchanged.
        via_coord = await outside_error(hub.shard_failure("s1", "fail"))
        assert error_fields(via_coord) == error_fields(direct)

        direct_internal = await outside_error(client.get("shard", ["s1"]).boom())
        via_coord_internal = await outside_error(hub.shard_failure("s1", "boom"))
        assert isinstance(via_coord_internal, InternalError)
        assert error_fields(via_coord_internal) == error_fields(direct_internal)
        assert "must not leave" not in via_coord_internal.message

        assert await hub.missing() == "actor/not_found"


# -- the output gate -------------------------------------------------------------------


class HoldingStore:
    """Wraps a driver: commits that touch ``hold_actor`` wait for ``release``; records
    ``(actor_id, seq)`` of every record once the driver has made it durable."""

    def __init__(self, inner: ActorStore) -> None:
        self.inner = inner
        self.hold_actor: str | None = None
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.durable: list[tuple[str, int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def commit(self, batch: Sequence[CommitRecord]) -> None:
        if self.hold_actor is not None and any(r.actor_id == self.hold_actor for r in batch):
            self.entered.set()
            await self.release.wait()
        await self.inner.commit(batch)
        self.durable.extend((r.actor_id, r.seq) for r in batch)

    def durable_seq(self, actor_id: str) -> int:
        return max((seq for aid, seq in self.durable if aid == actor_id), default=0)

    def as_store(self) -> ActorStore:
        return cast(ActorStore, self)


@pytest.fixture
def store(driver_factory: DriverFactory) -> HoldingStore:
    return HoldingStore(driver_factory())


async def spin(rounds: int = 50) -> None:
    """Let the event loop run a while (no time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def test_a_reply_relaying_another_actors_reply_waits_for_its_durability(
    store: HoldingStore, clock: MockClock
) -> None:
    async with run_actors(registry(), storage=store.as_store(), clock=clock) as (_, client):
        hub = client.get_or_create("coord", ["hub"])
        target = client.get_or_create("shard", ["s1"])
        assert await hub.relay("s1", 1) == 1
        shard_id = await target.resolve()
        before = store.durable_seq(shard_id)

        store.hold_actor = shard_id
        call = asyncio.ensure_future(hub.relay("s1", 5))
        try:
            await store.entered.wait()
            await spin()
            # coord changed nothing: only the shard's durability holds its reply back.
            assert not call.done(), "coord replied before the shard's change was durable"
            assert (await store.inner.load_state(shard_id)).seq == before
        finally:
            store.release.set()
        assert await guarded(call) == 6
        assert store.durable_seq(shard_id) > before


async def test_a_reply_depending_on_another_actor_is_released_after_both_are_durable(
    store: HoldingStore, clock: MockClock
) -> None:
    async with run_actors(registry(), storage=store.as_store(), clock=clock) as (_, client):
        hub = client.get_or_create("coord", ["hub"])
        assert await hub.relay_and_record("s1", 1) == 1
        hub_id = await hub.resolve()
        shard_id = await client.get("shard", ["s1"]).resolve()

        # Hold coord's commit: the shard's change becomes durable, coord's reply waits.
        store.hold_actor = hub_id
        call = asyncio.ensure_future(hub.relay_and_record("s1", 5))
        try:
            await store.entered.wait()
            await spin()
            assert not call.done(), "coord replied before its own change was durable"
            shard_seq = store.durable_seq(shard_id)
            hub_seq = store.durable_seq(hub_id)
            # The shard's change was durable before coord's commit even started.
            assert store.durable[-1][0] == shard_id
        finally:
            store.release.set()
        assert await guarded(call) == 6
        # Both changes were durable when the reply arrived: the shard's first.
        new_hub_seq = store.durable_seq(hub_id)
        assert new_hub_seq > hub_seq
        assert store.durable.index((shard_id, shard_seq)) < store.durable.index(
            (hub_id, new_hub_seq)
        )
        assert (await store.inner.load_state(shard_id)).seq == shard_seq
        assert (await store.inner.load_state(hub_id)).seq == new_hub_seq
