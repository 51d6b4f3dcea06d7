"""``c.request``: connection hooks see the URL, method and headers of the HTTP request."""

from __future__ import annotations

from typing import Any

from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from pyrivet import Client, Registry, actor
from pyrivet._protocol.messages import ActionResponse, Init

from ._support import action_output, action_request, call, query_url, recv_msg, subprotocols
from .conftest import Start

seen: list[tuple[str, Any]] = []


def _record(hook: str, c: Any) -> None:
    request = c.request
    if request is None:
        seen.append((hook, None))
        return
    seen.append((hook, (request.url, request.method, request.headers.get("x-custom"))))


def every_hook_saw(request: Any) -> list[tuple[str, Any]]:
    """What `seen` holds after a connection's hooks and one action all saw ``request``."""
    return [
        (hook, request) for hook in ("on_before_connect", "create_conn_state", "on_connect", "ping")
    ]


def make_registry() -> Registry:
    def conn_state(c: Any, params: Any) -> dict[str, Any]:
        _record("create_conn_state", c)
        return {}

    watched = actor("watched", state={"n": 0}, create_conn_state=conn_state)

    @watched.on_before_connect
    def before(c: Any, params: Any) -> None:
        _record("on_before_connect", c)

    @watched.on_connect
    def connected(c: Any, conn: Any) -> None:
        _record("on_connect", c)

    @watched.action
    def ping(c: Any) -> str:
        _record("ping", c)
        return "pong"

    return Registry([watched])


async def test_an_http_action_s_connection_hooks_see_the_request(start_server: Start) -> None:
    served = await start_server(make_registry())
    seen.clear()
    url = query_url("watched", "/action/ping", key="http")
    body, headers = action_request([], "json")
    response = await served.http.post(url, content=body, headers={**headers, "X-Custom": "hello"})
    assert response.status_code == 200
    assert action_output(response.content, "json") == "pong"
    assert seen == every_hook_saw((f"{served.url}{url}", "POST", "hello"))


async def test_a_websocket_connection_s_hooks_see_the_upgrade_request(start_server: Start) -> None:
    served = await start_server(make_registry())
    seen.clear()
    url = query_url("watched", "/connect", key="ws")
    async with connect(
        served.ws_url + url,
        subprotocols=[Subprotocol(p) for p in subprotocols("json")],
        additional_headers={"X-Custom": "from-ws"},
    ) as ws:
        assert isinstance(await recv_msg(ws, "json"), Init)
        await call(ws, "json", 0, "ping")
        assert await recv_msg(ws, "json") == ActionResponse(0, "pong")
    assert seen == every_hook_saw((f"{served.ws_url}{url}", "GET", "from-ws"))


async def test_in_process_calls_have_no_request(start_server: Start) -> None:
    served = await start_server(make_registry())
    assert served.runtime is not None
    seen.clear()
    handle = Client(served.runtime).get_or_create("watched", ["local"])
    assert await handle.ping() == "pong"
    assert seen == every_hook_saw(None)
