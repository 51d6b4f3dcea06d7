"""Addressing: get / get_or_create / create / get_for_id, keys, input, metadata, destroy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pyrivet import (
    ActorNotFoundError,
    DuplicateKeyError,
    Registry,
    Runtime,
    actor,
)
from pyrivet.client import Client
from pyrivet.storage import ActorStore
from pyrivet.testing import MockClock, run_actors

Env = tuple[Runtime, Client]

created: list[Any] = []

counter = actor("counter", create_state=lambda c, input: {"count": 0, "input": input})


@counter.on_create
def _on_create(c: Any, input: Any) -> None:
    created.append(input)
    c.state["seen_by_on_create"] = input


@counter.action
def increment(c: Any, amount: int = 1) -> int:
    c.state["count"] += amount
    return int(c.state["count"])


@counter.action
def get_state(c: Any) -> Any:
    return c.state


@counter.action
def metadata(c: Any) -> dict[str, Any]:
    return {"name": c.name, "key": list(c.key), "actor_id": c.actor_id, "region": c.region}


@counter.action
def destroy_me(c: Any) -> None:
    c.destroy()


other = actor("other", state={"count": 0})


@other.action
def bump(c: Any) -> int:
    c.state["count"] += 1
    return int(c.state["count"])


registry = Registry([counter, other])


@pytest.fixture
async def env(driver_factory: Callable[[], ActorStore], clock: MockClock) -> AsyncIterator[Env]:
    created.clear()
    async with run_actors(registry, storage=driver_factory(), clock=clock) as pair:
        yield pair


async def test_get_or_create_creates_once_and_reuses(env: Env) -> None:
    _, client = env
    assert await client.get_or_create("counter", "a").increment() == 1
    assert await client.get_or_create("counter", "a").increment() == 2
    assert await client.get_or_create("counter", "b").increment() == 1
    assert created == [None, None]


async def test_resolve_returns_a_stable_id(env: Env) -> None:
    _, client = env
    first = await client.get_or_create("counter", "a").resolve()
    assert await client.get_or_create("counter", "a").resolve() == first
    assert await client.get("counter", "a").resolve() == first
    assert await client.get_or_create("counter", "b").resolve() != first


async def test_get_of_missing_key_is_not_found(env: Env) -> None:
    runtime, client = env
    handle = client.get("counter", "missing")
    with pytest.raises(ActorNotFoundError, match="get_or_create") as info:
        await handle.increment()
    assert info.value.code == "not_found"
    with pytest.raises(ActorNotFoundError):
        await handle.resolve()
    assert runtime.awake_count == 0
    assert created == []


async def test_unknown_actor_name_names_registered_types(env: Env) -> None:
    _, client = env
    for handle in (client.get_or_create("nope", "a"), client.get("nope")):
        with pytest.raises(ActorNotFoundError, match="'nope'") as info:
            await handle.increment()
        assert "registered: counter, other" in info.value.message
    with pytest.raises(ActorNotFoundError, match="registered: counter, other"):
        await client.create("nope")


async def test_create_then_duplicate_key(env: Env) -> None:
    _, client = env
    handle = await client.create("counter", ["k"], input={"n": 1})
    assert await handle.increment(5) == 5
    with pytest.raises(DuplicateKeyError, match="get_or_create") as info:
        await client.create("counter", ["k"], input={"n": 2})
    assert info.value.code == "duplicate_key"
    assert created == [{"n": 1}]
    # The original actor is untouched and reachable by key.
    assert await client.get("counter", "k").increment() == 6
    assert await client.get("counter", "k").resolve() == await handle.resolve()


async def test_create_of_a_key_created_by_get_or_create(env: Env) -> None:
    _, client = env
    await client.get_or_create("counter", "x").increment()
    with pytest.raises(DuplicateKeyError):
        await client.create("counter", "x")


async def test_get_for_id(env: Env) -> None:
    _, client = env
    actor_id = await client.get_or_create("counter", "a").resolve()
    handle = client.get_for_id("counter", actor_id)
    assert await handle.increment(3) == 3
    assert await handle.resolve() == actor_id
    with pytest.raises(ActorNotFoundError):
        await client.get_for_id("counter", "no-such-id").increment()
    # An id of another actor type is not found under this name.
    with pytest.raises(ActorNotFoundError):
        await client.get_for_id("other", actor_id).bump()
    assert await handle.increment() == 4


async def test_input_reaches_create_state_and_on_create_once(env: Env) -> None:
    _, client = env
    handle = client.get_or_create("counter", "in", input={"owner": "ada"})
    state = await handle.get_state()
    assert state["input"] == {"owner": "ada"}
    assert state["seen_by_on_create"] == {"owner": "ada"}
    later = client.get_or_create("counter", "in", input={"owner": "bob"})
    assert (await later.get_state())["input"] == {"owner": "ada"}
    assert created == [{"owner": "ada"}]


async def test_missing_input_is_none(env: Env) -> None:
    _, client = env
    state = await client.get_or_create("counter", "no-input").get_state()
    assert state["input"] is None and state["seen_by_on_create"] is None


async def test_concurrent_get_or_create_makes_one_actor(env: Env) -> None:
    runtime, client = env
    handles = [client.get_or_create("counter", "hot", input=i) for i in range(100)]
    results = await asyncio.gather(*(h.increment() for h in handles))
    assert sorted(results) == list(range(1, 101))
    ids = {await h.resolve() for h in handles}
    assert len(ids) == 1
    assert len(created) == 1
    assert runtime.awake_count == 1


async def test_concurrent_resolve_makes_one_actor(env: Env) -> None:
    _, client = env
    ids = await asyncio.gather(
        *(client.get_or_create("counter", "hot2").resolve() for _ in range(100))
    )
    assert len(set(ids)) == 1
    assert len(created) == 1


async def test_concurrent_create_one_wins(env: Env) -> None:
    _, client = env
    results = await asyncio.gather(
        *(client.create("counter", "race") for _ in range(10)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, DuplicateKeyError) for r in results if r not in winners)
    assert len(created) == 1


@pytest.mark.parametrize(
    ("a", "b"),
    [("room", ["room"]), ("room", ("room",)), (None, []), (None, ()), ([], ())],
)
async def test_equivalent_key_forms(env: Env, a: Any, b: Any) -> None:
    _, client = env
    assert await client.get_or_create("counter", a).increment() == 1
    assert await client.get_or_create("counter", b).increment() == 2
    assert await client.get("counter", b).resolve() == await client.get("counter", a).resolve()


async def test_keys_match_exactly(env: Env) -> None:
    _, client = env
    keys: list[Any] = [["a", "b", "c"], ["a", "b"], ["a"], ["b", "a"], ["a/b"], [""], None]
    for key in keys:
        assert await client.get_or_create("counter", key).increment() == 1
    ids = {await client.get("counter", key).resolve() for key in keys}
    assert len(ids) == len(keys)
    assert len(created) == len(keys)


async def test_names_have_independent_key_spaces(env: Env) -> None:
    _, client = env
    assert await client.get_or_create("counter", "same").increment() == 1
    assert await client.get_or_create("other", "same").bump() == 1
    a = await client.get("counter", "same").resolve()
    b = await client.get("other", "same").resolve()
    assert a != b


def test_key_parts_must_be_strings() -> None:
    client = Client(_NoTransport())
    with pytest.raises(TypeError, match="key parts must be str"):
        client.get("counter", ["user", 42])  # type: ignore[list-item]


async def test_metadata_in_context(env: Env) -> None:
    _, client = env
    handle = client.get_or_create("counter", ["org", "room-1"])
    meta = await handle.metadata()
    assert meta == {
        "name": "counter",
        "key": ["org", "room-1"],
        "actor_id": await handle.resolve(),
        "region": "local",
    }


async def test_destroyed_key_can_be_created_again_fresh(env: Env) -> None:
    runtime, client = env
    handle = client.get_or_create("counter", "d", input="first")
    assert await handle.increment(7) == 7
    old_id = await handle.resolve()
    await runtime.destroy(old_id)
    assert not runtime.is_awake(old_id)

    with pytest.raises(ActorNotFoundError):
        await client.get("counter", "d").resolve()
    fresh = await client.create("counter", "d", input="second")
    assert await fresh.resolve() != old_id
    state = await fresh.get_state()
    assert state["count"] == 0 and state["input"] == "second"


async def test_old_id_handle_is_not_found_after_destroy(env: Env) -> None:
    runtime, client = env
    old_id = await client.get_or_create("counter", "d").resolve()
    by_id = client.get_for_id("counter", old_id)
    assert await by_id.increment() == 1
    await runtime.destroy(old_id)
    with pytest.raises(ActorNotFoundError):
        await by_id.increment()
    # Even once the key holds a new actor, the id still names the destroyed one.
    await client.get_or_create("counter", "d").increment()
    with pytest.raises(ActorNotFoundError):
        await by_id.increment()
    with pytest.raises(ActorNotFoundError):
        await runtime.destroy(old_id)


async def test_stale_get_or_create_handle_reaches_the_new_actor(env: Env) -> None:
    _, client = env
    handle = client.get_or_create("counter", "s")
    assert await handle.increment(5) == 5
    old_id = await handle.resolve()
    await handle.destroy_me()
    await client.get_or_create("counter", "s").resolve()  # settle the destroy
    assert await handle.increment() == 1
    assert await handle.resolve() != old_id


async def test_stale_get_handle_retries_after_recreation(env: Env) -> None:
    runtime, client = env
    await client.create("counter", "g")
    handle = client.get("counter", "g")
    assert await handle.increment() == 1
    await runtime.destroy(await handle.resolve())
    await client.create("counter", "g")
    assert await handle.increment() == 1


async def test_stale_get_handle_without_recreation_is_not_found(env: Env) -> None:
    runtime, client = env
    handle = client.get_or_create("counter", "gone")
    await handle.increment()
    get_handle = client.get("counter", "gone")
    await get_handle.increment()
    await runtime.destroy(await handle.resolve())
    with pytest.raises(ActorNotFoundError):
        await get_handle.increment()


async def test_actors_are_found_again_after_restart(
    driver_factory: Callable[[], ActorStore], clock: MockClock
) -> None:
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (_, client):
        handle = await client.create("counter", ["persist"], input="once")
        actor_id = await handle.resolve()
        await handle.increment(4)
    async with run_actors(registry, storage=driver_factory(), clock=clock) as (_, client):
        assert await client.get("counter", ["persist"]).resolve() == actor_id
        assert await client.get_or_create("counter", ["persist"]).increment() == 5
        with pytest.raises(DuplicateKeyError):
            await client.create("counter", ["persist"])


class _NoTransport:
    """A transport that is never reached (key validation happens before any I/O)."""

    async def resolve(self, query: Any) -> str:
        raise AssertionError("no I/O expected")

    async def call(self, *args: Any) -> Any:
        raise AssertionError("no I/O expected")

    async def connect(self, *args: Any) -> Any:
        raise AssertionError("no I/O expected")

    async def send(self, *args: Any) -> Any:
        raise AssertionError("no I/O expected")

    async def list_actors(self, *args: Any) -> Any:
        raise AssertionError("no I/O expected")

    async def aclose(self) -> None:
        pass
