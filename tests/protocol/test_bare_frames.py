"""The bare frames of every action (ActionRequest in, ActionResponse and Event out) are
read and written without the general BareReader / BareWriter: the bytes and the errors
must be exactly theirs."""

from __future__ import annotations

from typing import Any

import pytest

from pyrivet._codec import cbor
from pyrivet._codec.bare import BareReader, BareWriter
from pyrivet._protocol import bare_schema
from pyrivet._protocol.errors import InvalidMessageError
from pyrivet._protocol.messages import ActionRequest, ActionResponse, Event
from pyrivet.errors import EncodingError


class _Response(ActionResponse, frozen=True):
    """Not exactly an ActionResponse: takes the general writer."""


class _Event(Event, frozen=True):
    """Not exactly an Event: takes the general writer."""


def request_frame(version: int, action_id: bytes, name: bytes, args: bytes) -> bytes:
    writer = BareWriter()
    writer.write_u16(version)
    writer.write_tag(0)
    writer.write_raw(action_id)
    writer.write_uint(len(name))
    writer.write_raw(name)
    writer.write_uint(len(args))
    writer.write_raw(args)
    return writer.getvalue()


def uint(value: int) -> bytes:
    writer = BareWriter()
    writer.write_uint(value)
    return writer.getvalue()


def general_read(data: bytes) -> Any:
    """What the general reader makes of a ToServer frame (the pre-fast-path code)."""
    reader = BareReader(data, "ToServer")
    reader.read_u16()
    assert reader.read_tag() == 0
    action_id, name = reader.read_uint(), reader.read_str()
    args = cbor.decode(reader.read_data())
    reader.expect_end()
    if not isinstance(args, list):
        args = [] if args is None else [args]
    return ActionRequest(action_id, name, args)


IDS = [0, 1, 127, 128, 300, 16383, 16384, 2**21, 2**35, 2**64 - 1]


@pytest.mark.parametrize("action_id", IDS)
@pytest.mark.parametrize("output", [None, 7, -7, "é", [1, "a"], {"a": [1]}, 2**60, b"\x00"])
def test_action_response_is_what_the_general_writer_writes(action_id: int, output: Any) -> None:
    fast = bare_schema.write_to_client(ActionResponse(action_id, output))
    assert fast == bare_schema.write_to_client(_Response(action_id, output))


@pytest.mark.parametrize("name", ["newCount", "", "é" * 100, "x" * 200])
@pytest.mark.parametrize("args", [[], [1], [7, "a", [None, True]], [{"k": b"\x01"}]])
def test_event_is_what_the_general_writer_writes(name: str, args: list[Any]) -> None:
    fast = bare_schema.write_to_client(Event(name, args))
    assert fast == bare_schema.write_to_client(_Event(name, args))


def test_out_of_range_action_id_is_refused_as_before() -> None:
    for writer in (ActionResponse, _Response):
        with pytest.raises(EncodingError, match="out of range"):
            bare_schema.write_to_client(writer(2**64, 1))


@pytest.mark.parametrize("version", [1, 2, 3, 4])
@pytest.mark.parametrize("action_id", IDS)
@pytest.mark.parametrize("args", [[], [1], ["a", [2, None]], None, 5])
def test_action_request_reads_as_the_general_reader(
    version: int, action_id: int, args: Any
) -> None:
    frame = request_frame(version, uint(action_id), b"increment", cbor.encode(args))
    assert bare_schema.read_to_server(frame) == general_read(frame)


BAD = {
    "non-canonical id": request_frame(4, bytes([0x80, 0x00]), b"a", b"\x80"),
    "id over 64 bits": request_frame(4, bytes([0xFF] * 9 + [0x02]), b"a", b"\x80"),
    "id longer than 10 bytes": request_frame(4, bytes([0x80] * 10 + [0x01]), b"a", b"\x80"),
    "truncated id": bytes([4, 0, 0, 0x80]),
    "truncated name": bytes([4, 0, 0, 1, 5]) + b"ab",
    "name not UTF-8": request_frame(4, b"\x01", b"\xff", b"\x80"),
    "args not CBOR": request_frame(4, b"\x01", b"a", b"\xff"),
    "args truncated": request_frame(4, b"\x01", b"a", b"\x82\x01"),
    "trailing bytes": request_frame(4, b"\x01", b"a", b"\x80") + b"\x00",
    "args length past the end": bytes([4, 0, 0, 1, 1]) + b"a" + bytes([5, 0x80]),
    "version 5": request_frame(5, b"\x01", b"a", b"\x80"),
    "version 0": request_frame(0, b"\x01", b"a", b"\x80"),
    "only the version": bytes([4, 0]),
}


@pytest.mark.parametrize("frame", BAD.values(), ids=BAD.keys())
def test_bad_action_requests_get_the_general_readers_errors(frame: bytes) -> None:
    with pytest.raises(InvalidMessageError) as error:
        bare_schema.read_to_server(frame)
    # The general reader, on the same bytes: read through a memoryview, which the fast
    # path does not take.
    with pytest.raises(InvalidMessageError) as general:
        bare_schema.read_to_server(memoryview(frame))
    assert error.value.message == general.value.message


# The Python client's side: ActionRequest out, ActionResponse and Event in.


class _Request(ActionRequest, frozen=True):
    """Not exactly an ActionRequest: takes the general writer."""


@pytest.mark.parametrize("action_id", IDS)
@pytest.mark.parametrize("args", [[], [1], ["é", [2, None]], [{"k": 2**60}]])
def test_action_request_is_what_the_general_writer_writes(action_id: int, args: Any) -> None:
    fast = bare_schema.write_to_server(ActionRequest(action_id, "increment", args))
    assert fast == bare_schema.write_to_server(_Request(action_id, "increment", args))


TO_CLIENT = [
    ActionResponse(0, None),
    ActionResponse(300, [1, "a"]),
    ActionResponse(2**64 - 1, {"a": b"\x00"}),
    Event("newCount", [7]),
    Event("", []),
    Event("é" * 100, [None, [1.5]]),
]


@pytest.mark.parametrize("version", [1, 2, 3, 4])
@pytest.mark.parametrize("msg", TO_CLIENT, ids=repr)
def test_replies_and_events_read_as_the_general_reader(version: int, msg: Any) -> None:
    frame = bytes((version,)) + bare_schema.write_to_client(msg)[1:]
    assert bare_schema.read_to_client(frame) == msg
    assert bare_schema.read_to_client(memoryview(frame)) == msg  # the general reader


BAD_TO_CLIENT = {
    "response: non-canonical id": bytes([4, 0, 2, 0x80, 0x00, 1, 0xF6]),
    "response: truncated id": bytes([4, 0, 2, 0x80]),
    "response: output not CBOR": bytes([4, 0, 2, 1, 1, 0xFF]),
    "response: trailing bytes": bytes([4, 0, 2, 1, 1, 0xF6, 0]),
    "response: output past the end": bytes([4, 0, 2, 1, 5, 0xF6]),
    "event: name not UTF-8": bytes([4, 0, 3, 1, 0xFF, 1, 0x80]),
    "event: truncated name": bytes([4, 0, 3, 5, 0x61]),
    "event: args truncated": bytes([4, 0, 3, 1, 0x61, 2, 0x82, 1]),
    "event: trailing bytes": bytes([4, 0, 3, 1, 0x61, 1, 0x80, 0]),
    "version 5": bytes([5, 0, 2, 1, 1, 0xF6]),
}


@pytest.mark.parametrize("frame", BAD_TO_CLIENT.values(), ids=BAD_TO_CLIENT.keys())
def test_bad_replies_and_events_get_the_general_readers_errors(frame: bytes) -> None:
    with pytest.raises(InvalidMessageError) as error:
        bare_schema.read_to_client(frame)
    with pytest.raises(InvalidMessageError) as general:
        bare_schema.read_to_client(memoryview(frame))
    assert error.value.message == general.value.message


@pytest.mark.parametrize(
    ("action_id", "name", "args"),
    [(0, "increment", [1]), (300, "é", []), (2**40, "x" * 200, [{"a": b"\x01"}, [1, "b"]])],
)
def test_write_action_request_writes_what_write_to_server_writes(
    action_id: int, name: str, args: list[Any]
) -> None:
    """The client's call frame without the record is the record's frame, byte for byte."""
    frame = bare_schema.write_action_request(action_id, name, args)
    assert frame == bare_schema.write_to_server(ActionRequest(action_id, name, args))
    assert bare_schema.read_to_server(frame) == ActionRequest(action_id, name, args)


def test_write_action_request_refuses_what_cannot_be_encoded() -> None:
    with pytest.raises(EncodingError):
        bare_schema.write_action_request(1, "f", [object()])
