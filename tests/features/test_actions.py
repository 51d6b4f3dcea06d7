"""Actions: interleaving, sync/async, timeouts, errors, bad input, encoding, typed calls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pyrivet import (
    ActionNotFoundError,
    ActionTimeoutError,
    ActorError,
    ActorOptions,
    EncodingError,
    InternalError,
    InvalidArgumentsError,
    Registry,
    Runtime,
    UserError,
    actor,
)
from pyrivet.client import Client
from pyrivet.storage import ActorStore
from pyrivet.testing import MockClock, run_actors

Env = tuple[Runtime, Client]

#: What the actions did, in order (cleared before each test).
trace: list[str] = []
gates: dict[str, asyncio.Event] = {}


class Opaque:
    """A type the value encoding does not support."""


acts = actor("acts", state={"count": 0, "items": []}, options=ActorOptions(action_timeout=5))


@acts.action
def add(c: Any, a: int, b: int = 0) -> int:
    trace.append(f"add {a} {b}")
    c.state["count"] += a + b
    return int(c.state["count"])


@acts.action
async def add_async(c: Any, amount: int) -> int:
    trace.append("add_async")
    await asyncio.sleep(0)
    c.state["count"] += amount
    return int(c.state["count"])


@acts.action
def get_state(c: Any) -> Any:
    return c.state


@acts.action
async def slow(c: Any) -> None:
    trace.append("start:slow")
    gates["slow_started"].set()
    await gates["slow"].wait()
    trace.append("finish:slow")


@acts.action
async def fast(c: Any) -> None:
    trace.append("start:fast")
    await asyncio.sleep(0)
    trace.append("finish:fast")
    gates["slow"].set()


@acts.action
async def hang(c: Any) -> None:
    trace.append("hang")
    await asyncio.Event().wait()


@acts.action
def refuse(c: Any, amount: int) -> None:
    raise UserError("amount too large", code="too_large", metadata={"max": 10, "got": amount})


@acts.action
def refuse_plain(c: Any) -> None:
    raise UserError("no")


@acts.action
async def crash(c: Any) -> None:
    await asyncio.sleep(0)
    raise KeyError("secret-internal-detail")


@acts.action
def return_opaque(c: Any) -> Any:
    trace.append("return_opaque")
    return {"value": Opaque()}


@acts.action
def store_opaque(c: Any) -> None:
    c.state["count"] += 100
    c.state["bad"] = Opaque()


@acts.action
def replace_state_with_opaque(c: Any) -> None:
    c.state = Opaque()


@acts.action
def append(c: Any, items: list[str]) -> list[str]:
    items.append("added by actor")
    c.state["items"].extend(items)
    return list(c.state["items"])


@acts.action
def options(c: Any, a: int, *, scale: int = 1) -> int:
    return a * scale


@acts.action
def big(c: Any, size: int) -> str:
    return "x" * size


registry = Registry([acts], max_incoming_message_size=1024, max_outgoing_message_size=4096)


@pytest.fixture(autouse=True)
def _reset() -> None:
    trace.clear()
    gates.clear()
    gates.update(slow=asyncio.Event(), slow_started=asyncio.Event())


@pytest.fixture
async def env(driver_factory: Callable[[], ActorStore], clock: MockClock) -> AsyncIterator[Env]:
    async with run_actors(registry, storage=driver_factory(), clock=clock) as pair:
        yield pair


async def test_actions_interleave_at_awaits(env: Env) -> None:
    _, client = env
    handle = client.get_or_create("acts")
    slow_call = asyncio.ensure_future(handle.slow())
    await gates["slow_started"].wait()
    await handle.fast()
    await slow_call
    assert trace == ["start:slow", "start:fast", "finish:fast", "finish:slow"]


async def test_sync_and_async_actions(env: Env) -> None:
    _, client = env
    handle = client.get_or_create("acts")
    assert await handle.add(2) == 2
    assert await handle.add_async(3) == 5
    assert await handle.action("add", 1, 1) == 7
    assert await handle.get_state() == {"count": 7, "items": []}


async def test_concurrent_calls_lose_no_update(env: Env) -> None:
    _, client = env
    handle = client.get_or_create("acts")
    await asyncio.gather(*(handle.add_async(1) for _ in range(50)))
    assert (await handle.get_state())["count"] == 50


async def test_action_timeout(env: Env, clock: MockClock, caplog: pytest.LogCaptureFixture) -> None:
    _, client = env
    handle = client.get_or_create("acts")
    await handle.resolve()
    call = asyncio.ensure_future(handle.hang())
    await clock.advance(4.9)
    assert not call.done()
    with caplog.at_level(logging.WARNING, logger="pyrivet.actor"):
        await clock.advance(0.1)
        with pytest.raises(ActionTimeoutError) as info:
            await call
    # RivetKit's wire message, which clients compare; the details are in the log.
    assert (info.value.group, info.value.code, info.value.message) == (
        "actor",
        "action_timed_out",
        "Action timed out",
    )
    assert "action hang timed out after 5" in caplog.text
    assert await handle.add(1) == 1


async def test_user_error_reaches_caller_with_code_and_metadata(env: Env) -> None:
    _, client = env
    handle = client.get_or_create("acts")
    with pytest.raises(UserError) as info:
        await handle.refuse(99)
    err = info.value
    assert (err.group, err.code, err.message, err.metadata) == (
        "user",
        "too_large",
        "amount too large",
        {"max": 10, "got": 99},
    )
    with pytest.raises(UserError) as info:
        await handle.refuse_plain()
    assert (info.value.code, info.value.metadata) == ("user_error", None)


async def test_other_exception_is_internal_error_and_logged(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    _, client = env
    handle = client.get_or_create("acts")
    await handle.resolve()
    with caplog.at_level(logging.ERROR, logger="pyrivet"), pytest.raises(InternalError) as info:
        await handle.crash()
    err = info.value
    assert (err.group, err.code, err.message, err.metadata) == (
        "core",
        "internal_error",
        "An internal error occurred",
        None,
    )
    assert "secret" not in repr(err)
    logged = [r for r in caplog.records if r.exc_info is not None]
    assert logged and "crash" in logged[-1].getMessage()
    assert "secret-internal-detail" in caplog.text
    assert "Traceback" in caplog.text


async def test_unknown_action_lists_actions(env: Env) -> None:
    _, client = env
    handle = client.get_or_create("acts")
    with pytest.raises(ActionNotFoundError, match="'nope'") as info:
        await handle.nope()
    assert "add, add_async, append" in info.value.message
    assert info.value.code == "action_not_found"


@pytest.mark.parametrize("args", [(), (1, 2, 3)])
async def test_wrong_number_of_arguments(env: Env, args: tuple[Any, ...]) -> None:
    _, client = env
    handle = client.get_or_create("acts")
    with pytest.raises(
        InvalidArgumentsError, match=f"takes 1 to 2 argument\\(s\\), got {len(args)}"
    ):
        await handle.add(*args)
    assert trace == []


async def test_unencodable_argument_is_rejected_before_anything_runs(env: Env) -> None:
    runtime, client = env
    handle = client.get_or_create("acts", "fresh")
    with pytest.raises(EncodingError, match="type object") as info:
        await handle.add(object())
    assert info.value.metadata == {"type": "object"}
    assert trace == []
    # Not even the actor was created by the rejected call.
    assert runtime.awake_count == 0
    with pytest.raises(EncodingError, match="type Opaque"):
        await handle.append([Opaque()])


async def test_oversized_argument_is_rejected(env: Env) -> None:
    _, client = env
    handle = client.get_or_create("acts")
    with pytest.raises(EncodingError) as info:
        await handle.append(["x" * 2000])
    assert info.value.code == "incoming_too_long"
    assert (await handle.get_state())["items"] == []


async def test_oversized_result(env: Env) -> None:
    _, client = env
    handle = client.get_or_create("acts")
    assert len(await handle.big(4000)) == 4000
    with pytest.raises(EncodingError, match="outgoing message limit") as info:
        await handle.big(5000)
    assert info.value.code == "outgoing_too_long"


async def test_unencodable_result(env: Env) -> None:
    _, client = env
    handle = client.get_or_create("acts")
    with pytest.raises(EncodingError, match="type Opaque"):
        await handle.return_opaque()
    assert trace == ["return_opaque"]
    assert await handle.add(1) == 1


@pytest.mark.parametrize("action", ["store_opaque", "replace_state_with_opaque"])
async def test_unencodable_state_is_rolled_back(env: Env, action: str) -> None:
    runtime, client = env
    handle = client.get_or_create("acts")
    assert await handle.add(5) == 5
    actor_id = await handle.resolve()
    entries = len(await runtime.history(actor_id))
    with pytest.raises(EncodingError, match="type Opaque") as info:
        await handle.action(action)
    assert "state" in info.value.message
    assert await handle.get_state() == {"count": 5, "items": []}
    assert len(await runtime.history(actor_id)) == entries
    # The committed state survives a sleep and wake unchanged, too.
    await runtime.sleep(actor_id)
    assert await handle.add(1) == 6


async def test_arguments_and_results_are_copies(env: Env) -> None:
    _, client = env
    handle = client.get_or_create("acts")
    mine = ["a"]
    result = await handle.append(mine)
    assert mine == ["a"]
    assert result == ["a", "added by actor"]
    result.append("local only")
    assert (await handle.get_state())["items"] == ["a", "added by actor"]


async def test_typed_call_binds_keyword_arguments(env: Env) -> None:
    _, client = env
    handle = client.get_or_create("acts")
    total: int = await handle.call(add, 2, b=3)
    assert total == 5
    assert await handle.call(add, a=1) == 6
    assert await handle.call(add_async, amount=4) == 10
    assert trace[:2] == ["add 2 3", "add 1 0"]
    with pytest.raises(TypeError, match="keyword-only"):
        await handle.call(options, 2, scale=3)
    with pytest.raises(TypeError):
        await handle.call(add, 1, c=2)  # type: ignore[call-arg, arg-type]


async def test_calls_by_attribute_reach_each_handles_own_actor(env: Env) -> None:
    # The first ``handle.add`` leaves a descriptor on the handle class: later lookups on
    # any handle (or connection) must still bind to that object's own actor.
    _, client = env
    first, second = client.get_or_create("acts", ["one"]), client.get_or_create("acts", ["two"])
    assert await first.add(1) == 1
    assert await second.add(10) == 10
    assert await first.add(2) == 3
    assert first.add is not second.add
    async with second.connect() as conn:
        assert await conn.add(5) == 15
    with pytest.raises(AttributeError):
        first._private  # noqa: B018 (underscore names are never actions)


@pytest.mark.parametrize(
    "bad_call",
    [
        lambda h: h.nope(),
        lambda h: h.add(),
        lambda h: h.add(1, 2, 3),
        lambda h: h.add(object()),
        lambda h: h.refuse(1),
        lambda h: h.crash(),
        lambda h: h.store_opaque(),
        lambda h: h.replace_state_with_opaque(),
        lambda h: h.return_opaque(),
        lambda h: h.append(["x" * 2000]),
    ],
)
async def test_actor_keeps_serving_after_bad_input(
    env: Env, bad_call: Callable[[Any], Any], caplog: pytest.LogCaptureFixture
) -> None:
    _, client = env
    handle = client.get_or_create("acts")
    assert await handle.add(3) == 3
    with caplog.at_level(logging.CRITICAL, logger="pyrivet"), pytest.raises(ActorError):
        await bad_call(handle)
    assert await handle.get_state() == {"count": 3, "items": []}
    assert await handle.add(1) == 4
