"""CBOR of user values: the compat flavour (bare payloads, replies) and the native one."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import struct
from typing import Any

import cbor2
import pytest

from pyrivet._codec import cbor
from pyrivet._codec.json_compat import MAX_DEPTH, UNDEFINED, from_compat, to_compat
from pyrivet._protocol.errors import InvalidMessageError
from pyrivet.errors import EncodingError


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


ROUND_TRIP = [
    None,
    True,
    7,
    -7,
    2**53,
    -(2**64),
    1.25,
    "s",
    "$",
    [],
    [7],
    ["$x", 1],
    ["$BigInt", "5"],
    {"a": 1},
    {"a": {"b": [b"\x00", {1, 2}]}},
    b"\x01\x02",
    {3},
]


@pytest.mark.parametrize("value", ROUND_TRIP, ids=repr)
def test_compat_values_round_trip(value: Any) -> None:
    assert cbor.decode(cbor.encode(value)) == value


@pytest.mark.parametrize("value", ROUND_TRIP, ids=repr)
def test_native_values_round_trip(value: Any) -> None:
    assert cbor.decode_native(cbor.encode_native(value)) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7, "07"),
        ([7], "8107"),
        ([2], "8102"),
        ([], "80"),
        ({"a": 1}, "a1 6161 01"),
        (None, "f6"),
        (2**53, cbor2.dumps(["$BigInt", "9007199254740992"]).hex()),
        (b"\x01", cbor2.dumps(["$Uint8Array", "AQ=="]).hex()),
        (["$x", 1], cbor2.dumps(["$$x", 1]).hex()),
        (UNDEFINED, cbor2.dumps(["$Undefined", 0]).hex()),
        ({5}, cbor2.dumps(["$Set", [5]]).hex()),
    ],
    ids=repr,
)
def test_compat_encoding_bytes(value: Any, expected: str) -> None:
    assert cbor.encode(value) == h(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"\x01", "41 01"),
        ({5}, "d9 0102 81 05"),
        (UNDEFINED, "f7"),
        (2**64 - 1, "1b ffffffffffffffff"),
        (2**64, "c2 49 010000000000000000"),
        (["$x", 1], "82 6224 78 01"),
        ({1: "a"}, "a1 01 6161"),
    ],
    ids=repr,
)
def test_native_encoding_is_plain_cbor(value: Any, expected: str) -> None:
    assert cbor.encode_native(value) == h(expected)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # cbor-x writes objects with a 16-bit map header
        ("b9 0001 636a6f62 01", {"job": 1}),
        ("b9 0001 6474696d65 1b 0000000000000005", {"time": 5}),
        # Uint8Array as typed array tag 64, undefined as 0xf7
        ("83 d840 43 010203 f7 1b 0000000000000001", [b"\x01\x02\x03", None, 1]),
        # Uint8ClampedArray
        ("d844 42 ff00", b"\xff\x00"),
        # Int32Array little-endian, Float64Array little-endian
        ("d84e 48" + struct.pack("<ii", -1, 7).hex(), [-1, 7]),
        ("d856 48" + struct.pack("<d", 1.5).hex(), [1.5]),
        # Set (tag 258) and Date (tag 1)
        ("d9 0102 82 01 02", {1, 2}),
        ("c1 1a 65930f40", dt.datetime(2024, 1, 1, 19, 15, 12, tzinfo=dt.UTC)),
        # an unknown tag is unwrapped
        ("d81b 82 6161 01", ["a", 1]),
        # bignum
        ("c2 49 010000000000000000", 2**64),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_decoding_what_cbor_x_writes(data: str, expected: Any) -> None:
    assert cbor.decode_native(h(data)) == expected
    assert cbor.decode(h(data)) == expected


def test_compat_decoding_revives_tags_but_native_does_not() -> None:
    data = cbor2.dumps([["$BigInt", "12"], ["$$x", 1]])
    assert cbor.decode(data) == [12, ["$x", 1]]
    assert cbor.decode_native(data) == [["$BigInt", "12"], ["$$x", 1]]


def test_compat_decoding_rejects_unknown_tags_with_the_position() -> None:
    with pytest.raises(InvalidMessageError, match=r"root\.a: unknown JSON-compat tag"):
        cbor.decode(cbor2.dumps({"a": ["$x", 1]}))


def test_uint64_marker_forces_the_eight_byte_form() -> None:
    assert cbor.encode_tree({"id": cbor.Uint64(0)}) == h("a1 626964 1b 0000000000000000")
    assert cbor.encode_tree([cbor.Uint64(2**64 - 1)]) == h("81 1b ffffffffffffffff")
    assert cbor.Uint64(3) == cbor.Uint64(3)
    assert repr(cbor.Uint64(3)) == "Uint64(3)"
    with pytest.raises(EncodingError):
        cbor.Uint64(-1)
    with pytest.raises(EncodingError):
        cbor.Uint64(2**64)


def test_datetimes_are_cbor_timestamps() -> None:
    aware = dt.datetime(2024, 1, 1, 19, 15, 12, tzinfo=dt.UTC)
    assert cbor.encode(aware) == h("c1 1a 65930f40")
    assert cbor.encode_native(aware.replace(tzinfo=None)) == h("c1 1a 65930f40")
    assert cbor.decode(cbor.encode(aware)) == aware


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("", "empty"),
        ("82 01", "truncated"),
        ("01 02", "1 unexpected bytes after the value"),
        ("1c", "invalid CBOR"),
        ("7f 61", "truncated"),
        ("62 fffe", "invalid CBOR"),
        ("d84e 43 010203", "partial element"),
        ("e0", "simple value"),
    ],
)
def test_malformed_cbor_raises_a_clear_error(data: str, fragment: str) -> None:
    for decode in (cbor.decode, cbor.decode_native):
        with pytest.raises(InvalidMessageError) as info:
            decode(h(data))
        assert fragment in info.value.message


def test_text_is_not_cbor() -> None:
    with pytest.raises(InvalidMessageError, match="binary"):
        cbor.load_tree("a1")


def test_shared_references_cannot_blow_up_the_decoded_size() -> None:
    value: list[Any] = [0]
    for _ in range(40):
        value = [value, value]
    data = cbor2.dumps(value, value_sharing=True)
    assert len(data) < 1000
    with pytest.raises(InvalidMessageError, match="larger than its encoding"):
        cbor.decode_native(data)


def test_deep_nesting_is_rejected() -> None:
    depth = MAX_DEPTH + 5
    with pytest.raises(InvalidMessageError, match="nested"):
        cbor.decode_native(b"\x81" * depth + b"\x00")


def test_unencodable_values_raise_encoding_error_with_position() -> None:
    for encode in (cbor.encode, cbor.encode_native):
        with pytest.raises(EncodingError, match=r"root\[0\]\.k"):
            encode([{"k": object()}])


@pytest.mark.parametrize(
    "data",
    ["c4 82 21 196ab3", "d8 25 50 " + "00" * 16, "d9 0104 44 7f000001", "d8 24 63 613a62"],
    ids=["decimal fraction", "uuid", "ip address", "mime"],
)
def test_semantic_types_no_peer_writes_are_rejected(data: str) -> None:
    with pytest.raises(InvalidMessageError, match="unsupported CBOR item"):
        cbor.decode_native(h(data))


def test_management_api_input_is_cbor_of_the_compat_form() -> None:
    # `create()` sends input {hello: 1} as base64 of what cbor-x writes.
    assert cbor.decode(base64.b64decode("uQABZWhlbGxvAQ==")) == {"hello": 1}


# The plain fast paths of `cbor.encode` / `cbor.decode` (no compat walk, see
# `cbor._is_plain`) must give exactly what the general path (compat form, then cbor2)
# gives, and leave everything else to it.
PLAIN_AND_NOT = [
    0,
    23,
    24,
    255,
    256,
    65535,
    65536,
    2**32 - 1,
    2**32,
    2**53 - 1,
    2**53,
    -1,
    -24,
    -25,
    -257,
    -(2**53 - 1),
    -(2**53),
    "",
    "a" * 23,
    "a" * 24,
    "é" * 200,
    "x" * 70000,
    "\ud800",
    None,
    True,
    False,
    1.5,
    -0.0,
    0.1,
    1e300,
    float("nan"),
    float("inf"),
    [],
    (1, "a"),
    [1, [2, ["a", None]]],
    ["$", 1],
    ["$x", 1],
    ["a", "$b"],
    [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]],
    [1] * 30,
    {"a": 1},
    b"\x01",
    [1, b"\x01"],
    [2**60],
    [7, "0a1b2c3d4e5f", "newCount", [42]],  # a numbered event's arguments
    ["a", "\ud800"],
    [1, "b", ["$c", 2]],
]


@pytest.mark.parametrize("value", PLAIN_AND_NOT, ids=repr)
def test_encode_writes_what_the_general_path_writes(value: Any) -> None:
    try:
        general = cbor.encode_tree(to_compat(value, json=False))
    except EncodingError as exc:
        with pytest.raises(EncodingError, match=exc.message[:20]):
            cbor.encode(value)
        return
    assert cbor.encode(value) == general


@pytest.mark.parametrize("value", PLAIN_AND_NOT, ids=repr)
def test_decode_reads_what_the_general_path_reads(value: Any) -> None:
    with contextlib.suppress(EncodingError):
        data = cbor.encode_tree(to_compat(value, json=False))
        fast, general = cbor.decode(data), from_compat(cbor.load_tree(data))
        assert repr(fast) == repr(general)  # repr: nan == nan, types of items
        assert type(fast) is type(general)


@pytest.mark.parametrize(
    "data",
    ["f93c00", "fa3fc00000", "fb3ff8000000000000", "f97e00", "9f01ff", "82 64 24536574 80"],
)
def test_decode_reads_other_forms_as_the_general_path(data: str) -> None:
    assert repr(cbor.decode(h(data))) == repr(from_compat(cbor.load_tree(h(data))))


@pytest.mark.parametrize(
    "data", ["", "82 01", "81 01 00", "61 ff", "7a ffffffff", "9b ffffffffffffffff"]
)
def test_irregular_input_gets_the_general_path_errors(data: str) -> None:
    with pytest.raises(InvalidMessageError) as general:
        from_compat(cbor.load_tree(h(data)))
    with pytest.raises(InvalidMessageError) as fast:
        cbor.decode(h(data))
    assert fast.value.message == general.value.message


UINT_EDGES = [0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53 - 1]


@pytest.mark.parametrize("value", UINT_EDGES)
def test_decode_reads_unsigned_integers_as_cbor2_does(value: int) -> None:
    """`decode` reads integers below 2**32 itself: same value and type as cbor2's
    decoder, from bytes, bytearray and memoryview, in the shortest form and the others."""
    data = cbor2.dumps(value)
    for form in (data, bytearray(data), memoryview(data)):
        decoded = cbor.decode(form)
        assert decoded == value and type(decoded) is int
    if value < 256:  # a longer form than needed decodes to the same integer
        assert cbor.decode(b"\x19" + value.to_bytes(2, "big")) == value


@pytest.mark.parametrize(
    "data", ["18", "19 01", "1a 000000", "01 00", "18 01 00", "1a 00000001 00"]
)
def test_decode_rejects_truncated_or_trailing_integers(data: str) -> None:
    with pytest.raises(InvalidMessageError):
        cbor.decode(h(data))
