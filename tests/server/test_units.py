"""Pure pieces of the server: routing, keys, gateway parameters, error mapping, CORS."""

from __future__ import annotations

import pytest

from pyrivet._protocol.errors import InvalidMessageError, UnsupportedEncodingError
from pyrivet._protocol.query import ActorQuery
from pyrivet.errors import (
    ActionTimeoutError,
    ActorError,
    ActorNotFoundError,
    ActorStoppingError,
    InternalError,
    UserError,
)
from pyrivet.server._asgi import RequestInfo
from pyrivet.server.cors import CorsPolicy
from pyrivet.server.errors import close_reason, http_status, to_wire
from pyrivet.server.gateway import parse_target
from pyrivet.server.keys import deserialize_key, serialize_key, split_gateway_key
from pyrivet.server.routing import Route, parse_route

from ._support import cbor_input_b64url


def route(path: str) -> Route:
    info = RequestInfo.from_scope({"type": "http", "raw_path": path.encode(), "headers": []})
    return parse_route(info.segments, info.raw_segments)


def test_top_level_routes() -> None:
    assert route("/").kind == "root"
    assert route("/metadata").kind == "metadata"
    assert route("/metadata/").kind == "metadata"
    assert route("/actors").kind == "actors"
    assert route("/actors/abc") == Route("actor", actor_id="abc")
    assert route("/devtools/mod.js").kind == "not_found"


def test_gateway_routes() -> None:
    assert route("/gateway/counter/action/increment") == Route(
        "gateway", target="counter", sub="action", name="increment"
    )
    assert route("/gateway/a%2Fb/action/x%20y").name == "x y"
    assert route("/gateway/a%2Fb/action/x").target == "a/b"
    assert route("/gateway/id/queue/jobs").sub == "queue"
    assert route("/gateway/id/connect").sub == "connect"
    assert route("/gateway/id/health/").sub == "health"
    raw = route("/gateway/id/request/a%20b/c/")
    assert (raw.sub, raw.path, raw.raw_path) == ("request", "/a b/c/", "/a%20b/c/")
    assert route("/gateway/id/websocket").path == "/"
    assert route("/gateway/id/action").sub == "unknown"
    assert route("/gateway/id/action/a/b").sub == "unknown"
    assert route("/gateway/id").sub == "unknown"


def test_root_path_is_stripped_when_mounted() -> None:
    info = RequestInfo.from_scope(
        {"type": "http", "raw_path": b"/api/rivet/metadata", "root_path": "/api/rivet"}
    )
    assert info.segments == ("metadata",)


@pytest.mark.parametrize(
    "key",
    [(), ("a",), ("a", "b"), ("",), ("", ""), ("with/slash", "back\\slash"), ("\\0", "/")],
)
def test_management_keys_round_trip(key: tuple[str, ...]) -> None:
    assert deserialize_key(serialize_key(key)) == key


def test_management_key_examples() -> None:
    assert serialize_key(()) == "/"
    assert serialize_key(("cap-bare-1", "sub")) == "cap-bare-1/sub"
    assert deserialize_key("a\\/b/c") == ("a/b", "c")
    assert deserialize_key("\\0") == ("",)
    assert deserialize_key("trailing\\") == ("trailing\\",)
    assert split_gateway_key(None) == ()
    assert split_gateway_key("a,sub") == ("a", "sub")


def test_parse_target_forms() -> None:
    direct = parse_target("abc@tok", "x=1", max_input_size=100)
    assert (direct.actor_id, direct.query, direct.forwarded_query) == ("abc", None, "x=1")

    query = parse_target(
        "counter",
        "x=1&rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default"
        "&rvt-key=a%2Csub&rvt-crash-policy=sleep&y=%20&rvt-token=t&rvt-skip-ready-wait=true"
        f"&rvt-input={cbor_input_b64url({'n': 2**60})}&rvt-region=r",
        max_input_size=100,
    )
    assert query.query == ActorQuery("get_or_create", "counter", ("a", "sub"), {"n": 2**60})
    assert query.forwarded_query == "x=1&y=%20"

    get = parse_target("counter", "rvt-method=get", max_input_size=100)
    assert get.query == ActorQuery("get", "counter", ())


def test_parse_target_input_limit() -> None:
    with pytest.raises(ActorError) as info:
        parse_target(
            "c",
            f"rvt-method=getOrCreate&rvt-input={cbor_input_b64url('x' * 200)}",
            max_input_size=100,
        )
    assert (info.value.group, info.value.code) == ("message", "incoming_too_long")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ActorNotFoundError("x"), 404),
        (ActorError("x", code="action_not_found"), 404),
        (ActionTimeoutError("x"), 408),
        (ActorError("x", code="method_not_allowed"), 405),
        (ActorError("x", group="auth", code="forbidden"), 403),
        (ActorError("x", group="message", code="incoming_too_long"), 400),
        (ActorError("x", group="queue", code="full"), 400),
        (UserError("x"), 500),
        (ActorStoppingError("x"), 500),
        (InternalError(), 500),
    ],
)
def test_http_statuses(error: ActorError, status: int) -> None:
    assert http_status(to_wire(error)) == status


def test_wire_errors() -> None:
    decoded = to_wire(InvalidMessageError("bad byte at 3"))
    assert (decoded.group, decoded.code, decoded.message) == (
        "actor",
        "invalid_request",
        "bad byte at 3",
    )
    assert to_wire(UnsupportedEncodingError("xml")).code == "unsupported_encoding"
    hidden = to_wire(ValueError("secret"))
    assert (hidden.group, hidden.code, hidden.message) == (
        "core",
        "internal_error",
        "An internal error occurred",
    )
    assert close_reason(UserError("no", code="c" * 200)).encode().__len__() <= 123


def test_cors_policy() -> None:
    def request(**headers: str) -> RequestInfo:
        return RequestInfo.from_scope(
            {
                "type": "http",
                "method": "OPTIONS",
                "raw_path": b"/",
                "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
            }
        )

    policy = CorsPolicy(["https://a.example"])
    allowed = policy.preflight(request(origin="https://a.example"))
    assert ("access-control-allow-origin", "https://a.example") in allowed.headers
    refused = policy.preflight(request(origin="https://b.example"))
    assert refused.status == 204
    assert refused.headers == []
    assert CorsPolicy().response_headers(request()) == []


def test_public_names_of_the_server_package() -> None:
    import pyrivet.server

    assert sorted(pyrivet.server.__all__) == [
        "Headers",
        "PyrivetApp",
        "Request",
        "Response",
        "WebSocket",
        "WebSocketClosed",
        "create_app",
    ]


def test_raw_request_and_response_objects() -> None:
    from pyrivet.server import Headers, Request, Response

    request = Request(
        "POST",
        "/a b",
        raw_path="/a%20b",
        query_string="x=1&x=2&y=",
        headers=[("X-Thing", "1"), ("x-thing", "2")],
        body=b'{"k": [1]}',
    )
    assert request.url == "/a%20b?x=1&x=2&y="
    assert request.query == {"x": ["1", "2"], "y": [""]}
    assert request.headers["x-thing"] == "1"
    assert request.headers.get_all("X-THING") == ["1", "2"]
    assert request.json() == {"k": [1]}
    with pytest.raises(ActorError) as info:
        Request("GET", "/", body=b"{").json()
    assert info.value.code == "invalid_request"
    assert isinstance(request.headers, Headers) and len(request.headers) == 1

    text = Response("hi", status=202, headers={"X-A": "b"})
    assert (text.status, text.body) == (202, b"hi")
    assert ("content-type", "text/plain; charset=utf-8") in text.headers
    assert ("x-a", "b") in text.headers
    assert Response.json([1]).body == b"[1]"
    with pytest.raises(ValueError):
        Response(status=99)
    with pytest.raises(ValueError):
        Response(headers={"x": "caf\u00e9"})
    with pytest.raises(ValueError):
        Response(headers={"x": "a\r\nset-cookie: evil"})
    with pytest.raises(TypeError):
        Response(123)  # type: ignore[arg-type]
