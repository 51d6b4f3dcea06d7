"""The JSON-compat transform: what RivetKit's JavaScript side writes and revives."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import pickle
import uuid
from decimal import Decimal
from typing import Any

import msgspec
import pydantic
import pytest

from pyrivet._codec import json_compat
from pyrivet._codec.json_compat import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    UNDEFINED,
    UndefinedType,
    from_compat,
    to_compat,
)
from pyrivet._protocol.errors import InvalidMessageError
from pyrivet.errors import EncodingError

ROUND_TRIP = [
    None,
    True,
    False,
    0,
    -1,
    MAX_SAFE_INTEGER,
    -MAX_SAFE_INTEGER,
    MAX_SAFE_INTEGER + 1,
    -(MAX_SAFE_INTEGER + 1),
    2**64,
    -(10**40),
    1.5,
    -0.25,
    "",
    "text with ünïcode ✓",
    "$",
    "$BigInt",
    [],
    [1, 2, 3],
    ["$x", 1],
    ["$$x", 1],
    ["$BigInt", "12"],
    ["$Undefined", 0],
    ["$x", ["$y", 2]],
    [["$x", 1], 2],
    ["$x", 1, 2],
    ["x", "$y"],
    {},
    {"a": 1, "b": [True, None], "$c": {"d": "e"}},
    {"nested": {"list": [["$a", {"b": ["$c", 3]}]]}},
    b"",
    b"\x00\x01\xff",
    {1, 2, 3},
    {"$a", "b"},
    set(),
    [b"bytes", 2**70, {"k": {7}}],
]


@pytest.mark.parametrize("value", ROUND_TRIP, ids=repr)
def test_values_round_trip_through_json(value: Any) -> None:
    assert json_compat.decode(json_compat.encode(value)) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, b"5"),
        (2**53 - 1, b"9007199254740991"),
        (2**53, b'["$BigInt","9007199254740992"]'),
        (-(2**53), b'["$BigInt","-9007199254740992"]'),
        (b"hi", b'["$Uint8Array","aGk="]'),
        (bytearray(b"hi"), b'["$Uint8Array","aGk="]'),
        (memoryview(b"hi"), b'["$Uint8Array","aGk="]'),
        (UNDEFINED, b'["$Undefined",0]'),
        ({7}, b'["$Set",[7]]'),
        (["$x", 1], b'["$$x",1]'),
        (("$x", 1), b'["$$x",1]'),
        (["$$x", 1], b'["$$$x",1]'),
        (["$x", ["$y", 2]], b'["$$x",["$$y",2]]'),
        ([b"a", 1], b'[["$Uint8Array","YQ=="],1]'),
        ({"a": ["$b", None]}, b'{"a":["$$b",null]}'),
        ({1: "int key"}, b'{"1":"int key"}'),
        ([float("nan"), float("inf")], b"[null,null]"),
    ],
    ids=repr,
)
def test_encoding_matches_what_the_javascript_side_writes(value: Any, expected: bytes) -> None:
    assert json_compat.encode(value) == expected


def test_set_items_are_not_escaped_as_a_pair() -> None:
    tree = to_compat(frozenset({"$a", 1}))
    assert tree[0] == "$Set"
    assert sorted(tree[1], key=str) == ["$a", 1]
    assert from_compat(tree) == {"$a", 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b'["$BigInt","123"]', 123),
        (b'["$BigInt","-9007199254740993"]', -9007199254740993),
        (b'["$Uint8Array","AAH/"]', b"\x00\x01\xff"),
        (b'["$Uint8Array","AAH"]', b"\x00\x01"),
        (b'["$ArrayBuffer","AAE="]', b"\x00\x01"),
        (b'["$Undefined",0]', None),
        (b'["$Set",[1,"a"]]', {1, "a"}),
        (b'["$Set",[["$$x",1]]]', [["$x", 1]]),
        (b'["$Set",[{"a":1},[2]]]', [{"a": 1}, [2]]),
        (b'["$$x",["$BigInt","1"]]', ["$x", 1]),
        (b'["$$$x",1]', ["$$x", 1]),
        (b'{"id":["$BigInt","0"],"args":[["$$x",1]]}', {"id": 0, "args": [["$x", 1]]}),
        ('["é",1.5]', ["é", 1.5]),
    ],
    ids=repr,
)
def test_decoding_revives_tags(text: bytes | str, expected: Any) -> None:
    assert json_compat.decode(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (b'["$Foo",1]', "at root: unknown JSON-compat tag '$Foo'"),
        (b'{"a":[1,["$Foo",1]]}', "at root.a[1]"),
        (b'["$BigInt","12a"]', "decimal digits"),
        (b'["$BigInt",12]', "decimal digits"),
        (b'["$Uint8Array",5]', "base64 string"),
        (b'["$Uint8Array","!!!!"]', "not valid base64"),
        (b'["$Set",{"a":1}]', "must be an array"),
        (b'["$Set",[1,["$Nope",2]]]', "root[1][1]"),
        (b'["$$x",["$Nope",2]]', "root[1]"),
        (b"{", "invalid JSON"),
        (b"", "empty"),
        ("[" * 5000 + "]" * 5000, "nested"),
    ],
)
def test_invalid_input_raises_a_clear_error(text: bytes | str, fragment: str) -> None:
    with pytest.raises(InvalidMessageError) as info:
        json_compat.decode(text)
    assert fragment in info.value.message
    assert (info.value.group, info.value.code) == ("protocol", "invalid_message")


def test_bigint_with_too_many_digits_is_rejected() -> None:
    text = '["$BigInt","' + "9" * 5000 + '"]'
    with pytest.raises(InvalidMessageError, match="too many digits"):
        json_compat.decode(text)


def test_deep_but_valid_nesting_is_rejected_cleanly() -> None:
    text = "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)
    with pytest.raises(InvalidMessageError, match="nested deeper"):
        json_compat.decode(text)


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Key(str, enum.Enum):  # noqa: UP042 - the mixin form, whose str() is 'Key.A'
    A = "a"


@dataclasses.dataclass
class Point:
    x: int
    y: int
    tags: set[str]
    raw: bytes


class Item(msgspec.Struct):
    name: str
    count: int = 0


class Model(pydantic.BaseModel):
    name: str
    data: bytes


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ((1, "a"), [1, "a"]),
        (Color.RED, "red"),
        (Level.HIGH, 3),
        ({Key.A: 1}, {"a": 1}),
        (Point(1, 2, {"t"}, b"\x01"), {"x": 1, "y": 2, "tags": ["t"], "raw": b"\x01"}),
        (Item("n"), {"name": "n", "count": 0}),
        (Model(name="m", data=b"\x02"), {"name": "m", "data": b"\x02"}),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (Decimal("1.50"), "1.50"),
        (dt.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC), "2024-01-02T03:04:05.678Z"),
        (dt.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05.000Z"),
        (
            dt.datetime(2024, 1, 2, 5, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2024-01-02T03:04:05.000Z",
        ),
        (dt.date(2024, 1, 2), "2024-01-02"),
        (dt.time(3, 4, 5), "03:04:05"),
    ],
    ids=repr,
)
def test_other_python_types_are_lowered_to_plain_data(value: Any, expected: Any) -> None:
    assert json_compat.decode(json_compat.encode(value)) == expected


def test_datetimes_stay_native_for_cbor_targets() -> None:
    naive = dt.datetime(2024, 1, 2, 3, 4, 5)
    assert to_compat([naive], json=False) == [naive.replace(tzinfo=dt.UTC)]
    assert to_compat({1: "a"}, json=False) == {1: "a"}


def test_unsupported_types_name_the_type_and_position() -> None:
    with pytest.raises(EncodingError) as info:
        json_compat.encode({"a": [1, object()]})
    assert "root.a[1]" in info.value.message
    assert "object" in info.value.message
    assert info.value.metadata == {"path": "root.a[1]"}
    assert (info.value.group, info.value.code) == ("message", "unencodable")


@pytest.mark.parametrize("key", [(1, 2), 1.5, None, True, b"k"], ids=repr)
def test_dict_keys_must_be_str_or_int(key: Any) -> None:
    with pytest.raises(EncodingError, match="dict keys must be str or int"):
        json_compat.encode({key: 1})


def test_a_value_containing_itself_is_rejected() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(EncodingError, match="nested deeper"):
        json_compat.encode(loop)


def test_integers_too_long_to_print_are_rejected() -> None:
    with pytest.raises(EncodingError, match="too many digits"):
        json_compat.encode(10**5000)


def test_lone_surrogates_are_an_encoding_error() -> None:
    with pytest.raises(EncodingError):
        json_compat.encode("\ud800")


def test_undefined_is_a_falsy_picklable_singleton() -> None:
    assert UndefinedType() is UNDEFINED
    assert not UNDEFINED
    assert repr(UNDEFINED) == "UNDEFINED"
    assert pickle.loads(pickle.dumps(UNDEFINED)) is UNDEFINED
    assert json_compat.decode(json_compat.encode([UNDEFINED, 1])) == [None, 1]


def test_js_iso_format_matches_date_to_json() -> None:
    value = dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
    assert json_compat.js_iso_format(value) == "1999-12-31T23:59:59.999Z"
