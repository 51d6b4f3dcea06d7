"""Client-protocol messages in json, cbor and bare.

The byte strings marked "captured" are the frames and bodies recorded between the
official ``rivetkit@2.3.19`` client and the RivetKit engine (the protocol reference,
§6, §7, §9.3 and §10). Where the reference elides part of a value ("pymv…"), the
test fills in a value of the same length and shape.
"""

from __future__ import annotations

import contextlib
import json
import random
from typing import Any, ClassVar

import cbor2
import pytest

from pyrivet._codec.json_compat import UNDEFINED
from pyrivet._protocol.messages import (
    DEFAULT_ENCODING,
    ENCODINGS,
    QUEUE_COMPLETED,
    QUEUE_TIMED_OUT,
    ActionRequest,
    ActionResponse,
    ActorSpecifier,
    Encoding,
    Error,
    Event,
    HttpActionRequest,
    HttpActionResponse,
    HttpBody,
    HttpQueueSendRequest,
    HttpQueueSendResponse,
    HttpResolveResponse,
    HttpResponseError,
    Init,
    InvalidMessageError,
    ProtocolError,
    QueueSendStatus,
    SubscriptionRequest,
    ToClient,
    ToServer,
    UnsupportedEncodingError,
    content_type,
    decode_http,
    decode_to_client,
    decode_to_server,
    encode_http,
    encode_to_client,
    encode_to_server,
    is_binary,
    parse_encoding,
)
from pyrivet.errors import (
    ActorError,
    ActorNotFoundError,
    EncodingError,
    InternalError,
    UserError,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def s(text: str) -> bytes:
    """A BARE str: one-byte length (all strings here are short) + UTF-8."""
    raw = text.encode()
    assert len(raw) < 128
    return bytes([len(raw)]) + raw


# MARK: captured traffic

BARE_ACTOR_ID = "lbqz3rcfmg3y7hsa6znq9nskvral00"
BARE_KEY = "cap-bare-1795312265953/sub"
JSON_ACTOR_ID = "pymvgvahclql88licpntjusw5gcl00"
JSON_KEY = "cap-json-1795312265953/sub"

BARE_INIT = h("0400 00") + s(BARE_ACTOR_ID) + s("6621a253-d23a-4c82-a406-951b4378241b")
BARE_SUBSCRIBE = h("0400 01") + s("newCount") + h("01")
BARE_INCREMENT = h("0400 00 00") + s("increment") + h("02 8102")
BARE_EVENT = h("0400 03") + s("newCount") + h("02 8107")
BARE_ACTION_RESPONSE = h("0400 02 00 01 07")
BARE_FAIL = h("0400 00 02") + s("fail") + h("01 80")
BARE_ERROR = (
    h("0400 01")
    + s("user")
    + s("custom_code")
    + s("nope")
    + h("01 04 a1616101")
    + h("01 02")
    + h("01")
    + s(BARE_ACTOR_ID)
    + h("01 01")
    + s(BARE_KEY)
)

JSON_INIT = (
    b'{"body":{"tag":"Init","val":{"actorId":"pymvgvahclql88licpntjusw5gcl00",'
    b'"connectionId":"465587a9-8f8a-4d57-94b9-104f41e30509"}}}'
)
JSON_SUBSCRIBE = (
    b'{"body":{"tag":"SubscriptionRequest","val":{"eventName":"newCount","subscribe":true}}}'
)
JSON_INCREMENT = (
    b'{"body":{"tag":"ActionRequest","val":{"id":["$BigInt","0"],"name":"increment","args":[2]}}}'
)
JSON_EVENT = b'{"body":{"tag":"Event","val":{"args":[7],"name":"newCount"}}}'
JSON_ACTION_RESPONSE = b'{"body":{"tag":"ActionResponse","val":{"id":["$BigInt","0"],"output":7}}}'
JSON_FAIL = b'{"body":{"tag":"ActionRequest","val":{"id":["$BigInt","2"],"name":"fail","args":[]}}}'
JSON_ERROR = (
    b'{"body":{"tag":"Error","val":{"actionId":["$BigInt","2"],'
    b'"actor":{"actorId":"pymvgvahclql88licpntjusw5gcl00","generation":1,'
    b'"key":"cap-json-1795312265953/sub"},'
    b'"code":"custom_code","group":"user","message":"nope","metadata":{"a":1}}}}'
)

CBOR_ACTION_RESPONSE = (
    h("a1 64")
    + b"body"
    + h("a2 63")
    + b"tag"
    + h("6e")
    + b"ActionResponse"
    + h("63")
    + b"val"
    + h("a2 62")
    + b"id"
    + h("1b 0000000000000000 66")
    + b"output"
    + h("07")
)

BARE_INCREMENT_MSG = ActionRequest(id=0, name="increment", args=[2])
BARE_ERROR_MSG = Error(
    group="user",
    code="custom_code",
    message="nope",
    metadata={"a": 1},
    action_id=2,
    actor=ActorSpecifier(actor_id=BARE_ACTOR_ID, generation=1, key=BARE_KEY),
)
JSON_ERROR_MSG = Error(
    "user", "custom_code", "nope", {"a": 1}, 2, ActorSpecifier(JSON_ACTOR_ID, 1, JSON_KEY)
)


@pytest.mark.parametrize(
    ("data", "encoding", "expected"),
    [
        (BARE_SUBSCRIBE, "bare", SubscriptionRequest(event_name="newCount", subscribe=True)),
        (BARE_INCREMENT, "bare", BARE_INCREMENT_MSG),
        (BARE_FAIL, "bare", ActionRequest(id=2, name="fail", args=[])),
        (JSON_SUBSCRIBE, "json", SubscriptionRequest("newCount", True)),
        (JSON_INCREMENT, "json", BARE_INCREMENT_MSG),
        (JSON_INCREMENT.decode(), "json", BARE_INCREMENT_MSG),
        (JSON_FAIL, "json", ActionRequest(2, "fail", [])),
    ],
)
def test_decodes_captured_client_frames(
    data: bytes | str, encoding: Encoding, expected: ToServer
) -> None:
    assert decode_to_server(data, encoding) == expected


@pytest.mark.parametrize(
    ("msg", "encoding", "expected"),
    [
        (Init(BARE_ACTOR_ID, "6621a253-d23a-4c82-a406-951b4378241b"), "bare", BARE_INIT),
        (Event("newCount", [7]), "bare", BARE_EVENT),
        (ActionResponse(0, 7), "bare", BARE_ACTION_RESPONSE),
        (BARE_ERROR_MSG, "bare", BARE_ERROR),
        (Init(JSON_ACTOR_ID, "465587a9-8f8a-4d57-94b9-104f41e30509"), "json", JSON_INIT),
        (Event("newCount", [7]), "json", JSON_EVENT),
        (ActionResponse(0, 7), "json", JSON_ACTION_RESPONSE),
        (JSON_ERROR_MSG, "json", JSON_ERROR),
        (ActionResponse(0, 7), "cbor", CBOR_ACTION_RESPONSE),
    ],
)
def test_encodes_server_frames_byte_for_byte(
    msg: ToClient, encoding: Encoding, expected: bytes
) -> None:
    assert encode_to_client(msg, encoding) == expected
    assert decode_to_client(expected, encoding) == msg


@pytest.mark.parametrize(
    ("msg", "encoding", "expected"),
    [
        (SubscriptionRequest("newCount", True), "bare", BARE_SUBSCRIBE),
        (BARE_INCREMENT_MSG, "bare", BARE_INCREMENT),
        (ActionRequest(2, "fail", []), "bare", BARE_FAIL),
        (SubscriptionRequest("newCount", True), "json", JSON_SUBSCRIBE),
        (BARE_INCREMENT_MSG, "json", JSON_INCREMENT),
        (ActionRequest(2, "fail", []), "json", JSON_FAIL),
    ],
)
def test_encodes_client_frames_as_the_javascript_client_does(
    msg: ToServer, encoding: Encoding, expected: bytes
) -> None:
    assert encode_to_server(msg, encoding) == expected


# MARK: captured HTTP bodies

HTTP_ACTION_REQUESTS = [
    ("json", b'{"args":[5]}'),
    ("cbor", h("b9 0001 64") + b"args" + h("81 05")),
    ("bare", h("0400 02 8105")),
]
HTTP_ACTION_RESPONSES = [
    ("json", b'{"output":5}'),
    ("cbor", h("a1 66") + b"output" + h("05")),
    ("bare", h("0400 01 05")),
]


@pytest.mark.parametrize(("encoding", "data"), HTTP_ACTION_REQUESTS)
def test_http_action_request_bodies(encoding: Encoding, data: bytes) -> None:
    assert decode_http(data, encoding, HttpActionRequest) == HttpActionRequest(args=[5])


@pytest.mark.parametrize(("encoding", "data"), HTTP_ACTION_RESPONSES)
def test_http_action_response_bodies(encoding: Encoding, data: bytes) -> None:
    assert encode_http(HttpActionResponse(output=5), encoding) == data
    assert decode_http(data, encoding, HttpActionResponse) == HttpActionResponse(5)


QUEUE_NO_WAIT = HttpQueueSendRequest(body={"job": 1}, name="jobs", wait=False)
QUEUE_WAIT = HttpQueueSendRequest(body={"t": 7}, name="tasks", wait=True, timeout_ms=4000)
QUEUE_WAIT_NO_TIMEOUT = HttpQueueSendRequest(body={"t": 7}, name="tasks", wait=True)
QUEUE_NO_BODY = HttpQueueSendRequest(name="jobs", wait=False)


def cbor_map(*items: tuple[str, bytes]) -> bytes:
    """A map as cbor-x writes it (``b9`` + 16-bit length) with short text keys."""
    out = h("b9") + len(items).to_bytes(2, "big")
    for key, value in items:
        out += bytes([0x60 + len(key)]) + key.encode() + value
    return out


# What rivetkit@2.3.19 sent for handle.send("jobs", {job: 1}),
# send("tasks", {t: 7}, {wait: true, timeout: 4000}), send("tasks", {t: 7}, {wait: true})
# and send("jobs") (no body), recorded on a loopback HTTP server.
CBOR_JOB = cbor_map(("job", h("01")))
CBOR_T7 = cbor_map(("t", h("07")))
QUEUE_REQUESTS_CAPTURED: list[tuple[Encoding, bytes, HttpQueueSendRequest]] = [
    ("json", b'{"body":{"job":1},"name":"jobs","wait":false}', QUEUE_NO_WAIT),
    ("json", b'{"body":{"t":7},"name":"tasks","wait":true,"timeout":4000}', QUEUE_WAIT),
    ("json", b'{"body":{"t":7},"name":"tasks","wait":true}', QUEUE_WAIT_NO_TIMEOUT),
    ("json", b'{"name":"jobs","wait":false}', QUEUE_NO_BODY),
    (
        "cbor",
        cbor_map(
            ("body", CBOR_JOB), ("name", h("64") + b"jobs"), ("wait", h("f4")), ("timeout", h("f7"))
        ),
        QUEUE_NO_WAIT,
    ),
    (
        "cbor",
        cbor_map(
            ("body", CBOR_T7),
            ("name", h("65") + b"tasks"),
            ("wait", h("f5")),
            ("timeout", h("19 0fa0")),
        ),
        QUEUE_WAIT,
    ),
    (
        "cbor",
        cbor_map(
            ("body", CBOR_T7), ("name", h("65") + b"tasks"), ("wait", h("f5")), ("timeout", h("f7"))
        ),
        QUEUE_WAIT_NO_TIMEOUT,
    ),
    (
        "cbor",
        cbor_map(
            ("body", h("f7")), ("name", h("64") + b"jobs"), ("wait", h("f4")), ("timeout", h("f7"))
        ),
        QUEUE_NO_BODY,
    ),
    ("bare", h("0400 08") + CBOR_JOB + h("01") + s("jobs") + h("01 00 00"), QUEUE_NO_WAIT),
    (
        "bare",
        h("0400 06") + CBOR_T7 + h("01") + s("tasks") + h("01 01 01 a00f000000000000"),
        QUEUE_WAIT,
    ),
    ("bare", h("0400 06") + CBOR_T7 + h("01") + s("tasks") + h("01 01 00"), QUEUE_WAIT_NO_TIMEOUT),
    # undefined as the compat layer writes it: CBOR ["$Undefined", 0]
    (
        "bare",
        h("0400 0d 82 6a") + b"$Undefined" + h("00 01") + s("jobs") + h("01 00 00"),
        QUEUE_NO_BODY,
    ),
]


def test_captured_queue_bodies_match_the_reference() -> None:
    # The reference (§7) lists the bare no-wait frame byte for byte.
    assert QUEUE_REQUESTS_CAPTURED[8][1] == h("0400 08 b90001636a6f6201 01 046a6f6273 01 00 00")


@pytest.mark.parametrize(("encoding", "data", "expected"), QUEUE_REQUESTS_CAPTURED)
def test_http_queue_send_request_bodies(
    encoding: Encoding, data: bytes, expected: HttpQueueSendRequest
) -> None:
    assert decode_http(data, encoding, HttpQueueSendRequest) == expected


def test_http_queue_send_request_json_is_written_like_the_client() -> None:
    # Except send(name) without a body: JavaScript drops the undefined key, Python has
    # no undefined and writes "body":null, which reads back the same.
    for encoding, data, msg in QUEUE_REQUESTS_CAPTURED:
        if encoding == "json" and msg.body is not None:
            assert encode_http(msg, "json") == data
    assert encode_http(QUEUE_NO_BODY, "json") == b'{"body":null,"name":"jobs","wait":false}'


def test_queue_values_from_the_javascript_client() -> None:
    # cbor bodies are raw cbor-x (no compat layer); bare bodies carry the compat layer.
    raw = cbor_map(("body", h("82 d840 42 0102 1b 0000000000000001")))
    assert decode_http(raw, "cbor", HttpQueueSendRequest).body == [b"\x01\x02", 1]
    compat = cbor2.dumps([["$Uint8Array", "AQI="], ["$$x", 1]])
    bare = h("0400") + bytes([len(compat)]) + compat + h("00 00 00")
    assert decode_http(bare, "bare", HttpQueueSendRequest).body == [b"\x01\x02", ["$x", 1]]


DONE = {"done": {"t": 7}}
CBOR_DONE = h("a1 64") + b"done" + h("a1 61 74 07")
QUEUE_RESPONSES: list[tuple[Encoding, HttpQueueSendResponse, bytes]] = [
    ("bare", HttpQueueSendResponse(QUEUE_COMPLETED), h("0400") + s("completed") + h("00")),
    (
        "bare",
        HttpQueueSendResponse(QUEUE_COMPLETED, DONE),
        h("0400") + s("completed") + h("01 0a") + CBOR_DONE,
    ),
    ("bare", HttpQueueSendResponse(QUEUE_TIMED_OUT), h("0400") + s("timedOut") + h("00")),
    ("json", HttpQueueSendResponse(QUEUE_COMPLETED), b'{"status":"completed"}'),
    (
        "json",
        HttpQueueSendResponse(QUEUE_COMPLETED, DONE),
        b'{"response":{"done":{"t":7}},"status":"completed"}',
    ),
    ("json", HttpQueueSendResponse(QUEUE_TIMED_OUT), b'{"status":"timedOut"}'),
    (
        "cbor",
        HttpQueueSendResponse(QUEUE_COMPLETED),
        h("a1 66") + b"status" + h("69") + b"completed",
    ),
    (
        "cbor",
        HttpQueueSendResponse(QUEUE_COMPLETED, DONE),
        h("a2 68") + b"response" + CBOR_DONE + h("66") + b"status" + h("69") + b"completed",
    ),
    (
        "cbor",
        HttpQueueSendResponse(QUEUE_TIMED_OUT),
        h("a1 66") + b"status" + h("68") + b"timedOut",
    ),
]


@pytest.mark.parametrize(("encoding", "msg", "data"), QUEUE_RESPONSES)
def test_http_queue_send_response_bodies(
    encoding: Encoding, msg: HttpQueueSendResponse, data: bytes
) -> None:
    assert encode_http(msg, encoding) == data
    decoded = decode_http(data, encoding, HttpQueueSendResponse)
    assert decoded == msg
    assert type(decoded.status) is QueueSendStatus


def test_http_queue_send_response_with_cbor_x_payload() -> None:
    # The engine's reply in the reference (§7): the response as cbor-x writes maps.
    payload = cbor_map(("done", CBOR_T7))
    data = h("0400") + s("completed") + h("01 0e") + payload
    assert decode_http(data, "bare", HttpQueueSendResponse) == HttpQueueSendResponse(
        QUEUE_COMPLETED, DONE
    )


def test_queue_send_statuses_are_the_wire_strings() -> None:
    assert [status.value for status in QueueSendStatus] == ["completed", "timedOut"]
    assert QUEUE_COMPLETED is QueueSendStatus.COMPLETED
    assert QUEUE_TIMED_OUT.value == "timedOut"
    assert encode_http(HttpQueueSendResponse(QUEUE_TIMED_OUT), "json") == b'{"status":"timedOut"}'
    assert QueueSendStatus.from_wire("timedOut") is QueueSendStatus.TIMED_OUT
    assert QueueSendStatus.from_wire("TimedOut") is None


HTTP_ERROR = HttpResponseError(
    "user", "custom_code", "nope", {"a": 1}, ActorSpecifier(BARE_ACTOR_ID, 1, BARE_KEY)
)


def test_http_error_bodies() -> None:
    bare = (
        h("0400")
        + s("user")
        + s("custom_code")
        + s("nope")
        + h("01 04 a1616101")
        + h("01")
        + s(BARE_ACTOR_ID)
        + h("01 01")
        + s(BARE_KEY)
    )
    assert encode_http(HTTP_ERROR, "bare") == bare
    assert decode_http(bare, "bare", HttpResponseError) == HTTP_ERROR
    as_json = (
        b'{"group":"user","code":"custom_code","message":"nope","metadata":{"a":1},'
        b'"actor":{"actorId":"lbqz3rcfmg3y7hsa6znq9nskvral00","generation":1,'
        b'"key":"cap-bare-1795312265953/sub"}}'
    )
    assert encode_http(HTTP_ERROR, "json") == as_json
    assert decode_http(as_json, "json", HttpResponseError) == HTTP_ERROR
    assert cbor2.loads(encode_http(HTTP_ERROR, "cbor")) == {
        "group": "user",
        "code": "custom_code",
        "message": "nope",
        "metadata": {"a": 1},
        "actor": {"actorId": BARE_ACTOR_ID, "generation": 1, "key": BARE_KEY},
    }


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            b'{"group":"actor","code":"not_found",'
            b'"message":"The actor does not exist or was destroyed."}',
            HttpResponseError("actor", "not_found", "The actor does not exist or was destroyed."),
        ),
        (
            b'{"group":"pegboard","code":"route_resolve_query_timeout","message":"timed out",'
            b'"metadata":{"elapsed_ms":15001,"timeout_ms":15000}}',
            HttpResponseError(
                "pegboard",
                "route_resolve_query_timeout",
                "timed out",
                {"elapsed_ms": 15001, "timeout_ms": 15000},
            ),
        ),
    ],
)
def test_gateway_errors_are_json_whatever_the_encoding(
    data: bytes, expected: HttpResponseError
) -> None:
    assert decode_http(data, "json", HttpResponseError) == expected


# MARK: round trips

ACTOR = ActorSpecifier("actor-1", 3, "a/b")
TO_CLIENT: list[ToClient] = [
    Init("actor-1", "conn-1"),
    Error("user", "code", "message"),
    Error("user", "code", "message", metadata={"x": [1, b"\x00"]}, action_id=0),
    Error("actor", "stopping", "bye", action_id=2**64 - 1, actor=ACTOR),
    Error("g", "c", "m", actor=ActorSpecifier("a", 2**60)),
    ActionResponse(0),
    ActionResponse(9, {"nested": ["$x", {1, 2}], "big": 2**70, "raw": b"\xff"}),
    Event("tick", []),
    Event("tick", ["$x", 1]),
    Event("tick", [None, 1.5, "s", [b"a"]]),
]
TO_SERVER: list[ToServer] = [
    ActionRequest(0, "a"),
    ActionRequest(5, "b", [1, "two", b"3", [4], {"five": 5}, None]),
    ActionRequest(2**64 - 1, "c", ["$x", 1]),
    ActionRequest(7, "d", [{"$y", 3}, 2**80, -(2**63)]),
    SubscriptionRequest("e", True),
    SubscriptionRequest("e", False),
]
HTTP_BODIES: list[HttpBody] = [
    HttpActionRequest([5]),
    HttpActionRequest([]),
    HttpActionRequest(["$x", 1]),
    HttpActionResponse(None),
    HttpActionResponse({"big": 2**70, "bytes": b"\x00"}),
    QUEUE_NO_WAIT,
    QUEUE_WAIT,
    HttpQueueSendRequest(),
    HttpQueueSendResponse(QUEUE_COMPLETED),
    HttpQueueSendResponse(QUEUE_TIMED_OUT),
    HttpQueueSendResponse(QUEUE_COMPLETED, ["$x", {"done": True}]),
    HttpResponseError("g", "c", "m"),
    HTTP_ERROR,
    HttpResolveResponse("actor-1"),
]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("msg", TO_CLIENT, ids=repr)
def test_to_client_messages_round_trip(msg: ToClient, encoding: Encoding) -> None:
    assert decode_to_client(encode_to_client(msg, encoding), encoding) == msg


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("msg", TO_SERVER, ids=repr)
def test_to_server_messages_round_trip(msg: ToServer, encoding: Encoding) -> None:
    assert decode_to_server(encode_to_server(msg, encoding), encoding) == msg


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("msg", HTTP_BODIES, ids=repr)
def test_http_bodies_round_trip(msg: HttpBody, encoding: Encoding) -> None:
    assert decode_http(encode_http(msg, encoding), encoding, type(msg)) == msg


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_undefined_arguments_arrive_as_none(encoding: Encoding) -> None:
    frame = encode_to_server(ActionRequest(1, "a", [UNDEFINED, 1]), encoding)
    assert decode_to_server(frame, encoding) == ActionRequest(1, "a", [None, 1])


# MARK: encoding details the JavaScript client depends on


def test_cbor_protocol_uints_use_the_eight_byte_form() -> None:
    frame = cbor2.loads(encode_to_client(Error("g", "c", "m", action_id=1, actor=ACTOR), "cbor"))
    assert frame["body"]["val"]["actionId"] == 1
    raw = encode_to_client(Error("g", "c", "m", action_id=1, actor=ACTOR), "cbor")
    assert h("68 616374696f6e4964 1b 0000000000000001") in raw
    assert h("6a 67656e65726174696f6e 1b 0000000000000003") in raw
    assert h("62 6964 1b 0000000000000004") in encode_to_server(ActionRequest(4, "a"), "cbor")


def test_connection_errors_carry_a_null_action_id() -> None:
    as_json = encode_to_client(Error("actor", "x", "y"), "json")
    assert as_json == (
        b'{"body":{"tag":"Error","val":{"actionId":null,"code":"x","group":"actor","message":"y"}}}'
    )
    frame = cbor2.loads(encode_to_client(Error("actor", "x", "y"), "cbor"))
    assert frame["body"]["val"] == {"actionId": None, "code": "x", "group": "actor", "message": "y"}


def test_json_generation_is_a_plain_number_until_unsafe() -> None:
    small = encode_to_client(Error("g", "c", "m", actor=ActorSpecifier("a", 1)), "json")
    assert b'"generation":1' in small
    big = encode_to_client(Error("g", "c", "m", actor=ActorSpecifier("a", 2**60)), "json")
    assert b'"generation":["$BigInt","1152921504606846976"]' in big


def test_values_sent_to_the_client_carry_the_compat_layer() -> None:
    msg = ActionResponse(1, {"raw": b"\x01", "pair": ["$x", 1], "big": 2**60})
    expected = {
        "raw": ["$Uint8Array", "AQ=="],
        "pair": ["$$x", 1],
        "big": ["$BigInt", "1152921504606846976"],
    }
    assert json.loads(encode_to_client(msg, "json"))["body"]["val"]["output"] == expected
    assert cbor2.loads(encode_to_client(msg, "cbor"))["body"]["val"]["output"] == expected


def test_cbor_values_from_the_javascript_client_are_raw() -> None:
    # What cbor-x writes for conn.inc(new Uint8Array([1, 2]), undefined, 1n, ["$x", 1]).
    frame = (
        h("b9 0001 64")
        + b"body"
        + h("b9 0002 63")
        + b"tag"
        + h("6d")
        + b"ActionRequest"
        + h("63")
        + b"val"
        + h("b9 0003 62")
        + b"id"
        + h("1b 0000000000000003 64")
        + b"name"
        + h("63")
        + b"inc"
        + h("64")
        + b"args"
        + h("84 d840 42 0102 f7 1b 0000000000000001 82 6224 78 01")
    )
    assert decode_to_server(frame, "cbor") == ActionRequest(
        3, "inc", [b"\x01\x02", None, 1, ["$x", 1]]
    )


@pytest.mark.parametrize(
    ("body", "args"),
    [
        (b'{"args":null}', []),
        (b"{}", []),
        (b'{"args":5}', [5]),
        (b'{"args":"x"}', ["x"]),
        (b'{"args":[["$$x",1]]}', [["$x", 1]]),
    ],
)
def test_http_action_args_are_normalized_to_a_list(body: bytes, args: list[Any]) -> None:
    assert decode_http(body, "json", HttpActionRequest) == HttpActionRequest(args)


def test_websocket_action_args_are_normalized_to_a_list() -> None:
    frame = b'{"body":{"tag":"ActionRequest","val":{"id":1,"name":"a","args":null}}}'
    assert decode_to_server(frame, "json") == ActionRequest(1, "a", [])
    frame = b'{"body":{"tag":"ActionRequest","val":{"id":1,"name":"a"}}}'
    assert decode_to_server(frame, "json") == ActionRequest(1, "a", [])
    bare = h("0400 00 01") + s("a") + h("01 05")
    assert decode_to_server(bare, "bare") == ActionRequest(1, "a", [5])


# MARK: older bare schema versions


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (h("0100 00") + s("id") + s("cn") + s("token"), Init("id", "cn")),
        (h("0200 00") + s("id") + s("cn"), Init("id", "cn")),
        (h("0300 00") + s("id") + s("cn"), Init("id", "cn")),
        (
            h("0100 01") + s("user") + s("c") + s("m") + h("00 01 07"),
            Error("user", "c", "m", action_id=7),
        ),
        (h("0300 01") + s("user") + s("c") + s("m") + h("01 01 f6 00"), Error("user", "c", "m")),
        (h("0200 02 05 01 07"), ActionResponse(5, 7)),
        (h("0100 03") + s("e") + h("01 80"), Event("e", [])),
    ],
)
def test_reads_to_client_v1_to_v3(data: bytes, expected: ToClient) -> None:
    assert decode_to_client(data, "bare") == expected


def test_v1_init_requires_the_connection_token() -> None:
    with pytest.raises(InvalidMessageError, match="truncated"):
        decode_to_client(h("0100 00") + s("id") + s("cn"), "bare")


def test_v3_error_has_no_actor_field() -> None:
    data = h("0300 01") + s("g") + s("c") + s("m") + h("00 00 00")
    with pytest.raises(InvalidMessageError, match="1 unexpected bytes after the end"):
        decode_to_client(data, "bare")


@pytest.mark.parametrize("version", ["0100", "0200", "0300"])
def test_reads_to_server_of_every_version(version: str) -> None:
    assert decode_to_server(h(version) + BARE_INCREMENT[2:], "bare") == BARE_INCREMENT_MSG


def test_reads_http_bodies_v1_to_v3() -> None:
    data = h("0100") + s("g") + s("c") + s("m") + h("00")
    assert decode_http(data, "bare", HttpResponseError) == HttpResponseError("g", "c", "m")
    assert decode_http(h("0200 01 05"), "bare", HttpActionResponse) == HttpActionResponse(5)
    assert decode_http(h("0100 02 8105"), "bare", HttpActionRequest) == HttpActionRequest([5])
    assert decode_http(h("0300") + s("x"), "bare", HttpResolveResponse) == HttpResolveResponse("x")
    queue = h("0300 01 f6 00 00 00")
    assert decode_http(queue, "bare", HttpQueueSendRequest) == HttpQueueSendRequest()


@pytest.mark.parametrize("kind", [HttpQueueSendRequest, HttpQueueSendResponse])
def test_queue_bodies_need_version_3(kind: type[HttpBody]) -> None:
    with pytest.raises(InvalidMessageError, match="only in protocol version 3 and later"):
        decode_http(h("0200 01 f6 00 00 00"), "bare", kind)


@pytest.mark.parametrize("prefix", ["0000", "0500", "ffff"])
def test_unknown_versions_are_rejected(prefix: str) -> None:
    with pytest.raises(InvalidMessageError, match="unsupported client protocol version"):
        decode_to_server(h(prefix) + BARE_INCREMENT[2:], "bare")


@pytest.mark.parametrize("data", [b"", b"\x04"])
def test_a_missing_version_prefix_is_rejected(data: bytes) -> None:
    with pytest.raises(InvalidMessageError, match="version prefix"):
        decode_to_client(data, "bare")


# MARK: malformed input


@pytest.mark.parametrize(
    ("data", "decode", "fragment"),
    [
        (BARE_EVENT, "server", "unknown union tag 3 (expected 0 ActionRequest"),
        (h("0400 02"), "server", "unknown union tag 2 (expected 0 ActionRequest, 1 Sub"),
        (h("0400 04"), "client", "unknown union tag 4 (expected 0 Init"),
        (BARE_INCREMENT + b"\x00", "server", "1 unexpected bytes after the end"),
        (h("0400 00 00") + s("a") + h("01 ff"), "server", "ActionRequest.args: invalid CBOR"),
        (
            h("0400 00 00")
            + s("a")
            + bytes([len(cbor2.dumps([["$Foo", 1]]))])
            + cbor2.dumps([["$Foo", 1]]),
            "server",
            "ActionRequest.args: invalid value at root[0]: unknown JSON-compat tag '$Foo'",
        ),
        (h("0400 01") + s("e") + h("02"), "server", "invalid bool byte 0x02"),
        (h("0400 02 00 01 f6 00"), "client", "1 unexpected bytes"),
        ("text frame", "server", "bare messages are binary"),
    ],
)
def test_malformed_bare_frames(data: bytes | str, decode: str, fragment: str) -> None:
    decoder = decode_to_server if decode == "server" else decode_to_client
    with pytest.raises(InvalidMessageError) as info:
        decoder(data, "bare")
    assert fragment in info.value.message


@pytest.mark.parametrize(
    "frame",
    [
        BARE_INIT,
        BARE_EVENT,
        BARE_ACTION_RESPONSE,
        BARE_ERROR,
        BARE_SUBSCRIBE,
        BARE_INCREMENT,
        BARE_FAIL,
    ],
)
def test_every_truncation_of_a_bare_frame_is_rejected(frame: bytes) -> None:
    decoder = (
        decode_to_server
        if frame in (BARE_SUBSCRIBE, BARE_INCREMENT, BARE_FAIL)
        else decode_to_client
    )
    decoder(frame, "bare")
    for cut in range(len(frame)):
        with pytest.raises(InvalidMessageError):
            decoder(frame[:cut], "bare")


def _val(**fields: Any) -> bytes:
    return json.dumps({"body": {"tag": "ActionRequest", "val": fields}}).encode()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "invalid JSON: the message is empty"),
        (b"{", "invalid JSON"),
        (b"[]", "ToServer must be an object, got an array"),
        (b"{}", "ToServer is missing the field 'body'"),
        (b'{"body":[1]}', "ToServer.body must be an object, got an array"),
        (b'{"body":{"val":{}}}', "ToServer.body is missing the field 'tag'"),
        (b'{"body":{"tag":5,"val":{}}}', "ToServer.body.tag must be a string, got a number"),
        (b'{"body":{"tag":"ActionRequest"}}', "ToServer.body is missing the field 'val'"),
        (b'{"body":{"tag":"Foo","val":{}}}', "unknown ToServer message tag 'Foo'"),
        (b'{"body":{"tag":"Init","val":{}}}', "unknown ToServer message tag 'Init'"),
        (_val(name="a", args=[]), "ActionRequest is missing the field 'id'"),
        (_val(id=["$BigInt", "1"], args=[]), "ActionRequest is missing the field 'name'"),
        (_val(id="abc", name="a"), "ActionRequest.id must be an unsigned integer, got a string"),
        (_val(id=-1, name="a"), "ActionRequest.id must be between 0 and 2**64 - 1, got -1"),
        (_val(id=2**64, name="a"), "between 0 and 2**64 - 1"),
        (_val(id=["$BigInt", "-1"], name="a"), "must be an unsigned integer"),
        (_val(id=True, name="a"), "got a boolean"),
        (_val(id=1.5, name="a"), "got a number"),
        (_val(id=1, name=None), "ActionRequest.name must be a string, got null"),
        (_val(id=1, name="a", args=[["$Foo", 1]]), "ActionRequest.args: invalid value at root[0]"),
        (
            b'{"body":{"tag":"SubscriptionRequest","val":{"eventName":"e","subscribe":"yes"}}}',
            "SubscriptionRequest.subscribe must be a boolean, got a string",
        ),
        (
            b'{"body":{"tag":"SubscriptionRequest","val":{"subscribe":true}}}',
            "SubscriptionRequest is missing the field 'eventName'",
        ),
    ],
)
def test_malformed_json_frames(data: bytes, fragment: str) -> None:
    with pytest.raises(InvalidMessageError) as info:
        decode_to_server(data, "json")
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty"),
        ("text", "binary"),
        (h("a1 64") + b"body" + h("a2 63") + b"tag" + h("61 78 63") + b"val" + h("a0"), "tag 'x'"),
        (
            cbor2.dumps({"body": {"tag": "ActionRequest", "val": [1]}}),
            "ActionRequest must be an object",
        ),
        (
            cbor2.dumps({"body": {"tag": "ActionRequest", "val": {"id": 1}}}) + b"\x00",
            "unexpected bytes",
        ),
        (
            cbor2.dumps({"body": {"tag": "ActionRequest", "val": {"id": b"1", "name": "a"}}}),
            "got a bytes",
        ),
    ],
)
def test_malformed_cbor_frames(data: bytes | str, fragment: str) -> None:
    with pytest.raises(InvalidMessageError) as info:
        decode_to_server(data, "cbor")
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("data", "kind", "fragment"),
    [
        (
            b'{"group":"g","message":"m"}',
            HttpResponseError,
            "HttpResponseError is missing the field 'code'",
        ),
        (
            b'{"group":"g","code":"c","message":"m","actor":{"generation":1}}',
            HttpResponseError,
            "HttpResponseError.actor is missing the field 'actorId'",
        ),
        (b"[1]", HttpActionRequest, "HttpActionRequest must be an object, got an array"),
    ],
)
def test_malformed_json_http_bodies(data: bytes, kind: type[HttpBody], fragment: str) -> None:
    with pytest.raises(InvalidMessageError) as info:
        decode_http(data, "json", kind)
    assert fragment in info.value.message


def test_json_queue_timeout_accepts_integral_floats() -> None:
    data = b'{"body":null,"timeout":4000.0}'
    assert decode_http(data, "json", HttpQueueSendRequest) == HttpQueueSendRequest(timeout_ms=4000)


QUEUE_BARE_FRAMES: list[tuple[bytes, type[HttpBody]]] = [
    *((data, HttpQueueSendRequest) for enc, data, _ in QUEUE_REQUESTS_CAPTURED if enc == "bare"),
    *((data, HttpQueueSendResponse) for enc, _, data in QUEUE_RESPONSES if enc == "bare"),
]


@pytest.mark.parametrize(("frame", "kind"), QUEUE_BARE_FRAMES)
def test_every_truncation_of_a_bare_queue_body_is_rejected(
    frame: bytes, kind: type[HttpBody]
) -> None:
    decode_http(frame, "bare", kind)
    for cut in range(len(frame)):
        with pytest.raises(InvalidMessageError, match=f"invalid {kind.__name__}: |truncated"):
            decode_http(frame[:cut], "bare", kind)


BARE_JOBS_TAIL = h("01") + s("jobs")


@pytest.mark.parametrize(
    ("data", "kind", "fragment"),
    [
        (b"", HttpQueueSendRequest, "too short for the 2-byte schema version prefix"),
        (h("0400 01 f6 00 01 02 00"), HttpQueueSendRequest, "invalid bool byte 0x02"),
        (
            h("0400 01 f6 00 01 01 02"),
            HttpQueueSendRequest,
            "invalid HttpQueueSendRequest: invalid optional flag 0x02 (at byte 7)",
        ),
        (h("0400 01 ff 00 00 00"), HttpQueueSendRequest, "HttpQueueSendRequest.body: invalid CBOR"),
        (
            h("0400 08") + CBOR_JOB + BARE_JOBS_TAIL + h("01 00 00 00"),
            HttpQueueSendRequest,
            "1 unexpected bytes after the end",
        ),
        (h("0500 01 f6 00 00 00"), HttpQueueSendRequest, "unsupported client protocol version 5"),
        ("text", HttpQueueSendRequest, "bare messages are binary"),
        (
            h("0400") + s("done") + h("00"),
            HttpQueueSendResponse,
            "invalid HttpQueueSendResponse: status must be 'completed' or 'timedOut', got 'done' "
            "(at byte 2)",
        ),
        (
            h("0400") + s("completed") + h("01 01 ff"),
            HttpQueueSendResponse,
            "HttpQueueSendResponse.response: invalid CBOR",
        ),
    ],
)
def test_malformed_bare_queue_bodies(
    data: bytes | str, kind: type[HttpBody], fragment: str
) -> None:
    with pytest.raises(InvalidMessageError) as info:
        decode_http(data, "bare", kind)
    assert fragment in info.value.message


@pytest.mark.parametrize("encoding", ["json", "cbor"])
@pytest.mark.parametrize(
    ("fields", "kind", "fragment"),
    [
        ([1], HttpQueueSendRequest, "HttpQueueSendRequest must be an object, got an array"),
        (
            {"body": 1, "timeout": -1},
            HttpQueueSendRequest,
            "timeout must be between 0 and 2**64 - 1",
        ),
        ({"body": 1, "timeout": 2**64}, HttpQueueSendRequest, "timeout must be between 0 and"),
        (
            {"body": 1, "timeout": "4000"},
            HttpQueueSendRequest,
            "timeout must be an unsigned integer, got a string",
        ),
        (
            {"body": 1, "timeout": True},
            HttpQueueSendRequest,
            "timeout must be an unsigned integer, got a boolean",
        ),
        (
            {"body": 1, "timeout": 0.5},
            HttpQueueSendRequest,
            "timeout must be an unsigned integer, got a number",
        ),
        (
            {"body": 1, "wait": 1},
            HttpQueueSendRequest,
            "HttpQueueSendRequest.wait must be a boolean, got a number",
        ),
        (
            {"body": 1, "name": ["jobs"]},
            HttpQueueSendRequest,
            "HttpQueueSendRequest.name must be a string, got an array",
        ),
        (
            {"response": 1},
            HttpQueueSendResponse,
            "HttpQueueSendResponse is missing the field 'status'",
        ),
        (
            {"status": 5},
            HttpQueueSendResponse,
            "HttpQueueSendResponse.status must be a string, got a number",
        ),
        (
            {"status": "failed"},
            HttpQueueSendResponse,
            "HttpQueueSendResponse.status must be 'completed' or 'timedOut', got 'failed'",
        ),
    ],
)
def test_malformed_mapped_queue_bodies(
    encoding: Encoding, fields: Any, kind: type[HttpBody], fragment: str
) -> None:
    data = json.dumps(fields).encode() if encoding == "json" else cbor2.dumps(fields)
    with pytest.raises(InvalidMessageError) as info:
        decode_http(data, encoding, kind)
    assert fragment in info.value.message
    assert isinstance(info.value, ProtocolError)
    assert (info.value.group, info.value.code) == ("protocol", "invalid_message")


@pytest.mark.parametrize(
    ("encoding", "fragment"),
    [
        ("json", "invalid JSON: the message is empty"),
        ("cbor", "invalid CBOR: the message is empty"),
        ("bare", "too short for the 2-byte schema version prefix"),
    ],
)
@pytest.mark.parametrize("kind", [HttpQueueSendRequest, HttpQueueSendResponse])
def test_an_empty_queue_body_is_rejected(
    encoding: Encoding, fragment: str, kind: type[HttpBody]
) -> None:
    with pytest.raises(InvalidMessageError) as info:
        decode_http(b"", encoding, kind)
    assert fragment in info.value.message


def _mutations(rng: random.Random, frame: bytes) -> bytes:
    data = bytearray(frame)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.4 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice < 0.7 and data:
            del data[rng.randrange(len(data))]
        else:
            data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
    return bytes(data)


FUZZ_SEEDS: dict[Encoding, list[bytes]] = {
    "bare": [BARE_INIT, BARE_ERROR, BARE_INCREMENT, BARE_EVENT, BARE_SUBSCRIBE]
    + [frame for frame, _ in QUEUE_BARE_FRAMES],
    "json": [JSON_INIT, JSON_ERROR, JSON_INCREMENT, JSON_EVENT, JSON_SUBSCRIBE],
    "cbor": [
        CBOR_ACTION_RESPONSE,
        encode_to_server(ActionRequest(1, "a", [b"x", {1}, {"k": [None]}]), "cbor"),
        encode_to_client(BARE_ERROR_MSG, "cbor"),
    ],
}


class TestGarbageNeverEscapesAsAnotherError:
    DECODERS: ClassVar[list[Any]] = [
        decode_to_server,
        decode_to_client,
        *(
            (lambda data, encoding, kind=kind: decode_http(data, encoding, kind))
            for kind in (
                HttpActionRequest,
                HttpQueueSendRequest,
                HttpQueueSendResponse,
                HttpResponseError,
            )
        ),
    ]

    @pytest.mark.parametrize("encoding", ENCODINGS)
    def test_mutated_frames(self, encoding: Encoding) -> None:
        rng = random.Random(f"mutations-{encoding}")
        for _ in range(600):
            data = _mutations(rng, rng.choice(FUZZ_SEEDS[encoding]))
            for decode in self.DECODERS:
                with contextlib.suppress(InvalidMessageError):
                    decode(data, encoding)

    @pytest.mark.parametrize("encoding", ENCODINGS)
    def test_random_bytes(self, encoding: Encoding) -> None:
        rng = random.Random(f"random-{encoding}")
        for _ in range(600):
            prefix = b"\x04\x00" if encoding == "bare" and rng.random() < 0.7 else b""
            data = prefix + rng.randbytes(rng.randint(0, 24))
            for decode in self.DECODERS:
                with contextlib.suppress(InvalidMessageError):
                    decode(data, encoding)


# MARK: encodings, errors, misuse


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "json"),
        ("", "json"),
        ("  ", "json"),
        ("json", "json"),
        ("cbor", "cbor"),
        (" bare ", "bare"),
    ],
)
def test_parse_encoding(value: str | None, expected: Encoding) -> None:
    assert parse_encoding(value) == expected
    assert DEFAULT_ENCODING == "json"


@pytest.mark.parametrize("value", ["xml", "JSON", "msgpack"])
def test_unknown_encodings_are_rejected(value: str) -> None:
    with pytest.raises(UnsupportedEncodingError) as info:
        parse_encoding(value)
    assert (info.value.group, info.value.code) == ("protocol", "unsupported_encoding")
    assert value in info.value.message
    with pytest.raises(UnsupportedEncodingError):
        encode_to_client(Init("a", "b"), value)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedEncodingError):
        decode_to_server(b"{}", value)  # type: ignore[arg-type]


def test_content_types_and_frame_kinds() -> None:
    assert content_type("json") == "application/json"
    assert content_type("cbor") == content_type("bare") == "application/octet-stream"
    assert not is_binary("json")
    assert is_binary("cbor") and is_binary("bare")


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_wrong_record_types_are_programming_errors(encoding: Encoding) -> None:
    with pytest.raises(TypeError, match="not a ToClient message"):
        encode_to_client(ActionRequest(1, "a"), encoding)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a ToServer message"):
        encode_to_server(Init("a", "b"), encoding)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not an HTTP body record"):
        encode_http(Init("a", "b"), encoding)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not an HTTP body record class"):
        decode_http(b"{}", encoding, Init)  # type: ignore[type-var]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_unencodable_payloads_raise_encoding_error(encoding: Encoding) -> None:
    with pytest.raises(EncodingError):
        encode_to_client(ActionResponse(1, object()), encoding)
    with pytest.raises(EncodingError):
        encode_to_client(ActionResponse(2**64, None), encoding)
    with pytest.raises(EncodingError):
        encode_to_server(ActionRequest(-1, "a"), encoding)
    with pytest.raises(EncodingError):
        encode_http(HttpQueueSendRequest(timeout_ms=-1), encoding)


class PrivateError(ActorError):
    public = False


def test_errors_from_exceptions_hide_non_public_details() -> None:
    user = UserError("nope", code="custom_code", metadata={"a": 1})
    assert Error.from_exception(user, action_id=2, actor=ACTOR) == Error(
        "user", "custom_code", "nope", {"a": 1}, 2, ACTOR
    )
    internal = Error("core", "internal_error", "An internal error occurred")
    assert Error.from_exception(RuntimeError("secret")) == internal
    assert Error.from_exception(PrivateError("secret", metadata=1)) == internal
    assert HttpResponseError.from_exception(user) == HttpResponseError(
        "user", "custom_code", "nope", {"a": 1}
    )
    assert HttpResponseError.from_exception(KeyError("x"), actor=ACTOR) == HttpResponseError(
        "core", "internal_error", "An internal error occurred", actor=ACTOR
    )


def test_errors_convert_back_to_exceptions() -> None:
    exc = BARE_ERROR_MSG.to_exception()
    assert isinstance(exc, UserError)
    assert (exc.code, exc.message, exc.metadata) == ("custom_code", "nope", {"a": 1})
    missing = HttpResponseError("actor", "not_found", "gone").to_exception()
    assert isinstance(missing, ActorNotFoundError)
    assert isinstance(Error("core", "internal_error", "x").to_exception(), InternalError)
