"""Typed values in-process: dataclasses, msgspec Structs and pydantic models as action
arguments (converted from the annotations, mismatches refused), results, KV values,
queue bodies and events, as they behave over the network (tests/server has the same
checks through the server)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import pydantic
import pytest

from pyrivet import ActorError, InvalidArgumentsError, Queue, Registry, actor
from pyrivet.client import Client
from pyrivet.errors import DefinitionError
from pyrivet.testing import MockClock, run_actors


@dataclass
class Point:
    x: int
    y: int


class Size(msgspec.Struct):
    w: int
    h: int


class Label(pydantic.BaseModel):
    text: str
    size: int = 12


class Opaque:
    """A class neither msgspec nor pydantic can build from plain data."""


shapes = actor(
    "shapes",
    state={"calls": 0, "placed": []},
    queues={"labels": Queue(Label), "anything": Queue()},
)


@shapes.action
def move(c: Any, to: Point, by: Size | None = None) -> Point:
    assert isinstance(to, Point)
    assert by is None or isinstance(by, Size)
    c.state["calls"] += 1
    return Point(to.x + (by.w if by else 0), to.y + (by.h if by else 0))


@shapes.action
def relabel(c: Any, label: Label, times: int = 1) -> Label:
    assert isinstance(label, Label)
    c.state["calls"] += 1
    return Label(text=label.text * times, size=label.size)


@shapes.action
def nested(c: Any, points: list[Point], labels: dict[str, Label]) -> dict[str, Any]:
    assert all(isinstance(p, Point) for p in points)
    assert all(isinstance(v, Label) for v in labels.values())
    return {"xs": [p.x for p in points], "texts": sorted(v.text for v in labels.values())}


@shapes.action
def pair(c: Any, pair: tuple[int, str]) -> tuple[int, str]:
    assert type(pair) is tuple
    return pair


@shapes.action
def scale(c: Any, factor: float, count: Annotated[int, msgspec.Meta(ge=0)] = 0) -> float:
    assert type(factor) is float
    return factor * count


@shapes.action
def total(c: Any, *amounts: int) -> int:
    return sum(amounts)


@shapes.action
def anything(c: Any, value, other: Any = None, third: object = None) -> list[Any]:  # type: ignore[no-untyped-def]
    return [value, other, third]


@shapes.action
def maybe(c: Any, value: int = None) -> Any:  # type: ignore[assignment]  # noqa: RUF013
    return value


@shapes.action
def lies(c: Any) -> Point:
    return "not a point"  # type: ignore[return-value]


@shapes.action
def plan(c: Any, delay: float, at) -> str:  # type: ignore[no-untyped-def]
    # `at` is not checked here: the scheduled call checks it when it fires.
    return str(c.schedule.after(delay, "place", at))


@shapes.action
def place(c: Any, at: Point) -> None:
    c.state["placed"].append([type(at).__name__, at.x, at.y])


@shapes.action
def placed(c: Any) -> list[Any]:
    return list(c.state["placed"])


@shapes.action
def counted(c: Any) -> int:
    return int(c.state["calls"])


@shapes.action
async def store(c: Any) -> list[Any]:
    await c.kv.put("label", Label(text="kv"))
    await c.kv.put("point", Point(1, 2))
    await c.kv.put("size", Size(3, 4))
    await c.kv.put("many", [Label(text="a"), {"p": Point(5, 6)}])
    return [await c.kv.get(k) for k in ("label", "point", "size", "many")]


@shapes.action
def shout(c: Any) -> None:
    c.broadcast("shapes", Label(text="hi"), Point(1, 2), Size(3, 4))


@shapes.action
def take(c: Any, queue: str) -> Any:
    message = c.queue.try_next([queue])
    return None if message is None else [type(message.body).__name__, message.body]


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with run_actors(Registry([shapes])) as (_, client):
        yield client


async def test_arguments_arrive_as_the_annotated_types(client: Client) -> None:
    handle = client.get_or_create("shapes", "args")
    # Passed as typed values or as the plain data a network client sends: the same.
    assert await handle.move(Point(1, 2), Size(10, 20)) == {"x": 11, "y": 22}
    assert await handle.move({"x": 1, "y": 2}, {"w": 10, "h": 20}) == {"x": 11, "y": 22}
    assert await handle.move({"x": 1, "y": 2}) == {"x": 1, "y": 2}
    assert await handle.relabel({"text": "ab"}, 2) == {"text": "abab", "size": 12}
    assert await handle.relabel(Label(text="z", size=3)) == {"text": "z", "size": 3}
    got = await handle.nested([{"x": 1, "y": 0}, Point(2, 0)], {"a": {"text": "t"}})
    assert got == {"xs": [1, 2], "texts": ["t"]}
    assert await handle.pair([1, "a"]) == [1, "a"]
    assert await handle.scale(2, 3) == 6.0
    assert await handle.scale(2.0, 3) == 6.0  # every type exact: handed on as is
    assert await handle.total(1, 2, 3) == 6
    assert await handle.maybe() is None
    assert await handle.maybe(None) is None  # its own default, though not an int


async def test_typed_calls_return_the_annotated_type_and_calls_by_name_plain_data(
    client: Client,
) -> None:
    handle = client.get_or_create("shapes", "results")
    point: Point = await handle.call(move, Point(1, 2), Size(1, 1))
    assert point == Point(2, 3)
    label: Label = await handle.call(relabel, Label(text="x"), 3)
    assert label == Label(text="xxx")
    assert await handle.call(pair, (1, "a")) == (1, "a")
    # A pydantic result, which in-process calls used to refuse, by name: plain data.
    assert await handle.relabel({"text": "x"}) == {"text": "x", "size": 12}
    async with handle.connect() as conn:
        assert await conn.call(move, Point(0, 0)) == Point(0, 0)


async def test_a_result_that_does_not_fit_its_annotation_fails_the_typed_call(
    client: Client,
) -> None:
    handle = client.get_or_create("shapes", "lies")
    assert await handle.lies() == "not a point"
    with pytest.raises(ActorError) as info:
        await handle.call(lies)
    assert (info.value.group, info.value.code) == ("client", "invalid_result")
    assert "'lies'" in info.value.message and "Expected `object`" in info.value.message


@pytest.mark.parametrize(
    ("action", "args", "parameter", "position", "expected", "reason"),
    [
        ("move", [{"x": 1}], "to", 0, "Point", "missing required field `y`"),
        ("move", [{"x": 1, "y": "2"}], "to", 0, "Point", "got `str` - at `$.y`"),
        ("move", [Point(1, 2), {"w": 1}], "by", 1, "Size | None", "field `h`"),
        ("relabel", [{"size": 1}], "label", 0, "Label", "text Field required"),
        ("relabel", [{"text": "a"}, "2"], "times", 1, "int", "Expected `int`, got `str`"),
        ("scale", [True], "factor", 0, "float", "got `bool`"),
        ("scale", [1.0, -1], "count", 1, "int", "Expected `int` >= 0"),
        (
            "nested",
            [[{"x": 1, "y": 1}], {"a": {"size": 1}}],
            "labels",
            1,
            "dict[str, Label]",
            "Field required",
        ),
        ("total", [1, "2"], "*amounts", 1, "int", "got `str`"),
        ("maybe", ["1"], "value", 0, "int", "got `str`"),
    ],
)
async def test_a_mismatched_argument_is_refused_naming_the_parameter(
    client: Client,
    action: str,
    args: list[Any],
    parameter: str,
    position: int,
    expected: str,
    reason: str,
) -> None:
    handle = client.get_or_create("shapes", "bad")
    with pytest.raises(InvalidArgumentsError) as info:
        await handle.action(action, *args)
    error = info.value
    assert (error.group, error.code) == ("actor", "validation_error")
    assert f"action {action!r} of actor 'shapes'" in error.message
    assert f"({parameter}) must be {expected}" in error.message
    assert reason in error.message
    assert error.metadata is not None
    assert error.metadata["parameter"] == parameter
    assert error.metadata["position"] == position
    assert error.metadata["expected"].startswith(expected)
    # Nothing ran, and the actor keeps serving.
    assert await handle.counted() == 0
    assert await handle.move({"x": 0, "y": 0}) == {"x": 0, "y": 0}
    assert await handle.counted() == 1


async def test_unannotated_any_and_object_parameters_are_not_checked(client: Client) -> None:
    handle = client.get_or_create("shapes", "any")
    assert await handle.anything({"a": 1}, [1], "x") == [{"a": 1}, [1], "x"]
    assert await handle.anything(Point(1, 2)) == [{"x": 1, "y": 2}, None, None]


async def test_typed_values_work_as_kv_values(client: Client) -> None:
    got = await client.get_or_create("shapes", "kv").store()
    assert got == [
        {"text": "kv", "size": 12},
        {"x": 1, "y": 2},
        {"w": 3, "h": 4},
        [{"text": "a", "size": 12}, {"p": {"x": 5, "y": 6}}],
    ]


async def test_typed_values_work_as_event_arguments(client: Client) -> None:
    handle = client.get_or_create("shapes", "events")
    seen: list[Any] = []
    async with handle.connect() as conn:
        conn.on("shapes", lambda *args: seen.append(list(args)))
        await conn.shout()
    assert seen == [[{"text": "hi", "size": 12}, {"x": 1, "y": 2}, {"w": 3, "h": 4}]]


async def test_typed_values_work_as_queue_bodies(client: Client) -> None:
    handle = client.get_or_create("shapes", "queues")
    await handle.send("labels", Label(text="typed"))
    await handle.send("labels", {"text": "plain"})
    await handle.send("anything", Label(text="any"))
    await handle.send("anything", Point(1, 2))
    assert await handle.take("labels") == ["Label", {"text": "typed", "size": 12}]
    assert await handle.take("labels") == ["Label", {"text": "plain", "size": 12}]
    assert await handle.take("anything") == ["dict", {"text": "any", "size": 12}]
    assert await handle.take("anything") == ["dict", {"x": 1, "y": 2}]


async def test_scheduled_calls_convert_their_arguments_when_they_fire(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = MockClock()
    async with run_actors(Registry([shapes]), clock=clock) as (_, client):
        handle = client.get_or_create("shapes", "schedules")
        await handle.plan(1, Point(1, 2))
        await handle.plan(2, {"x": "one", "y": 2})
        await clock.advance(3)
        assert await handle.placed() == [["Point", 1, 2]]
    assert "scheduled action 'place' failed" in caplog.text
    assert "argument 1 (at) must be Point" in caplog.text


def test_a_parameter_type_that_cannot_be_built_from_plain_data_is_refused_at_definition() -> None:
    bad = actor("bad")

    def takes_opaque(c: Any, thing: Opaque) -> None:
        pass

    with pytest.raises(DefinitionError) as info:
        bad.action(takes_opaque)
    assert "action 'takes_opaque': parameter 'thing'" in info.value.args[0]
    assert "Opaque is not a dataclass" in info.value.args[0]

    def returns_opaque(c: Any) -> list[Opaque]:
        return []

    with pytest.raises(DefinitionError, match="parameter 'return'"):
        bad.action(returns_opaque)


def test_an_annotation_that_cannot_be_resolved_is_not_checked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    late = actor("late")

    def later(c: Missing, point: Point, other: NotDefinedAnywhere) -> None:  # type: ignore[name-defined] # noqa: F821
        pass

    with caplog.at_level(logging.WARNING, "pyrivet.actor"):
        late.action(later)
    spec = late.actions["later"]
    assert spec.arguments is not None
    # `point` still resolves (Point is a module global); `other` is left unchecked.
    assert spec.arguments([{"x": 1, "y": 2}, object]) == [Point(1, 2), object]
    assert "'NotDefinedAnywhere' of other cannot be resolved" in caplog.text
    assert "Missing" not in caplog.text  # the context's annotation is never checked
    assert shapes.actions["anything"].arguments is None  # nothing to check: no cost
