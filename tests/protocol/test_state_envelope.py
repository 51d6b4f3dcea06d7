"""The version envelope of stored states: valid MessagePack, unambiguous, exact sizes."""

from __future__ import annotations

import dataclasses
import datetime

import msgspec
import pytest

from pyrivet._codec.values import ValueCodec, encode
from pyrivet._codec.versioned import ENVELOPE_CODE, VersionedCodec, decode_stored, unwrap, wrap


@pytest.mark.parametrize("size", [1, 4, 12, 251, 252, 253, 65_531, 65_532, 70_000])
def test_envelope_round_trips_and_is_msgpack(size: int) -> None:
    payload = encode("x" * size)
    snapshot = wrap(7, payload)
    assert unwrap(snapshot) == (7, payload)
    ext = msgspec.msgpack.decode(snapshot)
    assert isinstance(ext, msgspec.msgpack.Ext)
    assert ext.code == ENVELOPE_CODE
    assert ext.data == (7).to_bytes(4, "big") + payload


@pytest.mark.parametrize(
    "value",
    [
        {"count": 1},
        [1, 2],
        "text",
        0,
        None,
        b"",
        datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        msgspec.msgpack.Ext(ENVELOPE_CODE - 1, b"abcdef"),
    ],
)
def test_states_without_envelope_are_version_1(value: object) -> None:
    data = encode(value)
    assert unwrap(data) == (1, data)


def test_damaged_envelope_is_refused() -> None:
    snapshot = wrap(2, encode({"a": 1}))
    with pytest.raises(ValueError, match="damaged version envelope"):
        unwrap(snapshot[:-1])


@dataclasses.dataclass
class Point:
    x: int


def test_versioned_codec_reads_only_its_version() -> None:
    codec = VersionedCodec(Point, 3)
    snapshot = codec.encode(Point(1))
    assert unwrap(snapshot)[0] == 3
    assert codec.decode(snapshot) == Point(1)
    with pytest.raises(ValueError, match="state version 1, not 3"):
        codec.decode(encode({"x": 1}))
    with pytest.raises(ValueError, match="from 2 to"):
        VersionedCodec(Point, 1)


def test_history_reads_any_version() -> None:
    codec = VersionedCodec(Point, 2)
    assert decode_stored(codec, codec.encode(Point(1))) == (2, Point(1))
    assert decode_stored(codec, encode({"y": 1})) == (1, {"y": 1})
    # Today's version, but a shape the type no longer accepts: shown as stored.
    assert decode_stored(codec, wrap(2, encode({"y": 1}))) == (2, {"y": 1})
    assert decode_stored(ValueCodec(Point), encode({"x": 4})) == (1, Point(4))
