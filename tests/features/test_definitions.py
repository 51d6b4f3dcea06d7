"""Definition-time validation: mistakes fail at import with a DefinitionError naming the fix."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pyrivet import ActorOptions, DefinitionError, Registry, actor


def test_state_and_create_state_together() -> None:
    with pytest.raises(DefinitionError, match="'room'") as info:
        actor("room", state={"n": 0}, create_state=lambda c, input: {"n": 0})
    assert "state=" in str(info.value) and "create_state=" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"vars": {}, "create_vars": lambda c: {}}, ("vars=", "create_vars=")),
        (
            {"conn_state": {}, "create_conn_state": lambda c, p: {}},
            ("conn_state=", "create_conn_state="),
        ),
    ],
)
def test_value_and_factory_pairs_are_exclusive(
    kwargs: dict[str, Any], names: tuple[str, str]
) -> None:
    with pytest.raises(DefinitionError, match="cannot define both") as info:
        actor("pair", **kwargs)
    assert all(n in str(info.value) for n in names)


def test_callable_passed_as_state_points_to_create_state() -> None:
    with pytest.raises(DefinitionError, match="create_state=") as info:
        actor("fn-state", state=lambda c, input: {"n": 0})
    assert "'fn-state'" in str(info.value)


def test_factory_that_is_not_callable() -> None:
    with pytest.raises(DefinitionError, match="create_state= must be a function"):
        actor("bad-factory", create_state={"n": 0})  # type: ignore[arg-type]


def test_create_state_must_take_the_context() -> None:
    def no_params() -> dict[str, int]:
        return {}

    with pytest.raises(DefinitionError, match="context as its first parameter"):
        actor("no-ctx", create_state=no_params)


@pytest.mark.parametrize("name", ["", "x" * 65, 42])
def test_invalid_actor_names(name: Any) -> None:
    with pytest.raises(DefinitionError, match="actor name"):
        actor(name)


def test_duplicate_action_names() -> None:
    d = actor("dup")

    @d.action
    def ping(c: Any) -> str:
        return "a"

    def other(c: Any) -> str:
        return "b"

    with pytest.raises(DefinitionError, match="duplicate action name 'ping'") as info:
        d.action(name="ping")(other)
    assert "'dup'" in str(info.value)
    assert d.actions["ping"].fn is ping


def test_action_name_override_and_private_names() -> None:
    d = actor("names")

    @d.action(name="renamed")
    def original(c: Any) -> None: ...

    assert list(d.actions) == ["renamed"]

    def _hidden(c: Any) -> None: ...

    with pytest.raises(DefinitionError, match="invalid action name '_hidden'"):
        d.action(_hidden)


def test_action_without_context_parameter() -> None:
    d = actor("ctx")

    def no_params() -> None: ...

    with pytest.raises(DefinitionError, match=r"def no_params\(c, \.\.\.\)"):
        d.action(no_params)
    assert d.actions == {}


def test_action_with_required_keyword_only_parameter() -> None:
    d = actor("kwonly")

    def bad(c: Any, *, amount: int) -> None: ...

    with pytest.raises(DefinitionError, match=r"keyword-only parameters \['amount'\]"):
        d.action(bad)

    def fine(c: Any, *, amount: int = 1) -> None: ...

    d.action(fine)
    assert d.actions["fine"].max_args == 0


def test_arity_is_recorded() -> None:
    d = actor("arity")

    @d.action
    def two(c: Any, a: int, b: int = 0) -> None: ...

    @d.action
    def many(c: Any, *args: int) -> None: ...

    assert (d.actions["two"].min_args, d.actions["two"].max_args) == (1, 2)
    assert (d.actions["many"].min_args, d.actions["many"].max_args) == (0, None)


def test_generator_actions_are_rejected() -> None:
    d = actor("gen")

    def sync_gen(c: Any) -> Any:
        yield 1

    async def async_gen(c: Any) -> Any:
        yield 1

    for fn in (sync_gen, async_gen):
        with pytest.raises(DefinitionError, match="is a generator") as info:
            d.action(fn)
        assert "broadcast" in str(info.value)
    assert d.actions == {}


def test_non_function_action() -> None:
    with pytest.raises(DefinitionError, match="must be a function"):
        actor("nf").action(42)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"sleep_timeout": -1}, "sleep_timeout must be a positive"),
        ({"action_timeout": 0}, "action_timeout must be a positive"),
        ({"action_timeout": "5"}, "action_timeout must be a positive"),
        ({"action_timeout": float("nan")}, "action_timeout must be a positive"),
        ({"sleep_grace_period": True}, "sleep_grace_period must be a positive"),
        ({"max_schedules": 2.5}, "max_schedules must be a positive whole number"),
        ({"history_limit": 0}, "history_limit must be a positive"),
        ({"durability": "fast"}, 'durability must be "strict" or "relaxed"'),
        ({"no_sleep": "yes"}, "no_sleep must be True or False"),
        ({"no_sleep": 1}, "no_sleep must be True or False"),
    ],
)
def test_bad_option_values(kwargs: dict[str, Any], pattern: str) -> None:
    with pytest.raises(DefinitionError, match=re.escape(pattern)):
        ActorOptions(**kwargs)


def test_good_option_values() -> None:
    opts = ActorOptions(sleep_timeout=0.5, max_schedules=3, history_limit=None, no_sleep=True)
    assert (opts.sleep_timeout, opts.max_schedules, opts.history_limit) == (0.5, 3, None)


def test_options_must_be_actor_options() -> None:
    with pytest.raises(DefinitionError, match="options must be an ActorOptions"):
        actor("opts", options={"sleep_timeout": 1})  # type: ignore[arg-type]


@pytest.mark.parametrize("state", [{"conn": object()}, [1, object()], object()])
def test_unencodable_static_state_names_the_type(state: Any) -> None:
    with pytest.raises(DefinitionError, match="values of type object are not supported") as info:
        actor("unenc", state=state)
    assert "'unenc'" in str(info.value)


def test_static_state_kinds_that_encode() -> None:
    d = actor("ok-state", state={"tags": ("a", "b"), "blob": b"\x00", "n": None})
    assert d.initial_state is not None
    assert d.state_codec.decode(d.initial_state) == {"tags": ["a", "b"], "blob": b"\x00", "n": None}


def test_hook_defined_twice() -> None:
    d = actor("hooks")

    @d.on_wake
    def first(c: Any) -> None: ...

    def second(c: Any) -> None: ...

    with pytest.raises(DefinitionError, match=r"on_wake is already defined \(first\)"):
        d.on_wake(second)
    assert d.hooks["on_wake"] is first


def test_hook_must_be_a_function_taking_the_context() -> None:
    d = actor("hooks2")
    with pytest.raises(DefinitionError, match="run must be a function"):
        d.run(42)  # type: ignore[type-var]
    with pytest.raises(DefinitionError, match="context as its first parameter"):
        d.on_sleep(lambda: None)


@pytest.mark.parametrize(
    ("hook", "signature"),
    [
        ("on_create", "c, input"),
        ("on_state_change", "c, state"),
        ("on_before_connect", "c, params"),
        ("on_connect", "c, conn"),
        ("on_disconnect", "c, conn"),
    ],
)
def test_hook_missing_its_second_parameter(hook: str, signature: str) -> None:
    def handler(c: Any) -> None: ...

    with pytest.raises(DefinitionError, match=re.escape(f"({signature})")):
        getattr(actor("hooks3"), hook)(handler)


def test_hook_with_extra_required_parameter() -> None:
    def on_wake(c: Any, extra: Any) -> None: ...

    with pytest.raises(DefinitionError, match=re.escape("(c)")):
        actor("hooks4").on_wake(on_wake)


def test_hooks_with_defaults_or_varargs_are_accepted() -> None:
    d = actor("hooks5")
    d.on_create(lambda c, *rest: None)
    d.on_wake(lambda c, extra=None: None)
    assert set(d.hooks) == {"on_create", "on_wake"}


@pytest.mark.parametrize(
    ("kwargs", "signature"),
    [
        ({"create_state": lambda c: {}}, "(c, input)"),
        ({"create_vars": lambda c, x: {}}, "(c)"),
        ({"create_conn_state": lambda c: {}}, "(c, params)"),
    ],
)
def test_factory_parameters_are_checked(kwargs: dict[str, Any], signature: str) -> None:
    with pytest.raises(DefinitionError, match=re.escape(signature)):
        actor("factories", **kwargs)


def test_duplicate_registry_names() -> None:
    with pytest.raises(DefinitionError, match="two actor types are named 'same'"):
        Registry([actor("same"), actor("same")])


def test_registry_takes_only_definitions() -> None:
    with pytest.raises(DefinitionError, match="made with actor"):
        Registry(["counter"])  # type: ignore[list-item]


def test_registry_message_limits_must_be_positive() -> None:
    with pytest.raises(DefinitionError, match="positive"):
        Registry([], max_incoming_message_size=0)
