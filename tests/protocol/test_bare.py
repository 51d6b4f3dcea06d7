"""The BARE primitives: known encodings, round trips, and every kind of bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pyrivet._codec.bare import BareReader, BareWriter
from pyrivet._protocol.errors import InvalidMessageError
from pyrivet.errors import EncodingError


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def written(write: Callable[[BareWriter], None]) -> bytes:
    writer = BareWriter()
    write(writer)
    return writer.getvalue()


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"),
        (1, "01"),
        (127, "7f"),
        (128, "8001"),
        (300, "ac02"),
        (16384, "808001"),
        (2**32, "8080808010"),
        (2**64 - 1, "ffffffffffffffffff01"),
    ],
)
def test_uint_is_leb128(value: int, encoded: str) -> None:
    assert written(lambda w: w.write_uint(value)) == h(encoded)
    reader = BareReader(h(encoded))
    assert reader.read_uint() == value
    reader.expect_end()


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "00"), (-1, "01"), (1, "02"), (-2, "03"), (63, "7e"), (-64, "7f"), (64, "8001")],
)
def test_int_is_zigzag(value: int, encoded: str) -> None:
    assert written(lambda w: w.write_int(value)) == h(encoded)
    assert BareReader(h(encoded)).read_int() == value


@pytest.mark.parametrize("value", [-(2**63), 2**63 - 1, -123456789, 987654321])
def test_int_extremes_round_trip(value: int) -> None:
    assert BareReader(written(lambda w: w.write_int(value))).read_int() == value


@pytest.mark.parametrize(
    ("kind", "value", "encoded"),
    [
        ("u8", 255, "ff"),
        ("u16", 4, "0400"),
        ("u32", 1, "01000000"),
        ("u64", 4000, "a00f000000000000"),
        ("i8", -1, "ff"),
        ("i16", -2, "feff"),
        ("i32", -1, "ffffffff"),
        ("i64", -1, "ffffffffffffffff"),
        ("f32", 1.5, "0000c03f"),
        ("f64", -2.0, "00000000000000c0"),
    ],
)
def test_fixed_width_numbers_are_little_endian(kind: str, value: Any, encoded: str) -> None:
    assert written(lambda w: getattr(w, f"write_{kind}")(value)) == h(encoded)
    reader = BareReader(h(encoded))
    assert getattr(reader, f"read_{kind}")() == value
    reader.expect_end()


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("uint", -1),
        ("uint", 2**64),
        ("int", 2**63),
        ("u8", 256),
        ("u16", -1),
        ("u64", 2**64),
        ("i8", 128),
        ("f32", float("nan")),
        ("f64", float("nan")),
    ],
)
def test_out_of_range_writes_raise_encoding_error(kind: str, value: Any) -> None:
    with pytest.raises(EncodingError, match="BARE"):
        getattr(BareWriter(), f"write_{kind}")(value)


def test_nan_is_rejected_on_read() -> None:
    with pytest.raises(InvalidMessageError, match="NaN"):
        BareReader(h("0000c07f")).read_f32()
    with pytest.raises(InvalidMessageError, match="NaN"):
        BareReader(h("000000000000f87f")).read_f64()


def test_bool_str_data() -> None:
    def write(w: BareWriter) -> None:
        w.write_bool(True)
        w.write_bool(False)
        w.write_str("hé")
        w.write_data(b"\x00\x01")
        w.write_fixed_data(b"abc", 3)

    data = written(write)
    assert data == h("01 00 03 68c3a9 02 0001 616263")
    reader = BareReader(data)
    assert reader.read_bool() is True
    assert reader.read_bool() is False
    assert reader.read_str() == "hé"
    assert reader.read_data() == b"\x00\x01"
    assert reader.read_fixed_data(3) == b"abc"
    reader.expect_end()


def test_optional_list_map_and_union_tags() -> None:
    def write(w: BareWriter) -> None:
        w.write_optional(None, w.write_uint)
        w.write_optional(5, w.write_uint)
        w.write_list(["a", "b"], w.write_str)
        w.write_map({"k": 1}, w.write_str, w.write_uint)
        w.write_tag(3)
        w.write_raw(b"\xaa")

    data = written(write)
    assert data == h("00 0105 02 0161 0162 01 016b 01 03 aa")
    reader = BareReader(data)
    assert reader.read_optional(reader.read_uint) is None
    assert reader.read_optional(reader.read_uint) == 5
    assert reader.read_list(reader.read_str) == ["a", "b"]
    assert reader.read_map(reader.read_str, reader.read_uint) == {"k": 1}
    assert reader.read_tag() == 3
    assert reader.remaining == 1
    assert reader.read_raw(1) == b"\xaa"
    assert reader.offset == len(data)
    reader.expect_end()


def test_fixed_data_length_is_checked_on_write() -> None:
    with pytest.raises(EncodingError, match="data<4>"):
        BareWriter().write_fixed_data(b"abc", 4)


def test_lone_surrogates_cannot_be_written() -> None:
    with pytest.raises(EncodingError, match="surrogate"):
        BareWriter().write_str("\udc00")


@pytest.mark.parametrize(
    ("data", "read", "fragment"),
    [
        ("", "read_uint", "truncated varint (at byte 0)"),
        ("80", "read_uint", "truncated varint"),
        ("8000", "read_uint", "non-canonical"),
        ("ff ff ff ff ff ff ff ff ff 02", "read_uint", "exceeds 64 bits"),
        ("80 80 80 80 80 80 80 80 80 80 01", "read_uint", "longer than 10 bytes"),
        ("02", "read_bool", "invalid bool byte 0x02"),
        ("", "read_bool", "truncated"),
        ("05 6869", "read_str", "length 5 but 2 bytes left"),
        ("02 fffe", "read_str", "not valid UTF-8"),
        ("03 00", "read_data", "length 3 but 1 bytes left"),
        ("0100", "read_u32", "needed 4 bytes, 2 left"),
        ("02", "read_optional_uint", "invalid optional flag 0x02"),
        ("ff01", "read_list_uint", "length 255 but 0 bytes left"),
        ("02 0161 01 0161 02", "read_map_str_uint", "duplicate map key 'a'"),
    ],
)
def test_bad_input_raises_invalid_message_with_offset(data: str, read: str, fragment: str) -> None:
    reader = BareReader(h(data), "Thing")
    readers: dict[str, Callable[[], Any]] = {
        "read_optional_uint": lambda: reader.read_optional(reader.read_uint),
        "read_list_uint": lambda: reader.read_list(reader.read_uint),
        "read_map_str_uint": lambda: reader.read_map(reader.read_str, reader.read_uint),
    }
    call = readers.get(read) or getattr(reader, read)
    with pytest.raises(InvalidMessageError) as info:
        call()
    assert info.value.message.startswith("invalid Thing: ")
    assert fragment in info.value.message
    assert "(at byte " in info.value.message


def test_trailing_bytes_are_reported() -> None:
    reader = BareReader(h("01 02 03"))
    reader.read_uint()
    with pytest.raises(InvalidMessageError, match="2 unexpected bytes after the end"):
        reader.expect_end()


def test_reader_accepts_any_bytes_like() -> None:
    assert BareReader(bytearray(b"\x05")).read_uint() == 5
    assert BareReader(memoryview(b"\x06")).read_uint() == 6
