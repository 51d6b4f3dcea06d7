"""State versions: a stored actor wakes, its state is migrated step by step and committed
with a ``migrate`` history entry before any hook runs; a failure is a clear error that
changes nothing (every driver; a restart between the old code and the new)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import msgspec
import pydantic
import pytest

from pyrivet import (
    ActorDefinition,
    ActorOptions,
    CommitError,
    DefinitionError,
    Registry,
    StateMigrationError,
    actor,
)
from pyrivet.storage import ActorStore, CommitRecord
from pyrivet.testing import MockClock, run_actors

from .test_durability import GatedStore

DriverFactory = Callable[[], ActorStore]


def with_actions(definition: ActorDefinition[Any]) -> ActorDefinition[Any]:
    """``get`` returns the state; ``put(state)`` replaces it (plain data)."""

    @definition.action
    def get(c: Any) -> Any:
        return c.state

    @definition.action
    def put(c: Any, value: Any) -> None:
        c.state = value

    return definition


async def seed(
    driver_factory: DriverFactory, clock: MockClock, old: ActorDefinition[Any], **states: Any
) -> dict[str, str]:
    """Run ``old`` once, create one actor per key with its state; the actor ids by key."""
    ids: dict[str, str] = {}
    async with run_actors(Registry([old]), storage=driver_factory(), clock=clock) as (_, client):
        for key, value in states.items():
            handle = client.get_or_create(old.name, [key])
            if value is not None:
                await handle.put(value)
            ids[key] = await handle.resolve()
    return ids


# -- plain data: two steps -------------------------------------------------------------


def add_label(old: dict[str, Any]) -> dict[str, Any]:
    return {**old, "label": f"n={old['count']}"}


def rename_count(old: dict[str, Any]) -> dict[str, Any]:
    old["total"] = old.pop("count")
    return old


def counter_v2() -> ActorDefinition[Any]:
    """A counter at version 2: version 1's ``count`` renamed ``total``."""
    return with_actions(
        actor("counter", state={"total": 0}, state_version=2, migrations={1: rename_count})
    )


async def test_plain_state_migrates_in_steps_before_hooks_and_records_it(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    v1 = with_actions(actor("counter", state={"count": 0}))
    ids = await seed(driver_factory, clock, v1, a={"count": 4})
    log: list[str] = []

    def step1(old: dict[str, Any]) -> dict[str, Any]:
        log.append(f"1->2 {sorted(old)}")
        return add_label(old)

    def step2(old: dict[str, Any]) -> dict[str, Any]:
        log.append(f"2->3 {sorted(old)}")
        return rename_count(old)

    def create_vars(c: Any) -> None:
        log.append(f"create_vars {sorted(c.state)}")

    v3 = with_actions(
        actor(
            "counter",
            state={"total": 0, "label": ""},
            state_version=3,
            migrations={2: step2, 1: step1},
            create_vars=create_vars,
        )
    )

    @v3.on_wake
    def on_wake(c: Any) -> None:
        log.append(f"on_wake {c.state}")

    async with run_actors(Registry([v3]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        handle = client.get_or_create("counter", ["a"])
        assert await handle.get() == {"total": 4, "label": "n=4"}
        assert log == [
            "1->2 ['count']",
            "2->3 ['count', 'label']",
            "create_vars ['label', 'total']",
            "on_wake {'label': 'n=4', 'total': 4}",
        ]
        history = await runtime.history(ids["a"])
        migrate = history[-1]
        assert migrate.kind == "migrate"
        assert migrate.args == [1, 3]
        assert migrate.state == {"total": 4, "label": "n=4"}
        assert migrate.state_version == 3
        # Entries from before the migration keep the shape they were stored with.
        assert [e.state for e in history if e.kind == "action"] == [{"count": 4}]
        assert [e.state_version for e in history if e.kind == "action"] == [1]
        # A fresh actor starts at the current version: nothing to migrate.
        fresh = client.get_or_create("counter", ["fresh"])
        assert await fresh.get() == {"total": 0, "label": ""}
        created = await runtime.history(await fresh.resolve())
        assert [(e.kind, e.state_version) for e in created] == [("create", 3)]

    # The migrated state is committed: the next start wakes it without migrating.
    log.clear()
    async with run_actors(Registry([v3]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        assert await client.get_or_create("counter", ["a"]).get() == {"total": 4, "label": "n=4"}
        assert not any(entry.startswith(("1->2", "2->3")) for entry in log)
        kinds = [e.kind for e in await runtime.history(ids["a"])]
        assert kinds.count("migrate") == 1
        assert await runtime.state_at(ids["a"], 2) == {"count": 4}


# -- typed state: a field added, one removed, one renamed ------------------------------


@dataclasses.dataclass
class ProfileV1:
    name: str
    age: int


@dataclasses.dataclass
class ProfileV2:
    display_name: str
    email: str


class ProfileV1Model(pydantic.BaseModel):
    name: str
    age: int


class ProfileV2Model(pydantic.BaseModel):
    display_name: str
    email: str


class ProfileV1Struct(msgspec.Struct):
    name: str
    age: int


class ProfileV2Struct(msgspec.Struct):
    display_name: str
    email: str


def reshape_profile(old: dict[str, Any]) -> dict[str, Any]:
    """name -> display_name (renamed), age dropped (removed), email added."""
    return {"display_name": old["name"], "email": f"{old['name'].lower()}@example.com"}


TYPED = [
    pytest.param(ProfileV1, ProfileV2, id="dataclass"),
    pytest.param(ProfileV1Model, ProfileV2Model, id="pydantic"),
    pytest.param(ProfileV1Struct, ProfileV2Struct, id="msgspec"),
]


def profile_v1(old_type: Any) -> ActorDefinition[Any]:
    profile = with_actions(actor("profile", state=old_type(name="?", age=0)))

    @profile.action
    def rename(c: Any, name: str, age: int) -> None:
        c.state = old_type(name=name, age=age)

    return profile


@pytest.mark.parametrize(("old_type", "new_type"), TYPED)
async def test_typed_state_migrates_into_its_new_type(
    driver_factory: DriverFactory, clock: MockClock, old_type: Any, new_type: Any
) -> None:
    v1 = profile_v1(old_type)
    async with run_actors(Registry([v1]), storage=driver_factory(), clock=clock) as (_, client):
        handle = client.get_or_create("profile", ["ada"])
        await handle.rename("Ada", 36)
        actor_id = await handle.resolve()

    seen: list[Any] = []
    v2 = actor(
        "profile",
        state=new_type(display_name="?", email=""),
        state_version=2,
        migrations={1: reshape_profile},
    )

    @v2.action
    def email(c: Any) -> str:
        seen.append(c.state)
        return str(c.state.email)

    async with run_actors(Registry([v2]), storage=driver_factory(), clock=clock) as (
        runtime,
        client,
    ):
        assert await client.get_or_create("profile", ["ada"]).email() == "ada@example.com"
        assert seen == [new_type(display_name="Ada", email="ada@example.com")]
        history = await runtime.history(actor_id)
        assert history[-1].kind == "migrate"
        assert history[-1].state == new_type(display_name="Ada", email="ada@example.com")
        # The version-1 entries do not fit today's type: they come back as stored.
        old_states = [e.state for e in history if e.kind == "action"]
        assert old_states == [{"name": "Ada", "age": 36}]


@pytest.mark.parametrize(("old_type", "new_type"), TYPED)
async def test_changed_type_without_a_version_is_a_clear_error(
    driver_factory: DriverFactory, clock: MockClock, old_type: Any, new_type: Any
) -> None:
    """The motivating case: a required field added, no version declared."""
    ids = await seed(driver_factory, clock, profile_v1(old_type), ada=None)
    changed = with_actions(actor("profile", state=new_type(display_name="?", email="")))
    async with run_actors(Registry([changed]), storage=driver_factory(), clock=clock) as (_, c):
        with pytest.raises(StateMigrationError) as caught:
            await c.get_or_create("profile", ["ada"]).get()
    error = caught.value
    assert error.group == "actor"
    assert error.code == "state_migration_failed"
    assert "actor 'profile'" in error.message
    assert ids["ada"] in error.message
    assert "stored version 1" in error.message
    assert "declare state_version=2 and migrations={1: fn}" in error.message
    assert "display_name" in error.message  # what does not fit, from the validator
    assert error.metadata == {
        "actor_id": ids["ada"],
        "stored_version": 1,
        "state_version": 1,
        "step": "decode",
    }


# -- failures change nothing -----------------------------------------------------------


async def test_raising_migration_fails_the_wake_and_leaves_the_state(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    v1 = with_actions(actor("counter", state={"count": 0}))
    ids = await seed(driver_factory, clock, v1, a={"count": 1}, b={"count": 2})
    hooks: list[str] = []

    def broken(old: dict[str, Any]) -> dict[str, Any]:
        if old["count"] == 1:
            raise KeyError("colour")
        return add_label(old)

    def make(step: Callable[[dict[str, Any]], dict[str, Any]]) -> ActorDefinition[Any]:
        definition = with_actions(
            actor(
                "counter",
                state={"count": 0, "label": ""},
                state_version=2,
                migrations={1: step},
                create_vars=lambda c: hooks.append("create_vars"),
            )
        )
        return definition

    store = driver_factory()
    async with run_actors(Registry([make(broken)]), storage=store, clock=clock) as (rt, client):
        before = await store.load_state(ids["a"])
        for _ in range(2):  # a retry fails the same way: no half-started actor is kept
            with pytest.raises(StateMigrationError) as caught:
                await client.get_or_create("counter", ["a"]).get()
        assert hooks == []
        message = caught.value.message
        assert "actor 'counter'" in message
        assert "stored version 1, state_version 2" in message
        assert "migration 1->2 (migrations[1], broken) raised KeyError" in message
        assert "untouched" in message
        assert caught.value.metadata["step"] == "1->2"
        assert (await store.load_state(ids["a"])) == before
        assert [e.kind for e in await rt.history(ids["a"])] == ["create", "action"]
        assert not rt.is_awake(ids["a"])
        # Others keep working: one whose migration succeeds, and a new one.
        assert await client.get_or_create("counter", ["b"]).get() == {"count": 2, "label": "n=2"}
        assert await client.get_or_create("counter", ["c"]).get() == {"count": 0, "label": ""}

    # The fix deployed, the same actor wakes.
    async with run_actors(Registry([make(add_label)]), storage=driver_factory(), clock=clock) as (
        rt,
        client,
    ):
        assert await client.get_or_create("counter", ["a"]).get() == {"count": 1, "label": "n=1"}
        assert (await rt.history(ids["a"]))[-1].kind == "migrate"


@pytest.mark.parametrize(
    ("migration", "expected"),
    [
        pytest.param(
            lambda old: {"display_name": old["name"]},
            "does not fit ProfileV2: Object missing required field `email`. "
            "Fix migrations[1] to return the version-2 shape",
            id="wrong-shape",
        ),
        pytest.param(
            lambda old: {"display_name": old["name"], "email": object()},
            "the result of migration 1->2: values of type object are not supported",
            id="unstorable",
        ),
        pytest.param(
            lambda old: _coroutine(),
            "returned a coroutine; migrations are plain functions",
            id="awaitable",
        ),
    ],
)
async def test_bad_migration_result_is_a_clear_error(
    driver_factory: DriverFactory, clock: MockClock, migration: Any, expected: str
) -> None:
    ids = await seed(driver_factory, clock, profile_v1(ProfileV1), ada=None)
    v2 = with_actions(
        actor(
            "profile",
            state=ProfileV2("?", ""),
            state_version=2,
            migrations={1: migration},
        )
    )
    store = driver_factory()
    async with run_actors(Registry([v2]), storage=store, clock=clock) as (_, client):
        before = await store.load_state(ids["ada"])
        with pytest.raises(StateMigrationError) as caught:
            await client.get_or_create("profile", ["ada"]).get()
        assert expected in caught.value.message
        assert await store.load_state(ids["ada"]) == before


async def _coroutine() -> None:
    return None


async def test_state_stored_by_newer_code_is_not_woken(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    v2 = counter_v2()
    await seed(driver_factory, clock, v2, a={"total": 3})
    v1 = with_actions(actor("counter", state={"count": 0}))
    async with run_actors(Registry([v1]), storage=driver_factory(), clock=clock) as (_, client):
        with pytest.raises(StateMigrationError) as caught:
            await client.get_or_create("counter", ["a"]).get()
    assert "stored version 2, state_version 1" in caught.value.message
    assert "newer than this code's 1" in caught.value.message
    async with run_actors(Registry([v2]), storage=driver_factory(), clock=clock) as (_, client):
        assert await client.get_or_create("counter", ["a"]).get() == {"total": 3}


async def test_failed_migrate_commit_fails_the_wake_and_a_retry_migrates(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    v1 = with_actions(actor("counter", state={"count": 0}))
    ids = await seed(driver_factory, clock, v1, a={"count": 5})
    v2 = with_actions(
        actor(
            "counter", state={"count": 0, "label": ""}, state_version=2, migrations={1: add_label}
        )
    )
    store = GatedStore(driver_factory())
    async with run_actors(Registry([v2]), storage=store, clock=clock) as (runtime, client):
        handle = client.get_or_create("counter", ["a"])
        before = await store.load_state(ids["a"])
        store.fail_next = RuntimeError("disk full")
        with pytest.raises(CommitError):
            await handle.get()
        assert await store.load_state(ids["a"]) == before
        assert await handle.get() == {"count": 5, "label": "n=5"}
        assert [e.kind for e in await runtime.history(ids["a"])][-1] == "migrate"


# -- definition time -------------------------------------------------------------------


def keep(old: Any) -> Any:
    return old


async def async_step(old: Any) -> Any:
    return old


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param(
            {"state_version": 2, "migrations": {1: keep, 2: keep}},
            "migrations has a migration from version 2, which does not exist: the state's "
            "version is 2, and migrations[v] turns version v into v + 1, so the versions it "
            "may start from are 1 to 1. If the migration is new, raise state_version to 3",
            id="from-the-current-version",
        ),
        pytest.param(
            {"migrations": {1: keep}},
            "the versions it may start from are none (it is 1)",
            id="no-version-declared",
        ),
        pytest.param(
            {"state_version": 2, "migrations": {0: keep, 1: keep}},
            "a migration from version 0, which does not exist",
            id="zero",
        ),
        pytest.param(
            {"state_version": 2, "migrations": {"1": keep}},
            "a migration from version '1', which does not exist",
            id="not-a-number",
        ),
        pytest.param(
            {"state_version": 3, "migrations": {1: keep}},
            "state_version is 3 but no migration starts from version 2; every older version "
            "needs one, so that stored actors of that version can wake: add "
            "migrations={2: v2_to_v3}",
            id="missing",
        ),
        pytest.param(
            {"state_version": 3},
            "no migration starts from version 1, 2",
            id="none-given",
        ),
        pytest.param({"state_version": 0}, "state_version must be a whole number", id="v0"),
        pytest.param({"state_version": True}, "state_version must be a whole number", id="bool"),
        pytest.param({"state_version": 2.0}, "state_version must be a whole number", id="float"),
        pytest.param(
            {"state_version": 2, "migrations": [keep]},
            "migrations= takes a dict from the version a migration starts from",
            id="a-list",
        ),
        pytest.param(
            {"state_version": 2, "migrations": {1: "keep"}},
            "migrations[1] must be a function taking the version-1 state",
            id="not-callable",
        ),
        pytest.param(
            {"state_version": 2, "migrations": {1: async_step}},
            "migrations[1] ('async_step') is async; a migration is a plain function",
            id="async",
        ),
        pytest.param(
            {"state_version": 2, "migrations": {1: lambda a, b: a}},
            "is called with one argument, the version-1 state",
            id="two-arguments",
        ),
    ],
)
def test_bad_versions_are_rejected_at_definition(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        actor("counter", state={"count": 0}, **kwargs)
    assert "actor 'counter': " in str(caught.value)
    assert expected in str(caught.value)


def test_versions_need_a_state() -> None:
    with pytest.raises(DefinitionError, match="state_version= and migrations= need a state"):
        actor("stateless", state_version=2, migrations={1: keep})


def test_a_builtin_without_signature_is_accepted_as_a_migration() -> None:
    definition = actor("counter", state={"count": 0}, state_version=2, migrations={1: dict})
    assert definition.migrations == {1: dict}
    assert definition.state_version == 2


async def test_migrated_state_above_the_size_limit_is_a_clear_error(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    ids = await seed(driver_factory, clock, with_actions(actor("blob", state="")), a="x")
    v2 = with_actions(
        actor(
            "blob",
            state="",
            state_version=2,
            migrations={1: lambda old: old * 2000},
            options=ActorOptions(max_state_size=1000),
        )
    )
    store = driver_factory()
    async with run_actors(Registry([v2]), storage=store, clock=clock) as (_, client):
        before = await store.load_state(ids["a"])
        with pytest.raises(StateMigrationError) as caught:
            await client.get_or_create("blob", ["a"]).get()
        assert "above max_state_size (1000)" in caught.value.message
        assert caught.value.metadata["step"] == "commit"
        assert await store.load_state(ids["a"]) == before


async def test_damaged_version_envelope_is_a_clear_error(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    v2 = counter_v2()
    ids = await seed(driver_factory, clock, v2, a={"total": 3})
    store = driver_factory()
    await store.open()
    stored = await store.load_state(ids["a"])
    assert stored.snapshot is not None
    await store.commit([CommitRecord(ids["a"], stored.seq + 1, state=stored.snapshot[:-1])])
    await store.close()
    async with run_actors(Registry([v2]), storage=driver_factory(), clock=clock) as (_, client):
        with pytest.raises(StateMigrationError) as caught:
            await client.get_or_create("counter", ["a"]).get()
    assert "damaged version envelope" in caught.value.message
    assert caught.value.metadata["stored_version"] is None


async def test_history_of_a_type_the_registry_lacks_is_plain_data_with_its_version(
    driver_factory: DriverFactory, clock: MockClock
) -> None:
    v2 = counter_v2()
    ids = await seed(driver_factory, clock, v2, a={"total": 3})
    other = actor("other", state={})
    async with run_actors(Registry([other]), storage=driver_factory(), clock=clock) as (rt, _):
        history = await rt.history(ids["a"])
    assert [(e.kind, e.state, e.state_version) for e in history] == [
        ("create", {"total": 0}, 2),
        ("action", {"total": 3}, 2),
    ]
