"""Raw ``request/`` and ``websocket/`` routes served by on_request / on_websocket."""

from __future__ import annotations

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from ._support import make_registry, query_url, subprotocols
from .conftest import Served, Start


async def test_on_request_sees_path_query_body_and_headers(served: Served) -> None:
    url = query_url("web", "/request/hello/world", key="site").replace("?", "?x=1&y=two&", 1)
    response = await served.http.post(url, content=b"payload", headers={"x-custom": "abc"})
    assert response.status_code == 201
    assert response.headers["x-from-actor"] == "yes"
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body == {
        "method": "POST",
        "path": "/hello/world",
        "query": "x=1&y=two",
        "body": "payload",
        "header": "abc",
        "hits": 1,
        "conn": True,
    }
    actor_id = response.headers["x-rivet-actor"]
    # Direct form, trailing slash and encoded characters are kept for the handler.
    direct = await served.http.get(f"/gateway/{actor_id}/request/a%20b/")
    assert direct.status_code == 200
    assert direct.json()["path"] == "/a b/"
    assert direct.json()["hits"] == 2
    root = await served.http.get(f"/gateway/{actor_id}/request")
    assert root.json()["path"] == "/"


async def test_on_request_errors(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    fail = await served.http.get(query_url("web", "/request/fail", key="err"))
    assert fail.status_code == 500
    assert fail.json()["group"] == "user"
    assert fail.json()["code"] == "teapot"
    assert fail.json()["metadata"] == {"short": True}

    crash = await served.http.get(query_url("web", "/request/crash", key="err"))
    assert crash.status_code == 500
    assert crash.json()["code"] == "internal_error"
    assert b"hidden" not in crash.content

    wrong = await served.http.get(query_url("web", "/request/not-a-response", key="err"))
    assert wrong.status_code == 500
    assert wrong.json()["code"] == "internal_error"
    assert "must return pyrivet.server.Response" in caplog.text

    no_hook = await served.http.get(query_url("counter", "/request/x", key="err"))
    assert no_hook.status_code == 404
    assert no_hook.json()["code"] == "handler_not_found"


async def test_on_request_body_limit(start_server: Start) -> None:
    small = await start_server(make_registry(), max_raw_request_size=10)
    response = await small.http.post(query_url("web", "/request/x", key="lim"), content=b"x" * 11)
    assert response.status_code == 400
    assert response.json()["code"] == "incoming_too_long"
    ok = await small.http.post(query_url("web", "/request/x", key="lim"), content=b"x" * 10)
    assert ok.status_code == 201
    assert ok.json()["hits"] == 1


async def test_on_websocket_echoes_and_commits(served: Served) -> None:
    url = served.ws_url + query_url("web", "/websocket/chat", key="ws").replace("?", "?room=1&", 1)
    async with connect(url, subprotocols=subprotocols("bare")) as ws:
        assert ws.subprotocol == "rivet"
        assert await ws.recv() == "hello /chat?room=1"
        await ws.send("one")
        assert await ws.recv() == "echo one #1"
        await ws.send(b"\x01\x02\x03")
        assert await ws.recv() == b"\x03\x02\x01"
        await ws.send("close-me")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (4000, "bye")
    stats = await served.http.post(
        query_url("web", "/action/stats", key="ws"),
        content=b'{"args":[]}',
        headers={"x-rivet-encoding": "json"},
    )
    assert stats.json()["output"]["frames"] == 2


async def test_on_websocket_failures_close_with_group_code(served: Served) -> None:
    url = served.ws_url + query_url("web", "/websocket/", key="wsfail")
    async with connect(url, subprotocols=subprotocols(None)) as ws:
        assert await ws.recv() == "hello /?"
        await ws.send("fail")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (1011, "user.refused")

    no_hook = served.ws_url + query_url("counter", "/websocket/", key="wsfail")
    async with connect(no_hook, subprotocols=subprotocols(None)) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (1011, "actor.handler_not_found")


async def test_raw_websocket_is_closed_when_the_actor_sleeps(served: Served) -> None:
    assert served.runtime is not None
    url = served.ws_url + query_url("web", "/websocket/s", key="nap")
    async with connect(url, subprotocols=subprotocols(None)) as ws:
        await ws.recv()
        await ws.send("x")
        assert await ws.recv() == "echo x #1"
        actor = await served.http.get("/actors", params={"name": "web", "key": "nap"})
        await served.runtime.sleep(actor.json()["actors"][0]["actor_id"])
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1000
