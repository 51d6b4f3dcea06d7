"""Addresses, keys, params and backoff of the network client (no I/O)."""

from __future__ import annotations

import base64
import json
import sys
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from pyrivet._codec import cbor
from pyrivet._protocol.query import ActorQuery
from pyrivet.client import ActorHandle, Backoff, Client
from pyrivet.client._gateway import (
    conn_params_header,
    conn_params_subprotocol,
    connect_subprotocols,
    direct_path,
    encode_uri_component,
    management_input,
    parse_close_reason,
    parse_endpoint,
    query_path,
    query_path_supported,
    serialize_key,
    split_user_path,
)
from pyrivet.errors import EncodingError


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ((), "/"),
        (("a",), "a"),
        (("a", "sub"), "a/sub"),
        (("a/b",), "a\\/b"),
        (("back\\slash",), "back\\\\slash"),
        (("",), "\\0"),
        (("x", "", "y"), "x/\\0/y"),
    ],
)
def test_serialize_key_matches_rivetkit(key: tuple[str, ...], expected: str) -> None:
    assert serialize_key(key) == expected


def test_query_path_get_or_create_as_captured() -> None:
    query = ActorQuery("get_or_create", "counter", ("cap-bare-1795312265953", "sub"))
    path = query_path(
        query, "/action/increment", namespace="default", token=None, pool_name="default"
    )
    assert path == (
        "/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate"
        "&rvt-runner=default&rvt-key=cap-bare-1795312265953%2Csub&rvt-crash-policy=sleep"
    )


def test_query_path_get_carries_no_create_params() -> None:
    query = ActorQuery("get", "my room", ())
    path = query_path(query, "/connect", namespace="ns", token="tok", pool_name="default")
    assert path == "/gateway/my%20room/connect?rvt-namespace=ns&rvt-method=get&rvt-token=tok"


def test_query_path_input_and_user_query() -> None:
    query = ActorQuery("get_or_create", "counter", ("k",), input={"hello": 1})
    path = query_path(query, "/request/hello?x=1", namespace="default", token=None, pool_name="p")
    assert path.startswith("/gateway/counter/request/hello?x=1&rvt-namespace=default&")
    params = dict(parse_qsl(urlsplit(path).query))
    assert params["x"] == "1" and params["rvt-runner"] == "p"
    raw = params["rvt-input"]
    assert "=" not in raw and "+" not in raw and "/" not in raw  # base64url, no padding
    decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    assert cbor.decode(decoded) == {"hello": 1}


def test_query_path_support() -> None:
    assert query_path_supported(ActorQuery("get", "a", ("x",)), 4096)
    assert not query_path_supported(ActorQuery("get", "a", ("x,y",)), 4096)
    assert not query_path_supported(ActorQuery("get", "a", ("",)), 4096)
    assert not query_path_supported(ActorQuery("get_for_id", "a", actor_id="i"), 4096)
    big = ActorQuery("get_or_create", "a", ("x",), input="x" * 5000)
    assert not query_path_supported(big, 4096)
    assert query_path_supported(big, 10_000)


def test_direct_path() -> None:
    assert direct_path("abc", "/action/x", None) == "/gateway/abc/action/x"
    assert direct_path("a/b", "/connect", "t@k") == "/gateway/a%2Fb@t%40k/connect"


def test_conn_params_forms() -> None:
    params = {"token": "a b", "n": [1, "é"], "p": "(x)"}
    assert json.loads(conn_params_header(params)) == params
    assert conn_params_header(params).isascii()
    proto = conn_params_subprotocol(params)
    assert proto.startswith("rivet_conn_params.")
    # Only HTTP token characters: no spaces, parentheses, quotes or commas.
    assert not set(proto) & set(' ()",;{}[]')
    assert json.loads(unquote(proto.removeprefix("rivet_conn_params."))) == params
    assert connect_subprotocols("cbor", None) == ["rivet", "rivet_encoding.cbor"]
    assert connect_subprotocols("bare", {"a": 1}, ["chat"]) == [
        "rivet",
        "rivet_encoding.bare",
        "rivet_conn_params.%7B%22a%22%3A1%7D",
        "chat",
    ]
    with pytest.raises(EncodingError):
        conn_params_header({"x": object()})


def test_encode_uri_component_like_javascript() -> None:
    assert encode_uri_component("a b/c?d&e=f,g~h'i!j*k") == "a%20b%2Fc%3Fd%26e%3Df%2Cg~h'i!j*k"


def test_management_input_is_std_base64_of_compat_cbor() -> None:
    encoded = management_input({"hello": b"\x01"})
    assert cbor.decode(base64.b64decode(encoded)) == {"hello": b"\x01"}


def test_parse_endpoint() -> None:
    ep = parse_endpoint("http://127.0.0.1:6420/", None, None)
    assert (ep.base, ep.namespace, ep.token) == ("http://127.0.0.1:6420", "default", None)
    ep = parse_endpoint("https://ns:tok@example.com/api/rivet", None, None)
    assert (ep.base, ep.namespace, ep.token) == ("https://example.com/api/rivet", "ns", "tok")
    assert ep.ws_url("/gateway/x/connect") == "wss://example.com/api/rivet/gateway/x/connect"
    ep = parse_endpoint("http://ns:tok@[::1]:80", "other", "t2")
    assert (ep.base, ep.namespace, ep.token) == ("http://[::1]:80", "other", "t2")
    with pytest.raises(ValueError):
        parse_endpoint("ftp://x", None, None)


def test_split_user_path_and_close_reason() -> None:
    assert split_user_path("/hello/world?x=1") == ("hello/world", "?x=1")
    assert split_user_path("") == ("", "")
    assert parse_close_reason("actor.invalid_request") == ("actor", "invalid_request")
    assert parse_close_reason("auth.forbidden#ray123") == ("auth", "forbidden")
    assert parse_close_reason("Disposed") is None
    assert parse_close_reason("") is None
    assert parse_close_reason("going away. bye") is None


def test_backoff_doubles_to_the_cap() -> None:
    backoff = Backoff(jitter=0.0)
    delays = [backoff.delay(n) for n in range(1, 12)]
    assert delays == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    assert backoff.delay(10_000) == 30.0


def test_backoff_jitter_stays_in_range() -> None:
    backoff = Backoff(jitter=0.5)
    assert backoff.delay(1, rng=lambda: 0.0) == 0.25
    assert backoff.delay(1, rng=lambda: 0.999999) == pytest.approx(0.125, rel=1e-4)
    with pytest.raises(ValueError):
        Backoff(initial=2, maximum=1)
    with pytest.raises(ValueError):
        Backoff(jitter=2)


def test_client_url_rejects_bad_encoding() -> None:
    with pytest.raises(ValueError, match="encoding"):
        Client("http://127.0.0.1:1", encoding="xml")  # type: ignore[arg-type]  # the mistake under test


def test_network_options_need_a_url() -> None:
    class Dummy:
        async def aclose(self) -> None: ...

    with pytest.raises(TypeError, match="only apply"):
        Client(Dummy(), encoding="json")  # type: ignore[arg-type]


def test_client_url_without_the_extra_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(sys.modules):
        if name == "aiohttp" or name.startswith(("aiohttp.", "pyrivet.client._http")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    with pytest.raises(ImportError, match=r"pip install 'pyrivet\[client\]'"):
        Client("http://127.0.0.1:6420")


async def test_raw_routes_need_a_transport_that_has_them() -> None:
    class InProcessLike:
        async def aclose(self) -> None: ...

    handle = ActorHandle(InProcessLike(), ActorQuery("get", "web"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="raw fetch"):
        await handle.fetch("/x")
    with pytest.raises(TypeError, match="raw fetch"):
        await handle.websocket("/x")
