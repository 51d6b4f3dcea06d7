"""Durable queues: ``c.queue`` inside the actor and ``handle.send`` from clients."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import pydantic
import pytest

from pyrivet import (
    ActorDefinition,
    ActorOptions,
    CommitError,
    DefinitionError,
    ForbiddenError,
    Queue,
    QueueError,
    Registry,
    Runtime,
    actor,
)
from pyrivet.storage import ActorStore, MemoryDriver
from pyrivet.testing import MockClock, run_actors

DriverFactory = Callable[[], ActorStore]


@dataclass
class Job:
    id: str
    size: int = 1


def worker_def(**options: Any) -> ActorDefinition[Any]:
    """An actor with a typed completable queue, a plain queue, and actions that receive."""
    worker = actor(
        "worker",
        state={"done": []},
        queues={
            "jobs": Queue(Job, completion=int),
            "notes": Queue(),
            "guarded": Queue(can_publish=lambda c: False),
        },
        options=ActorOptions(**options),
    )

    @worker.action
    async def send_inside(c: Any, name: str, body: Any) -> int:
        message = await c.queue.send(name, body)
        return int(message.id)

    @worker.action
    def take(c: Any, names: list[str] | None = None, count: int = 1) -> list[Any]:
        return [[m.id, m.name, _plain(m.body)] for m in c.queue.try_next_batch(names, count=count)]

    @worker.action
    async def take_wait(c: Any, timeout: float) -> Any:
        message = await c.queue.next(timeout=timeout)
        return None if message is None else [message.id, _plain(message.body)]

    @worker.action
    async def complete_one(c: Any, response: Any) -> int | None:
        message = c.queue.try_next(["jobs"], completable=True)
        if message is None:
            return None
        await message.complete(response)
        return int(message.id)

    @worker.action
    async def receive_and_fail(c: Any) -> None:
        message = c.queue.try_next(completable=True)
        assert message is not None
        raise RuntimeError("the receiver failed")

    @worker.action
    async def receive_twice(c: Any) -> None:
        assert c.queue.try_next(completable=True) is not None
        c.queue.try_next(completable=True)

    @worker.action
    async def complete_twice(c: Any) -> None:
        message = c.queue.try_next(completable=True)
        await message.complete(1)
        await message.complete(2)

    return worker


async def wait_stored(runtime: Runtime, actor_id: str, count: int) -> None:
    """Let sends running in other tasks reach storage (each step yields to them)."""
    store = runtime._services.store
    for _ in range(50):
        if len((await store.load_queue(actor_id)).messages) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{count} message(s) never reached the store")


def _plain(body: Any) -> Any:
    return [body.id, body.size] if isinstance(body, Job) else body


async def test_send_and_receive_in_order_with_name_filters(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([worker_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("worker", ["a"])
        await handle.send("jobs", {"id": "j1"})
        await handle.send("notes", "n1")
        await handle.send("jobs", {"id": "j2", "size": 3})
        assert await handle.take(["notes"]) == [[2, "notes", "n1"]]
        assert await handle.take(None, 5) == [[1, "jobs", ["j1", 1]], [3, "jobs", ["j2", 3]]]
        assert await handle.take() == []
        # Sent from inside the actor: ids keep counting.
        assert await handle.send_inside("notes", "n2") == 4


async def test_messages_and_ids_survive_sleep(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([worker_def()]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("worker", ["a"])
        await handle.send("notes", "a")
        await handle.send("notes", "b")
        assert await handle.take() == [[1, "notes", "a"]]
        actor_id = await handle.resolve()
        await runtime.sleep(actor_id)
        assert not runtime.is_awake(actor_id)
        await handle.send("notes", "c")  # wakes it
        assert await handle.take(None, 5) == [[2, "notes", "b"], [3, "notes", "c"]]
        await runtime.sleep(actor_id)
        await handle.send("notes", "d")
        assert await handle.take() == [[4, "notes", "d"]]


async def test_completable_message_not_completed_is_delivered_again(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([worker_def()]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("worker", ["a"])
        await handle.send("jobs", {"id": "j1"})
        with pytest.raises(Exception, match="internal"):
            await handle.receive_and_fail()
        # The failed receiver's hold ended with its call: the message is back.
        assert await handle.complete_one(5) == 1
        assert await handle.complete_one(5) is None
        await runtime.sleep(await handle.resolve())
        assert await handle.take() == []


async def test_completable_receive_errors(driver_factory: DriverFactory, clock: MockClock) -> None:
    async with run_actors(Registry([worker_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("worker", ["a"])
        await handle.send("jobs", {"id": "j1"})
        await handle.send("jobs", {"id": "j2"})
        with pytest.raises(QueueError) as caught:
            await handle.receive_twice()
        assert caught.value.code == "previous_message_not_completed"
        with pytest.raises(QueueError) as caught:
            await handle.complete_twice()
        assert caught.value.code == "already_completed"
        # The first completion counted; the other message is still there.
        assert await handle.take(None, 5) == [[2, "jobs", ["j2", 1]]]


async def test_two_concurrent_completable_receivers_never_share_a_message(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    seen: list[int] = []
    both_hold = asyncio.Event()
    pair = actor("pair", queues=["jobs"])

    @pair.action
    async def hold(c: Any) -> int | None:
        message = c.queue.try_next(completable=True)
        if message is None:
            return None
        seen.append(message.id)
        if len(seen) == 2:
            both_hold.set()
        await both_hold.wait()
        await message.complete()
        return int(message.id)

    async with run_actors(Registry([pair]), storage=driver_factory(), clock=clock) as (_, client):
        handle = client.get_or_create("pair", ["a"])
        await handle.send("jobs", 1)
        await handle.send("jobs", 2)
        got = await asyncio.gather(handle.hold(), handle.hold())
        assert sorted(got) == [1, 2]
        assert await handle.hold() is None


async def test_send_wait_gets_the_completion_or_times_out(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([worker_def()]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("worker", ["a"])
        waiting = asyncio.ensure_future(handle.send("jobs", {"id": "j1"}, wait=True, timeout=30))
        # The send is in flight in another task: poll until its message is there.
        for _ in range(20):
            if await handle.complete_one(42) == 1:
                break
            await asyncio.sleep(0)
        else:
            raise AssertionError("the waiting send's message never arrived")
        result = await waiting
        assert (result.status, result.response) == ("completed", 42)

        timing_out = asyncio.ensure_future(handle.send("jobs", {"id": "j2"}, wait=True, timeout=5))
        while await handle.take(["notes"]) == [] and not timing_out.done():
            await clock.advance(1)
        result = await timing_out
        assert result.timed_out
        # The message stays queued after the sender gave up.
        assert await handle.take() == [[2, "jobs", ["j2", 1]]]


async def test_waiting_sender_gets_completion_after_the_actor_slept(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    async with run_actors(Registry([worker_def()]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("worker", ["a"])
        actor_id = await handle.resolve()
        waiting = asyncio.ensure_future(handle.send("jobs", {"id": "j1"}, wait=True, timeout=60))
        await wait_stored(runtime, actor_id, 1)
        await runtime.sleep(actor_id)
        assert not waiting.done()
        assert await handle.complete_one(99) == 1
        result = await waiting
        assert (result.status, result.response) == ("completed", 99)


async def test_bad_sends_change_nothing(driver_factory: DriverFactory, clock: MockClock) -> None:
    worker = worker_def(max_queue_size=2, max_queue_message_size=64)
    async with run_actors(Registry([worker]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("worker", ["a"])
        with pytest.raises(QueueError) as caught:
            await handle.send("jobs", {"size": 1})
        assert caught.value.code == "invalid_payload"
        with pytest.raises(QueueError) as caught:
            await handle.send("notes", "x" * 100)
        assert caught.value.code == "message_too_large"
        with pytest.raises(ForbiddenError):
            await handle.send("guarded", 1)
        # Unknown names are accepted and dropped (RivetKit compatibility), and counted.
        await handle.send("nope", 1)
        result = await handle.send("nope", 1, wait=True, timeout=1)
        assert result.status == "completed"
        assert runtime._services.queue_waiters.dropped_unknown == 2
        await handle.send("notes", 1)
        await handle.send("notes", 2)
        with pytest.raises(QueueError) as caught:
            await handle.send("notes", 3)
        assert caught.value.code == "full"
        assert "Limit is 2 messages" in caught.value.message
        assert await handle.take(None, 5) == [[1, "notes", 1], [2, "notes", 2]]


async def test_run_loop_consumes_and_the_actor_sleeps_while_waiting(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    consumer = actor(
        "consumer",
        state={"total": 0},
        queues={"add": Queue(int, completion=int)},
        options=ActorOptions(sleep_timeout=5),
    )

    @consumer.run
    async def run(c: Any) -> None:
        async for message in c.queue.iter(completable=True):
            c.state["total"] += message.body
            await message.complete(c.state["total"])

    @consumer.action
    def total(c: Any) -> int:
        return int(c.state["total"])

    async with run_actors(Registry([consumer]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("consumer", ["a"])
        assert (await handle.send("add", 2, wait=True, timeout=10)).response == 2
        assert (await handle.send("add", 3, wait=True, timeout=10)).response == 5
        actor_id = await handle.resolve()
        await clock.advance(6)
        assert not runtime.is_awake(actor_id)
        # A send wakes it, and the run loop takes the message.
        assert (await handle.send("add", 4, wait=True, timeout=10)).response == 9
        assert await handle.total() == 9


async def test_wait_for_names_and_enqueue_and_wait(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    pinger = actor("pinger", queues={"ping": Queue(), "pong": Queue()})

    @pinger.run
    async def run(c: Any) -> None:
        while True:
            try:
                message = await c.queue.wait_for_names(["ping"], completable=True)
            except Exception:
                return
            await message.complete(f"pong {message.body}")

    @pinger.action
    async def ask(c: Any, body: Any) -> Any:
        return await c.queue.enqueue_and_wait("ping", body, timeout=10)

    @pinger.action
    async def wait_pong(c: Any) -> Any:
        return await c.queue.wait_for_names(["pong"], timeout=3)

    async with run_actors(Registry([pinger]), storage=driver_factory(), clock=clock) as (
        _,
        client,
    ):
        handle = client.get_or_create("pinger", ["a"])
        assert await handle.ask(7) == "pong 7"
        waiting = asyncio.ensure_future(handle.wait_pong())
        while not waiting.done():
            await clock.advance(1)
        with pytest.raises(QueueError) as caught:
            await waiting
        assert caught.value.code == "timed_out"


async def test_sends_in_on_sleep_are_kept(driver_factory: DriverFactory, clock: MockClock) -> None:
    worker = worker_def()

    @worker.on_sleep
    async def on_sleep(c: Any) -> None:
        await c.queue.send("notes", "from on_sleep")

    async with run_actors(Registry([worker]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("worker", ["a"])
        await runtime.sleep(await handle.resolve())
        assert await handle.take() == [[1, "notes", "from on_sleep"]]


async def test_a_failed_commit_undoes_the_send(clock: MockClock) -> None:
    store = MemoryDriver()
    async with run_actors(Registry([worker_def()]), storage=store, clock=clock) as (_, client):
        handle = client.get_or_create("worker", ["a"])
        await handle.send("notes", "kept")
        store.fail_next_commit(OSError("disk full"))
        with pytest.raises(CommitError):
            await handle.send("notes", "lost")
        await handle.send("notes", "after")
        assert [m[2] for m in await handle.take(None, 5)] == ["kept", "after"]


async def test_queue_misuse_inside_the_actor(clock: MockClock) -> None:
    plain = actor("plain")
    worker = worker_def()

    @plain.action
    async def send(c: Any) -> None:
        await c.queue.send("jobs", 1)

    async with run_actors(Registry([plain, worker]), clock=clock) as (_, client):
        with pytest.raises(QueueError) as caught:
            await client.get_or_create("plain", ["a"]).action("send")
        assert caught.value.code == "unknown_queue"
        with pytest.raises(QueueError) as caught:
            await client.get_or_create("worker", ["a"]).send_inside("nope", 1)
        assert caught.value.code == "unknown_queue"
        with pytest.raises(QueueError) as caught:
            await client.get_or_create("worker", ["a"]).take(None, 0)
        assert "count" in caught.value.message


def test_queue_declarations_are_checked() -> None:
    with pytest.raises(DefinitionError, match="list of names"):
        actor("x", queues="jobs")
    with pytest.raises(DefinitionError, match="Queue"):
        actor("x", queues={"jobs": int})
    with pytest.raises(DefinitionError, match="non-empty"):
        actor("x", queues=[""])
    assert set(actor("x", queues=["a", "b"]).queues) == {"a", "b"}


async def test_message_received_but_not_completed_before_sleep_reaches_its_waiting_sender(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    holder = actor("holder", state={"mode": "hold", "received": 0}, queues=["jobs"])

    @holder.run
    async def run(c: Any) -> None:
        message = await c.queue.next(completable=True)
        if message is None:
            return
        c.state["received"] += 1
        if c.state["mode"] == "hold":
            await c.abort_signal.wait()  # slept with the message held, not completed
            return
        await message.complete(f"done after {c.state['received']} receives")

    @holder.action
    def set_mode(c: Any, mode: str) -> int:
        c.state["mode"] = mode
        return int(c.state["received"])

    async with run_actors(Registry([holder]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("holder", ["a"])
        actor_id = await handle.resolve()
        waiting = asyncio.ensure_future(handle.send("jobs", "job", wait=True, timeout=60))
        for _ in range(20):
            if await handle.set_mode("hold") == 1:
                break
            await asyncio.sleep(0)  # let the run loop take the message
        assert await handle.set_mode("hold") == 1
        await handle.set_mode("complete")
        await runtime.sleep(actor_id)
        assert not waiting.done()
        await handle.set_mode("complete")  # wakes it: the run loop gets the message again
        result = await waiting
        assert (result.status, result.response) == ("completed", "done after 2 receives")


async def test_relaxed_actor_acknowledges_sends_with_its_throttled_save(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    worker = worker_def(durability="relaxed", state_save_interval=2.0)
    async with run_actors(Registry([worker]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("worker", ["a"])
        await handle.take()  # started, and its first save interval begun
        sending = asyncio.ensure_future(handle.send("notes", "n"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not sending.done()
        while not sending.done():
            await clock.advance(0.5)
        await sending
        stored = await runtime._services.store.load_queue(await handle.resolve())
        assert [m.name for m in stored.messages] == ["notes"]


async def test_history_records_queue_operations(clock: MockClock) -> None:
    async with run_actors(Registry([worker_def()]), clock=clock) as (runtime, client):
        handle = client.get_or_create("worker", ["a"])
        await handle.send("notes", "n")
        await handle.take()
        ops = [op for entry in await runtime.history(await handle.resolve()) for op in entry.ops]
        assert ("queue.put", 1, "notes") in ops
        assert ("queue.delete", 1) in ops


async def test_destroy_ends_the_wait_of_senders(clock: MockClock) -> None:
    worker = worker_def()

    @worker.action
    def destroy(c: Any) -> None:
        c.destroy()

    async with run_actors(Registry([worker]), clock=clock) as (runtime, client):
        handle = client.get_or_create("worker", ["a"])
        actor_id = await handle.resolve()
        waiting = asyncio.ensure_future(handle.send("notes", 1, wait=True))
        await wait_stored(runtime, actor_id, 1)
        await handle.destroy()
        with pytest.raises(QueueError) as caught:
            await asyncio.wait_for(waiting, 10)
        assert caught.value.code == "completion_waiter_dropped"


class Point(msgspec.Struct):
    x: int
    y: int


class Order(pydantic.BaseModel):
    item: str
    qty: int = 1


async def test_msgspec_and_pydantic_message_types(clock: MockClock) -> None:
    typed = actor("typed", queues={"points": Queue(Point), "orders": Queue(Order, Order)})

    @typed.action
    async def take(c: Any) -> list[Any]:
        point = c.queue.try_next(["points"])
        order = c.queue.try_next(["orders"], completable=True)
        assert isinstance(point.body, Point) and isinstance(order.body, Order)
        with pytest.raises(QueueError) as caught:
            await order.complete({"item": 5})
        assert caught.value.code == "invalid_completion_payload"
        await order.complete(Order(item="done"))
        return [point.body.x + point.body.y, order.body.item, order.body.qty]

    async with run_actors(Registry([typed]), clock=clock) as (runtime, client):
        handle = client.get_or_create("typed", ["a"])
        await handle.send("points", {"x": 1, "y": 2})
        waiting = asyncio.ensure_future(handle.send("orders", {"item": "tea"}, wait=True))
        await wait_stored(runtime, await handle.resolve(), 2)
        # Another handle: this one's sends wait behind its waiting send.
        other = client.get_or_create("typed", ["a"])
        with pytest.raises(QueueError):
            await other.send("points", {"x": "one", "y": 2})
        with pytest.raises(QueueError):
            await other.send("orders", {"qty": 2})
        assert await handle.take() == [3, "tea", 1]
        assert (await waiting).response == {"item": "done", "qty": 1}


async def test_an_actor_sends_to_another_actors_queue_through_its_client(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    """``c.client()`` handles send like outside ones, waiting for a completion too."""
    dispatcher = actor("dispatcher")

    @dispatcher.action
    async def dispatch(c: Any, job_id: str) -> None:
        await c.client().get_or_create("worker", ["w"]).send("jobs", {"id": job_id})

    @dispatcher.action
    async def dispatch_and_wait(c: Any, job_id: str) -> list[Any]:
        worker = c.client().get_or_create("worker", ["w"])
        result = await worker.send("jobs", {"id": job_id}, wait=True, timeout=5.0)
        return [result.status, result.response]

    registry = Registry([worker_def(), dispatcher])
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (_, client):
        await client.get_or_create("dispatcher", ["d"]).dispatch("j1")
        worker = client.get_or_create("worker", ["w"])
        assert await worker.take(["jobs"]) == [[1, "jobs", ["j1", 1]]]
        dispatcher_handle = client.get_or_create("dispatcher", ["d"])
        waiting = asyncio.ensure_future(dispatcher_handle.dispatch_and_wait("j2"))
        completed = None
        for _ in range(10_000):  # until the send (another actor's commit) has landed
            completed = await worker.complete_one(42)
            if completed is not None:
                break
            await asyncio.sleep(0)
        assert completed == 2
        assert await waiting == ["completed", 42]
