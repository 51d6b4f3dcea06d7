"""`cbor_small`: the smallest payloads, read and written without cbor2, give exactly
what the general path gives (cbor2's bytes; cbor2's value after the plain check),
and leave everything else to it."""

from __future__ import annotations

import random
from typing import Any

import cbor2
import pytest

from pyrivet._codec import cbor
from pyrivet._codec.cbor_small import read_small, write_small
from pyrivet._codec.errors import InvalidMessageError
from pyrivet._codec.json_compat import from_compat


def _general_decode(data: bytes) -> Any:
    """`cbor.decode` without its fast paths."""
    value = cbor._decode_item(data)
    if cbor._is_plain(value, 0):
        return value
    return from_compat(cbor._normalize(value, len(data)))


def _item(rng: random.Random) -> Any:
    pick = rng.random()
    if pick < 0.45:
        return rng.choice([0, 1, 23, 24, 255, 256, 65535, 65536, -1, rng.randrange(70000)])
    if pick < 0.9:
        return "".join(rng.choice("ab$é😀\x00") for _ in range(rng.randrange(14)))
    return rng.choice([None, True, 1.5, [1], b"x", "\ud800"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5, "05"), (24, "1818"), (65535, "19ffff"), ([5], "8105"), (["hi"], "81626869")],
)
def test_written_bytes(value: Any, expected: str) -> None:
    assert write_small(value) == bytes.fromhex(expected) == cbor2.dumps(value)


@pytest.mark.parametrize(
    "value", [65536, -1, True, [1, 2], [], [-1], ["x" * 24], ["\ud800"], [None], (1,), 1.0]
)
def test_other_values_are_left_to_the_general_path(value: Any) -> None:
    assert write_small(value) is None


def test_writes_what_cbor2_writes() -> None:
    rng = random.Random(7)
    taken = 0
    for _ in range(20000):
        value = [_item(rng)] if rng.random() < 0.7 else _item(rng)
        data = write_small(value)
        if data is not None:
            taken += 1
            assert data == cbor2.dumps(value) == cbor.encode(value), value

    assert taken > 5000


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("80", []),
        ("8101", [1]),
        ("83011818190100", [1, 24, 256]),
        ("8261616162", ["a", "b"]),
        ("82181760", [23, ""]),  # a non-shortest head reads as cbor2 reads it
    ],
)
def test_read_values(data: str, expected: Any) -> None:
    assert read_small(bytes.fromhex(data)) == expected == cbor.decode(bytes.fromhex(data))


@pytest.mark.parametrize(
    "data",
    [
        "",
        "01",  # a lone integer: `cbor.decode`'s own path
        "810101",  # trailing bytes
        "82",  # truncated
        "8118",  # truncated head
        "811901",  # truncated head
        "8162ff",  # truncated text
        "8161ff",  # invalid UTF-8
        "8120",  # a negative integer
        "980101",  # a 1-byte count
        "82622401",  # ["$", 1]: the shape of a compat tag
        "826624426967496e746131",  # ["$BigInt", "1"]: revived by the general path
    ],
)
def test_other_bytes_are_left_to_the_general_path(data: str) -> None:
    assert read_small(bytes.fromhex(data)) is None


def test_reads_what_the_general_path_reads() -> None:
    rng = random.Random(11)
    taken = 0
    for _ in range(50000):
        if rng.random() < 0.5:
            try:
                data = cbor2.dumps([_item(rng) for _ in range(rng.randrange(26))])
            except (ValueError, UnicodeEncodeError):
                continue
            if data and rng.random() < 0.3:
                mutated = bytearray(data)
                mutated[rng.randrange(len(data))] = rng.randrange(256)
                data = bytes(mutated)
            if rng.random() < 0.1:
                data += b"\x01"
        else:
            head = rng.choice([0x80, 0x81, 0x82, 0x83, 0x97, 0x98])
            data = bytes([head, *(rng.randrange(256) for _ in range(rng.randrange(8)))])
        value = read_small(data)
        if value is None:
            continue
        taken += 1
        try:
            expected = _general_decode(data)
        except InvalidMessageError as exc:  # pragma: no cover - the failure's report
            raise AssertionError(f"{data.hex()} read as {value!r}, rejected by cbor2") from exc
        assert value == expected, data.hex()
        assert [type(v) for v in value] == [type(v) for v in expected], data.hex()

    assert taken > 2000
