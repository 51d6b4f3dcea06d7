"""The WebSocket connect protocol: Init, actions, subscriptions, events, rejections."""

from __future__ import annotations

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from pyrivet._protocol.messages import (
    ActionResponse,
    Encoding,
    Error,
    Event,
    Init,
)

from ._support import ENCODINGS, call, query_url, recv_msg, subprotocols, subscribe
from .conftest import Served


async def open_conn(
    served: Served, encoding: Encoding, url: str, params: str | None = None
) -> tuple[ClientConnection, Init]:
    ws = await connect(served.ws_url + url, subprotocols=subprotocols(encoding, params))
    assert ws.subprotocol == "rivet"
    init = await recv_msg(ws, encoding)
    assert isinstance(init, Init), init
    return ws, init


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_init_then_actions_and_events_only_to_subscribers(
    served: Served, encoding: Encoding
) -> None:
    url = query_url("counter", "/connect", key=f"room-{encoding}")
    listener, init_a = await open_conn(served, encoding, url)
    other, init_b = await open_conn(served, encoding, url)
    async with listener, other:
        assert init_a.actor_id == init_b.actor_id
        assert init_a.connection_id != init_b.connection_id

        await subscribe(listener, encoding, "count")
        await call(listener, encoding, 0, "get")
        assert await recv_msg(listener, encoding) == ActionResponse(0, 0)

        await call(other, encoding, 0, "increment", 4)
        # `other` is not subscribed: its next frame is its reply, no event before it.
        assert await recv_msg(other, encoding) == ActionResponse(0, 4)
        assert await recv_msg(listener, encoding) == Event("count", [4])

        # Several arguments reach the listener as several arguments.
        await subscribe(listener, encoding, "pair")
        await call(other, encoding, 1, "shout", "a", {"b": 1})
        assert await recv_msg(other, encoding) == ActionResponse(1, None)
        assert await recv_msg(listener, encoding) == Event("pair", ["a", {"b": 1}])

        # conn.send reaches only its own connection.
        await call(other, encoding, 2, "tell_me", "psst")
        assert await recv_msg(other, encoding) == Event("private", ["psst"])
        assert await recv_msg(other, encoding) == ActionResponse(2, None)

        # Unsubscribing stops the events.
        await subscribe(listener, encoding, "count", on=False)
        await call(other, encoding, 3, "increment", 1)
        assert await recv_msg(other, encoding) == ActionResponse(3, 5)
        await call(listener, encoding, 7, "get")
        assert await recv_msg(listener, encoding) == ActionResponse(7, 5)


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_several_actions_in_flight_on_one_connection(
    served: Served, encoding: Encoding
) -> None:
    ws, _ = await open_conn(served, encoding, query_url("counter", "/connect", key="flight"))
    async with ws:
        await call(ws, encoding, 0, "wait")
        await call(ws, encoding, 1, "release")
        # The second finishes first, then frees the first.
        assert await recv_msg(ws, encoding) == ActionResponse(1, "released")
        assert await recv_msg(ws, encoding) == ActionResponse(0, "waited")


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_action_errors_name_the_action(served: Served, encoding: Encoding) -> None:
    ws, init = await open_conn(served, encoding, query_url("counter", "/connect", key="err"))
    async with ws:
        await call(ws, encoding, 2, "increment", -1)
        error = await recv_msg(ws, encoding)
        assert isinstance(error, Error)
        assert (error.group, error.code, error.action_id) == ("user", "negative_amount", 2)
        assert error.metadata == {"amount": -1}
        assert error.actor is not None and error.actor.actor_id == init.actor_id

        await call(ws, encoding, 3, "boom")
        error = await recv_msg(ws, encoding)
        assert isinstance(error, Error)
        assert (error.group, error.code, error.action_id) == ("core", "internal_error", 3)
        assert error.message == "An internal error occurred"

        await call(ws, encoding, 4, "missing")
        error = await recv_msg(ws, encoding)
        assert isinstance(error, Error) and error.code == "action_not_found"
        # The connection is still usable.
        await call(ws, encoding, 5, "get")
        assert await recv_msg(ws, encoding) == ActionResponse(5, 0)


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_on_before_connect_rejection_sends_error_then_closes(
    served: Served, encoding: Encoding
) -> None:
    url = query_url("guarded", "/connect", key="door")
    ws = await connect(served.ws_url + url, subprotocols=subprotocols(encoding, '{"token":"x"}'))
    async with ws:
        error = await recv_msg(ws, encoding)
        assert isinstance(error, Error)
        assert (error.group, error.code, error.action_id) == ("user", "forbidden", None)
        assert error.metadata == {"hint": "token"}
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1011
        assert ws.close_reason == "user.forbidden"

    ok, _ = await open_conn(served, encoding, url, '{"token":"secret","user":"ann"}')
    async with ok:
        await call(ok, encoding, 0, "hello")
        assert await recv_msg(ok, encoding) == ActionResponse(0, "hi ann")


async def test_direct_form_connect_and_not_found(served: Served) -> None:
    created = await served.http.post("/actors", json={"name": "counter", "key": "direct"})
    actor_id = created.json()["actor"]["actor_id"]
    ws, init = await open_conn(served, "bare", f"/gateway/{actor_id}/connect")
    async with ws:
        assert init.actor_id == actor_id

    missing = await connect(
        served.ws_url + "/gateway/no-such-id/connect", subprotocols=subprotocols("json")
    )
    async with missing:
        error = await recv_msg(missing, "json")
        assert isinstance(error, Error) and (error.group, error.code) == ("actor", "not_found")
        with pytest.raises(ConnectionClosed):
            await missing.recv()
        assert (missing.close_code, missing.close_reason) == (1011, "actor.not_found")


async def test_encoding_defaults_to_json_without_the_subprotocol(served: Served) -> None:
    ws = await connect(
        served.ws_url + query_url("counter", "/connect", key="plain"),
        subprotocols=subprotocols(None),
    )
    async with ws:
        assert isinstance(await recv_msg(ws, "json"), Init)


async def test_actor_sleep_keeps_the_socket_and_a_message_wakes_it(served: Served) -> None:
    assert served.runtime is not None
    ws, init = await open_conn(served, "json", query_url("counter", "/connect", key="sleepy"))
    async with ws:
        await call(ws, "json", 0, "increment", 2)
        assert await recv_msg(ws, "json") == ActionResponse(0, 2)
        await served.runtime.sleep(init.actor_id)
        assert not served.runtime.is_awake(init.actor_id)
        # The socket stayed open (hibernated); the next action wakes the actor.
        await call(ws, "json", 1, "get")
        assert await recv_msg(ws, "json") == ActionResponse(1, 2)
        assert served.runtime.is_awake(init.actor_id)
