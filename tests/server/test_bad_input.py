"""Limits and malformed input: a clear error, a closed socket, nothing changed, others served."""

from __future__ import annotations

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from pyrivet._protocol.messages import ActionResponse, Encoding, Error, Init

from ._support import ENCODINGS, action_request, call, query_url, recv_msg, subprotocols
from .conftest import Served

LIMIT = 65_536


async def count_of(served: Served, key: str) -> int:
    response = await served.http.post(
        query_url("counter", "/action/get", key=key),
        content=b'{"args":[]}',
        headers={"x-rivet-encoding": "json"},
    )
    assert response.status_code == 200
    value = response.json()["output"]
    assert isinstance(value, int)
    return value


async def increment(served: Served, key: str, amount: int = 1) -> None:
    response = await served.http.post(
        query_url("counter", "/action/increment", key=key),
        content=b'{"args":[%d]}' % amount,
        headers={"x-rivet-encoding": "json"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_oversized_http_body_is_refused(served: Served, encoding: Encoding) -> None:
    await increment(served, "big-in")
    body, headers = action_request([1, "x" * LIMIT], encoding)
    response = await served.http.post(
        query_url("counter", "/action/increment", key="big-in"), content=body, headers=headers
    )
    assert response.status_code == 400
    assert response.json()["group"] == "message"
    assert response.json()["code"] == "incoming_too_long"
    assert await count_of(served, "big-in") == 1


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_oversized_result_is_refused(served: Served, encoding: Encoding) -> None:
    body, headers = action_request([2_000_000], encoding)
    response = await served.http.post(
        query_url("counter", "/action/big", key="big-out"), content=body, headers=headers
    )
    assert response.status_code == 400
    from ._support import http_error

    error = http_error(response.content, response.headers["content-type"], encoding)
    assert (error.group, error.code) == ("message", "outgoing_too_long")


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_malformed_http_body_is_invalid_request(served: Served, encoding: Encoding) -> None:
    await increment(served, "garbage")
    for body in (b"\xff\xfe\x00garbage", b"", b"\x04\x00\x09"):
        response = await served.http.post(
            query_url("counter", "/action/increment", key="garbage"),
            content=body,
            headers={"x-rivet-encoding": encoding},
        )
        assert response.status_code == 400, body
        assert response.json()["code"] == "invalid_request"
        assert response.json()["message"]
    assert await count_of(served, "garbage") == 1


async def test_unknown_http_encoding(served: Served) -> None:
    response = await served.http.post(
        query_url("counter", "/action/increment", key="enc"),
        content=b'{"args":[1]}',
        headers={"x-rivet-encoding": "xml"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "unsupported_encoding"
    assert "xml" in response.json()["message"]


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("rvt-method=getOrCreate&rvt-key=k&rvt-bogus=1", "rvt-bogus"),
        ("rvt-method=getOrCreate&rvt-key=k&rvt-key=j", "more than once"),
        ("rvt-key=k&rvt-namespace=default", "rvt-method"),
        ("rvt-method=fetch&rvt-key=k", "get or getOrCreate"),
        ("rvt-method=get&rvt-key=k&rvt-runner=default", "rvt-runner"),
        ("rvt-method=getOrCreate&rvt-key=k&rvt-input=%%%", "base64url"),
        ("rvt-method=getOrCreate&rvt-key=k&rvt-input=_w", "CBOR"),
    ],
)
async def test_bad_gateway_parameters_change_nothing(
    served: Served, query: str, needle: str
) -> None:
    response = await served.http.post(
        f"/gateway/counter/action/increment?{query}",
        content=b'{"args":[1]}',
        headers={"x-rivet-encoding": "json"},
    )
    assert response.status_code == 400
    assert response.headers["x-rivet-error"] == "actor.invalid_request"
    assert needle in response.json()["message"]
    listed = await served.http.get("/actors", params={"name": "counter", "key": "k"})
    assert listed.json() == {"actors": []}


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_oversized_frame_closes_only_that_socket(served: Served, encoding: Encoding) -> None:
    url = served.ws_url + query_url("counter", "/connect", key="frames")
    async with (
        connect(url, subprotocols=subprotocols(encoding)) as bad,
        connect(url, subprotocols=subprotocols(encoding)) as good,
    ):
        assert isinstance(await recv_msg(bad, encoding), Init)
        assert isinstance(await recv_msg(good, encoding), Init)
        await bad.send(b"\x00" * (LIMIT + 1) if encoding != "json" else "x" * (LIMIT + 1))
        error = await recv_msg(bad, encoding)
        assert isinstance(error, Error)
        assert (error.group, error.code, error.action_id) == ("message", "incoming_too_long", None)
        with pytest.raises(ConnectionClosed):
            await bad.recv()
        assert (bad.close_code, bad.close_reason) == (1011, "message.incoming_too_long")

        await call(good, encoding, 0, "increment", 1)
        assert await recv_msg(good, encoding) == ActionResponse(0, 1)


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_malformed_frame_closes_with_invalid_request(
    served: Served, encoding: Encoding
) -> None:
    url = served.ws_url + query_url("counter", "/connect", key="malformed")
    async with connect(url, subprotocols=subprotocols(encoding)) as ws:
        assert isinstance(await recv_msg(ws, encoding), Init)
        frames: dict[Encoding, str | bytes] = {
            "json": '{"body":{"tag":"Nope","val":{}}}',
            "cbor": b"\xa1\x64body\xa2\x63tag\x64Nope\x63val\xa0",
            "bare": b"\x04\x00\x07",  # unknown union tag
        }
        await ws.send(frames[encoding])
        error = await recv_msg(ws, encoding)
        assert isinstance(error, Error)
        assert (error.group, error.code) == ("actor", "invalid_request")
        assert error.message
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (1011, "actor.invalid_request")
    assert await count_of(served, "malformed") == 0


async def test_unknown_websocket_encoding_closes_1003(served: Served) -> None:
    url = served.ws_url + query_url("counter", "/connect", key="enc")
    async with connect(url, subprotocols=subprotocols("xml")) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (1003, "actor.unsupported_websocket_encoding")
    listed = await served.http.get("/actors", params={"name": "counter", "key": "enc"})
    assert listed.json() == {"actors": []}


async def test_bad_conn_params_on_a_socket(served: Served) -> None:
    url = served.ws_url + query_url("counter", "/connect", key="params")
    async with connect(url, subprotocols=subprotocols("json", "{nope")) as ws:
        error = await recv_msg(ws, "json")
        assert isinstance(error, Error) and error.code == "invalid_request"
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (1011, "actor.invalid_request")


async def test_websocket_on_a_non_socket_route_is_refused(served: Served) -> None:
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as info:
        await connect(served.ws_url + "/metadata")
    assert info.value.response.status_code == 403
    response = await served.http.get(query_url("counter", "/connect", key="x"))
    assert response.status_code == 400
    assert "WebSocket" in response.json()["message"]
