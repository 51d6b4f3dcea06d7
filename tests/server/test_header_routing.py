"""Routing by header, as RivetKit's gateway does it: ``x-rivet-target: actor`` with
``x-rivet-actor: {id}`` (WebSocket: subprotocols ``rivet_target.actor`` and
``rivet_actor.{id}``) on a path outside ``/gateway/`` reaches that actor, the whole
path being the actor route. Also the gateway's errors for a URL that mixes up the
direct and the query form."""

from __future__ import annotations

import json
from urllib.parse import quote

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from pyrivet._protocol.messages import ActionResponse, Init

from ._support import call, query_url, recv_msg, subprotocols
from .conftest import Served


async def actor_id_of(served: Served, name: str, key: str) -> str:
    response = await served.http.get(query_url(name, "/health", key=key))
    assert response.status_code == 200
    return response.headers["x-rivet-actor"]


def by_header(actor_id: str) -> dict[str, str]:
    return {"x-rivet-target": "actor", "x-rivet-actor": actor_id}


async def test_a_raw_request_is_routed_by_the_headers(served: Served) -> None:
    actor_id = await actor_id_of(served, "web", "hdr")
    response = await served.http.post(
        "/request/hello/world?x=1&rvt-key=kept",
        content=b"payload",
        headers={**by_header(actor_id), "x-custom": "abc"},
    )
    assert response.status_code == 201
    assert response.headers["x-rivet-actor"] == actor_id
    body = response.json()
    assert body["path"] == "/hello/world"
    # The query string is the actor's own: nothing is read as an rvt-* parameter.
    assert body["query"] == "x=1&rvt-key=kept"
    assert body["body"] == "payload"
    assert body["header"] == "abc"
    assert body["hits"] == 1


async def test_actions_health_and_metadata_are_routed_by_the_headers(served: Served) -> None:
    actor_id = await actor_id_of(served, "counter", "hdr")
    headers = {**by_header(actor_id), "x-rivet-encoding": "json"}
    action = await served.http.post("/action/increment", json={"args": [4]}, headers=headers)
    assert action.status_code == 200
    assert action.json() == {"output": 4}
    again = await served.http.post(
        query_url("counter", "/action/get", key="hdr"), json={"args": []}
    )
    assert again.json() == {"output": 4}, "the header call reached the same actor"
    health = await served.http.get("/health", headers=by_header(actor_id))
    assert health.text == "ok"
    assert health.headers["x-rivet-actor"] == actor_id
    metadata = await served.http.get("/metadata", headers=by_header(actor_id))
    assert metadata.json()["actorId"] == actor_id


async def test_the_path_form_wins_over_the_headers(served: Served) -> None:
    web_id = await actor_id_of(served, "web", "path-wins")
    counter_id = await actor_id_of(served, "counter", "path-wins")
    response = await served.http.get(f"/gateway/{web_id}/request/x", headers=by_header(counter_id))
    assert response.status_code == 200
    assert response.headers["x-rivet-actor"] == web_id


async def test_other_targets_and_no_header_keep_the_top_level_routes(served: Served) -> None:
    actor_id = await actor_id_of(served, "web", "other")
    metadata = await served.http.get(
        "/metadata", headers={"x-rivet-target": "api-public", "x-rivet-actor": actor_id}
    )
    assert metadata.json()["runtime"] == "pyrivet"
    assert "actorNames" in metadata.json()
    plain = await served.http.get("/request/x")
    assert plain.status_code == 404


async def test_a_missing_or_unknown_actor_header_is_a_clear_error(served: Served) -> None:
    missing = await served.http.get("/request/x", headers={"x-rivet-target": "actor"})
    assert missing.status_code == 400
    assert missing.json()["code"] == "invalid_request"
    assert "x-rivet-actor" in missing.json()["message"]
    unknown = await served.http.get("/request/x", headers=by_header("no-such-actor"))
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "not_found"
    actor_id = await actor_id_of(served, "web", "routes")
    no_route = await served.http.get("/nothing/here", headers=by_header(actor_id))
    assert no_route.status_code == 404
    assert f"under the actor {actor_id} (named by x-rivet-actor)" in no_route.json()["message"]


async def test_a_raw_websocket_is_routed_by_subprotocols(served: Served) -> None:
    actor_id = await actor_id_of(served, "web", "hdr-ws")
    protocols = ["rivet", "rivet_target.actor", f"rivet_actor.{quote(actor_id, safe='')}"]
    async with connect(served.ws_url + "/websocket/chat?room=2", subprotocols=protocols) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == "rivet"
        assert await ws.recv() == "hello /chat?room=2"
        await ws.send("one")
        assert await ws.recv() == "echo one #1"


async def test_a_connect_websocket_is_routed_by_subprotocols(served: Served) -> None:
    actor_id = await actor_id_of(served, "counter", "hdr-conn")
    protocols = [*subprotocols("json"), "rivet_target.actor", f"rivet_actor.{actor_id}"]
    async with connect(served.ws_url + "/connect", subprotocols=protocols) as ws:  # type: ignore[arg-type]
        init = await recv_msg(ws, "json")
        assert isinstance(init, Init)
        assert init.actor_id == actor_id
        await call(ws, "json", 0, "increment", 2)
        reply = await recv_msg(ws, "json")
        assert isinstance(reply, ActionResponse)
        assert reply.output == 2


async def test_a_websocket_without_the_actor_subprotocol_is_closed_with_the_reason(
    served: Served,
) -> None:
    protocols = ["rivet", "rivet_encoding.bare", "rivet_target.actor"]
    async with connect(served.ws_url + "/websocket/x", subprotocols=protocols) as ws:  # type: ignore[arg-type]
        try:
            await ws.recv()
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            assert closed.rcvd.code == 1011
            assert closed.rcvd.reason == "actor.invalid_request"
        else:
            raise AssertionError("the socket stayed open")


async def test_an_actor_name_in_the_direct_form_says_how_to_write_the_query_form(
    served: Served,
) -> None:
    response = await served.http.post("/gateway/counter/action/increment", json={"args": [1]})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_request"
    assert "'counter' is an actor name" in body["message"]
    assert "/gateway/counter/action/NAME?rvt-method=getOrCreate&rvt-key=KEY" in body["message"]
    assert json.loads((await served.http.get("/actors?name=counter")).text)["actors"] == []


async def test_query_parameters_without_rvt_method_say_what_to_add(served: Served) -> None:
    response = await served.http.post(
        "/gateway/counter/action/increment?rvt-key=room-1", json={"args": [1]}
    )
    assert response.status_code == 400
    message = response.json()["message"]
    assert "has no rvt-method" in message
    assert "rvt-key=room-1" in message
    assert "rvt-method=getOrCreate" in message
    assert json.loads((await served.http.get("/actors?name=counter")).text)["actors"] == []
