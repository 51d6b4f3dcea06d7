"""An integer outside the 64-bit range pyrivet stores, in an action's arguments or an
actor's input, is bad input: 400 ``actor/invalid_request`` naming where it sits and the
range, nothing runs or is created, and the server (and the connection) keep serving."""

from __future__ import annotations

import base64

import pytest
from websockets.asyncio.client import connect

from pyrivet._codec import cbor, values
from pyrivet._protocol.messages import ActionResponse, Encoding, Error, Init
from pyrivet.errors import EncodingError

from ._support import (
    ENCODINGS,
    action_request,
    call,
    cbor_input_b64url,
    http_error,
    query_url,
    recv_msg,
    subprotocols,
)
from .conftest import Served

HUGE = 123456789012345678901234567890
RANGE = "-2**63 to 2**64 - 1"


async def actors_named(served: Served, name: str) -> list[object]:
    listed = await served.http.get("/actors", params={"name": name})
    actors = listed.json()["actors"]
    assert isinstance(actors, list)
    return actors


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_a_huge_argument_is_a_400_naming_its_path(served: Served, encoding: Encoding) -> None:
    body, headers = action_request([1, {"a": [2, -HUGE]}], encoding)
    response = await served.http.post(
        query_url("counter", "/action/echo", key="big"), content=body, headers=headers
    )
    assert response.status_code == 400
    error = http_error(response.content, response.headers["content-type"], encoding)
    assert (error.group, error.code) == ("actor", "invalid_request")
    assert f"args[1].a[1] is the integer {-HUGE}" in error.message
    assert RANGE in error.message
    assert error.metadata == {
        "path": "args[1].a[1]",
        "min": str(-(2**63)),
        "max": str(2**64 - 1),
    }
    assert await actors_named(served, "counter") == []


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_the_edges_of_the_range_are_accepted(served: Served, encoding: Encoding) -> None:
    body, headers = action_request([-(2**63), 2**64 - 1], encoding)
    response = await served.http.post(
        query_url("counter", "/action/echo", key="edges"), content=body, headers=headers
    )
    assert response.status_code == 200
    body, headers = action_request([2**64], encoding)
    response = await served.http.post(
        query_url("counter", "/action/echo", key="edges"), content=body, headers=headers
    )
    assert response.status_code == 400


async def test_a_huge_plain_json_number_is_refused_too(served: Served) -> None:
    response = await served.http.post(
        query_url("counter", "/action/increment", key="plain"),
        content=b'{"args": [123456789012345678901234567890]}',
        headers={"x-rivet-encoding": "json"},
    )
    assert response.status_code == 400
    assert "args[0] is the integer 123456789012345678901234567890" in response.json()["message"]


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_a_huge_argument_over_websocket_fails_that_action_only(
    served: Served, encoding: Encoding
) -> None:
    url = served.ws_url + query_url("counter", "/connect", key="big-ws")
    async with connect(url, subprotocols=subprotocols(encoding)) as ws:
        assert isinstance(await recv_msg(ws, encoding), Init)
        await call(ws, encoding, 0, "increment", HUGE)
        error = await recv_msg(ws, encoding)
        assert isinstance(error, Error)
        assert (error.group, error.code, error.action_id) == ("actor", "invalid_request", 0)
        assert f"args[0] is the integer {HUGE}" in error.message
        await call(ws, encoding, 1, "increment", 2)
        assert await recv_msg(ws, encoding) == ActionResponse(1, 2)


async def test_a_huge_input_is_refused_before_the_actor_is_created(served: Served) -> None:
    gateway = await served.http.post(
        query_url(
            "counter",
            "/action/get",
            key="big-in",
            extra=f"rvt-input={cbor_input_b64url({'n': HUGE})}",
        ),
        json={"args": []},
    )
    assert gateway.status_code == 400
    assert "rvt-input.n is the integer" in gateway.json()["message"]
    management = await served.http.put(
        "/actors",
        json={
            "name": "counter",
            "key": "big-in",
            "input": base64.b64encode(cbor.encode([HUGE])).decode(),
        },
    )
    assert management.status_code == 400
    assert "input[0] is the integer" in management.json()["message"]
    assert await actors_named(served, "counter") == []


def test_storage_encoding_names_the_integer_and_the_range() -> None:
    with pytest.raises(EncodingError) as caught:
        values.encode({"a": [1, 10**40]}, "the action arguments")
    assert "at a[1] is outside the range pyrivet stores" in caught.value.message
    assert RANGE in caught.value.message
    assert "(41 digits)" in caught.value.message
    assert values.find_unstorable_int([True, "x", {1: 2**64 - 1}, {-(2**63)}]) is None
    assert values.find_unstorable_int(({2**64},)) == ("[0]{set item}", 2**64)
