"""Lifecycle: hook order, vars, hook failures, run, sleep/destroy, wait_until, keep_awake, grace."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pyrivet import (
    ActorNotFoundError,
    ActorOptions,
    InternalError,
    Registry,
    Runtime,
    UserError,
    actor,
)
from pyrivet.client import Client
from pyrivet.errors import ActorStoppingError
from pyrivet.storage import ActorStore
from pyrivet.testing import MockClock, run_actors

Env = tuple[Runtime, Client]

#: What the hooks of `lc` did, in order (cleared before each test).
trace: list[str] = []
#: Hook name -> exception it raises once (popped when raised).
fail: dict[str, BaseException] = {}
#: Set by tests to let background work of the actors finish.
gates: dict[str, asyncio.Event] = {}


def _hook(name: str) -> None:
    trace.append(name)
    exc = fail.pop(name, None)
    if exc is not None:
        raise exc


def _create_state(c: Any, input: Any) -> dict[str, Any]:
    _hook("create_state")
    return {"count": 0, "done": False}


def _create_vars(c: Any) -> dict[str, Any]:
    _hook("create_vars")
    return {"calls": 0}


lc = actor(
    "lc",
    create_state=_create_state,
    create_vars=_create_vars,
    options=ActorOptions(sleep_timeout=10, sleep_grace_period=5),
)


@lc.on_create
def _on_create(c: Any, input: Any) -> None:
    _hook("on_create")


@lc.on_wake
async def _on_wake(c: Any) -> None:
    _hook("on_wake")


@lc.run
async def _run(c: Any) -> None:
    trace.append(f"run aborted={c.aborted}")
    await c.abort_signal.wait()
    trace.append(f"run end aborted={c.aborted}")


@lc.on_sleep
def _on_sleep(c: Any) -> None:
    trace.append(f"on_sleep aborted={c.aborted}")


@lc.on_destroy
def _on_destroy(c: Any) -> None:
    trace.append(f"on_destroy aborted={c.aborted}")


@lc.action
def increment(c: Any) -> int:
    c.state["count"] += 1
    c.vars["calls"] += 1
    return int(c.state["count"])


@lc.action
def get(c: Any) -> dict[str, Any]:
    return {"state": c.state, "vars": c.vars}


@lc.action
def go_to_sleep(c: Any) -> None:
    c.sleep()
    c.sleep()  # a second request is a no-op


@lc.action
def self_destruct(c: Any) -> str:
    c.destroy()
    try:
        c.destroy()
    except ActorStoppingError:
        return "second destroy refused"
    return "second destroy accepted"


@lc.action
def finish_later(c: Any) -> None:
    async def work() -> None:
        await gates["work"].wait()
        c.state["done"] = True

    c.wait_until(work())


@lc.action
def stay_awake_for_a_while(c: Any) -> None:
    c.wait_until(c.keep_awake(gates["busy"].wait()))


# -- a second actor type: static vars, no run ---------------------------------------

plain = actor("plain", state={"n": 0}, vars={"seen": []}, options=ActorOptions(sleep_timeout=10))


@plain.action
def remember(c: Any, item: str) -> list[str]:
    c.vars["seen"].append(item)
    return list(c.vars["seen"])


registry = Registry([lc, plain])


@pytest.fixture(autouse=True)
def _reset() -> None:
    trace.clear()
    fail.clear()
    gates.clear()
    gates.update(work=asyncio.Event(), busy=asyncio.Event())


@pytest.fixture
async def env(driver_factory: Callable[[], ActorStore], clock: MockClock) -> AsyncIterator[Env]:
    async with run_actors(registry, storage=driver_factory(), clock=clock) as pair:
        yield pair


async def test_hook_order_on_first_start(env: Env, clock: MockClock) -> None:
    _, client = env
    assert await client.get_or_create("lc", "a").increment() == 1
    await clock.settle()
    assert trace == ["create_state", "on_create", "create_vars", "on_wake", "run aborted=False"]


async def test_hook_order_on_sleep_and_wake(env: Env, clock: MockClock) -> None:
    runtime, client = env
    handle = client.get_or_create("lc", "a")
    await handle.increment()
    await clock.settle()
    trace.clear()
    await runtime.sleep(await handle.resolve())
    assert trace == ["on_sleep aborted=True", "run end aborted=True"]
    trace.clear()
    assert await handle.increment() == 2
    await clock.settle()
    assert trace == ["create_vars", "on_wake", "run aborted=False"]


async def test_vars_are_rebuilt_on_wake_and_never_persisted(env: Env) -> None:
    runtime, client = env
    handle = client.get_or_create("lc", "v")
    await handle.increment()
    await handle.increment()
    assert (await handle.get())["vars"] == {"calls": 2}
    actor_id = await handle.resolve()
    await runtime.sleep(actor_id)
    assert not runtime.is_awake(actor_id)
    assert await handle.get() == {"state": {"count": 2, "done": False}, "vars": {"calls": 0}}
    history = await runtime.history(actor_id)
    assert all("calls" not in repr(entry.state) for entry in history)


async def test_static_vars_are_copied_per_actor_and_per_wake(env: Env) -> None:
    runtime, client = env
    a, b = client.get_or_create("plain", "a"), client.get_or_create("plain", "b")
    assert await a.remember("x") == ["x"]
    assert await a.remember("y") == ["x", "y"]
    assert await b.remember("z") == ["z"]
    assert plain.static_vars == {"seen": []}
    await runtime.sleep(await a.resolve())
    assert await a.remember("w") == ["w"]


@pytest.mark.parametrize("hook", ["create_state", "on_create"])
async def test_user_error_in_creation_hook_reaches_caller_and_nothing_is_created(
    env: Env, hook: str
) -> None:
    runtime, client = env
    fail[hook] = UserError("not today", code="closed", metadata={"retry": True})
    handle = client.get_or_create("lc", "f")
    with pytest.raises(UserError) as info:
        await handle.increment()
    assert (info.value.code, info.value.message, info.value.metadata) == (
        "closed",
        "not today",
        {"retry": True},
    )
    assert runtime.awake_count == 0
    with pytest.raises(ActorNotFoundError):
        await client.get("lc", "f").resolve()
    # A later call creates it from scratch.
    assert await handle.increment() == 1
    assert trace.count("create_state") == 2


@pytest.mark.parametrize("hook", ["create_state", "on_create", "create_vars", "on_wake"])
async def test_other_exception_in_start_hook_is_an_internal_error(
    env: Env, hook: str, caplog: pytest.LogCaptureFixture
) -> None:
    _, client = env
    fail[hook] = ValueError("secret detail")
    handle = client.get_or_create("lc", "g")
    with caplog.at_level(logging.ERROR, logger="pyrivet"), pytest.raises(InternalError) as info:
        await handle.increment()
    assert info.value.message == "An internal error occurred"
    assert info.value.metadata is None
    assert "secret" not in str(info.value)
    assert "secret detail" in caplog.text
    assert any(r.exc_info for r in caplog.records)
    # The next call retries the failed hook and succeeds.
    assert await handle.increment() == 1
    assert trace.count(hook) == 2


async def test_on_wake_failure_on_first_start_keeps_the_created_actor(env: Env) -> None:
    runtime, client = env
    fail["on_wake"] = UserError("warming up", code="warming_up")
    handle = client.get_or_create("lc", "w")
    with pytest.raises(UserError, match="warming up"):
        await handle.increment()
    assert runtime.awake_count == 0
    # The actor was created (create_state ran once); the next call only wakes it.
    assert await handle.increment() == 1
    assert trace.count("create_state") == 1
    assert trace.count("on_wake") == 2


async def test_on_wake_failure_on_wake_leaves_the_actor_asleep(env: Env) -> None:
    runtime, client = env
    handle = client.get_or_create("lc", "w2")
    await handle.increment()
    actor_id = await handle.resolve()
    await runtime.sleep(actor_id)
    fail["on_wake"] = UserError("later", code="later")
    with pytest.raises(UserError, match="later"):
        await handle.increment()
    assert not runtime.is_awake(actor_id)
    assert await handle.increment() == 2


async def test_run_does_not_block_readiness_and_sees_abort(env: Env, clock: MockClock) -> None:
    runtime, client = env
    handle = client.get_or_create("lc", "r")
    await handle.increment()
    await clock.settle()
    assert trace[-1] == "run aborted=False"
    # run is still waiting, yet calls are served.
    assert await handle.increment() == 2
    await runtime.sleep(await handle.resolve())
    assert trace[-2:] == ["on_sleep aborted=True", "run end aborted=True"]


async def test_a_running_run_handler_prevents_idle_sleep(env: Env, clock: MockClock) -> None:
    runtime, client = env
    handle = client.get_or_create("lc", "busy-run")
    await handle.increment()
    await clock.advance(100)
    assert runtime.is_awake(await handle.resolve())


crashy = actor("crashy", state={"n": 0}, options=ActorOptions(sleep_timeout=10))
crash_gate: dict[str, asyncio.Event] = {}


@crashy.run
async def _crashy_run(c: Any) -> None:
    go = asyncio.ensure_future(crash_gate["go"].wait())
    aborted = asyncio.ensure_future(c.abort_signal.wait())
    await asyncio.wait([go, aborted], return_when=asyncio.FIRST_COMPLETED)
    go.cancel()
    aborted.cancel()
    if c.aborted:
        return
    c.state["n"] += 100
    raise RuntimeError("run blew up")


@crashy.on_sleep
def _crashy_sleep(c: Any) -> None:
    trace.append("crashy on_sleep")


@crashy.action
def bump(c: Any) -> int:
    c.state["n"] += 1
    return int(c.state["n"])


quick = actor("quick", state={"n": 0}, options=ActorOptions(sleep_timeout=10))


@quick.run
def _quick_run(c: Any) -> None:
    trace.append("quick run returned")


@quick.action
def touch(c: Any) -> int:
    c.state["n"] += 1
    return int(c.state["n"])


async def test_run_raising_makes_the_actor_sleep(
    driver_factory: Callable[[], ActorStore],
    clock: MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    crash_gate["go"] = asyncio.Event()
    async with run_actors(Registry([crashy]), storage=driver_factory(), clock=clock) as (rt, cl):
        handle = cl.get_or_create("crashy")
        assert await handle.bump() == 1
        actor_id = await handle.resolve()
        with caplog.at_level(logging.ERROR, logger="pyrivet"):
            crash_gate["go"].set()
            await clock.settle()
        assert not rt.is_awake(actor_id)
        assert trace == ["crashy on_sleep"]
        assert "run blew up" in caplog.text
        # Slept, not destroyed: the state (including run's change) is kept.
        crash_gate["go"] = asyncio.Event()
        assert await handle.bump() == 102


async def test_run_returning_leaves_the_actor_to_idle_sleep(
    driver_factory: Callable[[], ActorStore], clock: MockClock
) -> None:
    async with run_actors(Registry([quick]), storage=driver_factory(), clock=clock) as (rt, cl):
        handle = cl.get_or_create("quick")
        await handle.touch()
        await clock.settle()
        actor_id = await handle.resolve()
        assert trace == ["quick run returned"]
        assert rt.is_awake(actor_id)
        await clock.advance(9)
        assert rt.is_awake(actor_id)
        await clock.advance(1)
        assert not rt.is_awake(actor_id)


async def test_c_sleep_runs_on_sleep_and_keeps_state(env: Env, clock: MockClock) -> None:
    runtime, client = env
    handle = client.get_or_create("lc", "s")
    await handle.increment()
    await handle.go_to_sleep()
    await clock.settle()
    actor_id = await handle.resolve()
    assert not runtime.is_awake(actor_id)
    assert trace.count("on_sleep aborted=True") == 1
    assert (await handle.get())["state"]["count"] == 1
    assert trace.count("create_state") == 1


async def test_c_destroy_runs_on_destroy_and_deletes_state(env: Env, clock: MockClock) -> None:
    runtime, client = env
    handle = client.get_or_create("lc", "d")
    await handle.increment()
    await handle.increment()
    old_id = await handle.resolve()
    assert await handle.self_destruct() == "second destroy refused"
    await clock.settle()
    assert not runtime.is_awake(old_id)
    assert "on_destroy aborted=True" in trace
    assert "on_sleep aborted=True" not in trace
    with pytest.raises(ActorNotFoundError):
        await client.get_for_id("lc", old_id).get()
    assert await runtime.history(old_id) == []
    # get_or_create gives a fresh actor with fresh state.
    fresh = client.get_or_create("lc", "d")
    assert (await fresh.get())["state"] == {"count": 0, "done": False}
    assert await fresh.resolve() != old_id
    assert trace.count("create_state") == 2


async def test_calls_after_c_destroy_never_reach_the_doomed_actor(env: Env) -> None:
    _, client = env
    handle = client.get_or_create("lc", "d2")
    await handle.increment()
    await handle.self_destruct()
    # No settling: the very next calls must not land on (and be lost with) the old actor.
    assert await handle.increment() == 1
    assert (await client.get_or_create("lc", "d2").get())["state"]["count"] == 1


async def test_fresh_get_or_create_handle_racing_a_destroy_reaches_a_new_actor(
    env: Env,
) -> None:
    _, client = env
    handle = client.get_or_create("lc", "d3")
    await handle.increment()
    await handle.self_destruct()
    assert await client.get_or_create("lc", "d3").increment() == 1


async def test_wait_until_finishes_before_sleep_and_is_persisted(
    env: Env, clock: MockClock
) -> None:
    runtime, client = env
    handle = client.get_or_create("lc", "wu")
    await handle.finish_later()
    actor_id = await handle.resolve()
    sleeping = asyncio.ensure_future(runtime.sleep(actor_id))
    await clock.settle()
    assert not sleeping.done()
    assert runtime.is_awake(actor_id)
    gates["work"].set()
    await sleeping
    assert not runtime.is_awake(actor_id)
    assert (await handle.get())["state"]["done"] is True


noruns = actor("noruns", state={"n": 0}, options=ActorOptions(sleep_timeout=10))
keep_gate: dict[str, asyncio.Event] = {}


@noruns.action
def hold(c: Any) -> None:
    c.wait_until(c.keep_awake(keep_gate["go"].wait()))


@noruns.action
def work(c: Any) -> None:
    async def later() -> None:
        await keep_gate["go"].wait()

    c.wait_until(later())


async def test_keep_awake_prevents_idle_sleep_until_it_finishes(
    driver_factory: Callable[[], ActorStore], clock: MockClock
) -> None:
    keep_gate["go"] = asyncio.Event()
    async with run_actors(Registry([noruns]), storage=driver_factory(), clock=clock) as (rt, cl):
        handle = cl.get_or_create("noruns")
        await handle.hold()
        actor_id = await handle.resolve()
        await clock.advance(60)
        assert rt.is_awake(actor_id)
        keep_gate["go"].set()
        await clock.settle()
        await clock.advance(9)
        assert rt.is_awake(actor_id)
        await clock.advance(1)
        assert not rt.is_awake(actor_id)


async def test_plain_wait_until_lets_the_idle_timer_start_shutdown(
    driver_factory: Callable[[], ActorStore], clock: MockClock
) -> None:
    keep_gate["go"] = asyncio.Event()
    async with run_actors(Registry([noruns]), storage=driver_factory(), clock=clock) as (rt, cl):
        handle = cl.get_or_create("noruns")
        await handle.work()
        actor_id = await handle.resolve()
        await clock.advance(10)
        instance = rt._instances[actor_id]
        assert instance.status.value == "stopping"
        keep_gate["go"].set()
        await clock.settle()
        assert not rt.is_awake(actor_id)


stubborn = actor("stubborn", state={"n": 0}, options=ActorOptions(sleep_grace_period=5))


@stubborn.run
async def _stubborn_run(c: Any) -> None:
    try:
        await asyncio.Event().wait()  # ignores the abort signal
    except asyncio.CancelledError:
        trace.append("run cancelled")
        raise


@stubborn.action
def poke(c: Any) -> int:
    c.state["n"] += 1
    return int(c.state["n"])


@pytest.mark.parametrize("destroy", [False, True])
async def test_grace_period_bounds_a_run_loop_that_ignores_abort(
    driver_factory: Callable[[], ActorStore],
    clock: MockClock,
    caplog: pytest.LogCaptureFixture,
    destroy: bool,
) -> None:
    async with run_actors(Registry([stubborn]), storage=driver_factory(), clock=clock) as (rt, cl):
        handle = cl.get_or_create("stubborn")
        assert await handle.poke() == 1
        actor_id = await handle.resolve()
        stop = rt.destroy(actor_id) if destroy else rt.sleep(actor_id)
        stopping = asyncio.ensure_future(stop)
        await clock.advance(4.9)
        assert not stopping.done()
        with caplog.at_level(logging.WARNING, logger="pyrivet"):
            await clock.advance(0.2)
            await stopping
        assert trace == ["run cancelled"]
        assert "grace period" in caplog.text
        assert not rt.is_awake(actor_id)
        if destroy:
            with pytest.raises(ActorNotFoundError):
                await cl.get_for_id("stubborn", actor_id).poke()
        else:
            assert await handle.poke() == 2
            # Woken again with the stubborn run: stop it within the grace period again.
            stopping = asyncio.ensure_future(rt.sleep(actor_id))
            await clock.advance(5)
            await stopping
            assert trace == ["run cancelled", "run cancelled"]


# -- c.clock -------------------------------------------------------------------------

ticker = actor("ticker", state={"ticks": 0, "at": []})


@ticker.run
async def _tick_run(c: Any) -> None:
    while not c.aborted:
        await c.clock.sleep(1.0)
        c.state["ticks"] += 1
        c.state["at"].append(c.clock.now())


@ticker.action
def ticks(c: Any) -> dict[str, Any]:
    return dict(c.state)


async def test_c_clock_is_the_runtimes_clock_so_a_run_loop_ticks_when_it_advances() -> None:
    clock = MockClock(start=1000.0)
    async with run_actors(Registry([ticker]), clock=clock) as (_, client):
        handle = client.get_or_create("ticker")
        assert await handle.call(ticks) == {"ticks": 0, "at": []}
        await clock.advance(2.5)
        assert await handle.call(ticks) == {"ticks": 2, "at": [1001.0, 1002.0]}
