"""``POST …/queue/{name}`` in every encoding, and ``handle.send`` of the network and
sync clients against the real server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pyrivet import ActorOptions, Queue, Registry, actor
from pyrivet._protocol.messages import (
    Encoding,
    HttpQueueSendRequest,
    HttpQueueSendResponse,
    QueueSendStatus,
    content_type,
    decode_http,
    encode_http,
)
from pyrivet.client import Client, SyncClient
from pyrivet.errors import ForbiddenError, QueueError

from ._support import ENCODINGS, http_error, query_url
from .conftest import Served, Start


async def is_admin(c: Any) -> bool:
    return c.request is not None and c.request.headers.get("x-role") == "admin"


def queue_registry() -> Registry:
    """``echo``: a run loop completes each ``tasks`` message with ``{"done": body}``;
    ``jobs`` is never received (messages stay queued)."""
    echo = actor(
        "echo",
        queues={
            "tasks": Queue(),
            "jobs": Queue(dict),
            "closed": Queue(can_publish=lambda c: False),
            "admin": Queue(can_publish=is_admin),
        },
        options=ActorOptions(max_queue_message_size=1000),
    )

    @echo.run
    async def run(c: Any) -> None:
        async for message in c.queue.iter(["tasks"], completable=True):
            await message.complete({"done": message.body})

    @echo.action
    def pending(c: Any) -> list[Any]:
        return [m.body for m in c.queue.try_next_batch(["jobs"], count=100)]

    return Registry([echo])


@pytest.fixture
async def echo_server(start_server: Start) -> Served:
    return await start_server(queue_registry())


async def post_send(
    served: Served, name: str, request: HttpQueueSendRequest, encoding: Encoding
) -> tuple[int, Any]:
    response = await served.http.post(
        query_url("echo", f"/queue/{name}", key="q"),
        content=encode_http(request, encoding),
        headers={"x-rivet-encoding": encoding, "content-type": content_type(encoding)},
    )
    if response.status_code == 200:
        return 200, decode_http(response.content, encoding, HttpQueueSendResponse)
    return response.status_code, http_error(
        response.content, response.headers["content-type"], encoding
    )


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_queue_route_sends_and_waits(echo_server: Served, encoding: Encoding) -> None:
    status, reply = await post_send(
        echo_server, "jobs", HttpQueueSendRequest({"job": 1}, "jobs", False), encoding
    )
    assert (status, reply) == (200, HttpQueueSendResponse(QueueSendStatus.COMPLETED))
    status, reply = await post_send(
        echo_server, "tasks", HttpQueueSendRequest({"t": 7}, "tasks", True, 4000), encoding
    )
    assert (status, reply) == (
        200,
        HttpQueueSendResponse(QueueSendStatus.COMPLETED, {"done": {"t": 7}}),
    )
    # Nobody receives "jobs": a waiting sender times out and its message stays queued.
    status, reply = await post_send(
        echo_server, "jobs", HttpQueueSendRequest({"job": 2}, "jobs", True, 1), encoding
    )
    assert (status, reply) == (200, HttpQueueSendResponse(QueueSendStatus.TIMED_OUT))
    async with Client(echo_server.url, encoding=encoding) as client:
        assert await client.get_or_create("echo", ["q"]).pending() == [{"job": 1}, {"job": 2}]


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_queue_route_errors_change_nothing(echo_server: Served, encoding: Encoding) -> None:
    cases = [
        ("jobs", HttpQueueSendRequest("not a dict", "jobs"), 400, "queue", "invalid_payload"),
        (
            "jobs",
            HttpQueueSendRequest({"x": "y" * 2000}, "jobs"),
            400,
            "queue",
            "message_too_large",
        ),
        ("closed", HttpQueueSendRequest(1, "closed"), 403, "auth", "forbidden"),
    ]
    for name, request, status_code, group, code in cases:
        status, error = await post_send(echo_server, name, request, encoding)
        assert (status, error.group, error.code) == (status_code, group, code)
    # An undeclared name is accepted and dropped, as RivetKit does.
    status, reply = await post_send(
        echo_server, "nope", HttpQueueSendRequest(1, "nope", True, 1000), encoding
    )
    assert (status, reply) == (200, HttpQueueSendResponse(QueueSendStatus.COMPLETED))
    async with Client(echo_server.url, encoding=encoding) as client:
        assert await client.get_or_create("echo", ["q"]).pending() == []


async def test_can_publish_sees_the_http_request(echo_server: Served) -> None:
    url = query_url("echo", "/queue/admin", key="q")
    body = b'{"body":1,"name":"admin","wait":false}'
    refused = await echo_server.http.post(url, content=body, headers={"x-rivet-encoding": "json"})
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    allowed = await echo_server.http.post(
        url, content=body, headers={"x-rivet-encoding": "json", "x-role": "admin"}
    )
    assert (allowed.status_code, allowed.json()) == (200, {"status": "completed"})


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_network_client_send(echo_server: Served, encoding: Encoding) -> None:
    async with Client(echo_server.url, encoding=encoding) as client:
        handle = client.get_or_create("echo", ["net"])
        await handle.send("jobs", {"n": 1})
        # No body: the receiver gets None.
        assert (await handle.send("tasks", wait=True, timeout=5)).response == {"done": None}
        result = await handle.send("tasks", [1, "two"], wait=True, timeout=5)
        assert (result.status, result.response) == ("completed", {"done": [1, "two"]})
        assert (await handle.send("jobs", {"n": 2}, wait=True, timeout=0.01)).timed_out
        with pytest.raises(ForbiddenError):
            await handle.send("closed", 1)
        by_id = client.get_for_id("echo", await handle.resolve())
        await by_id.send("jobs", {"n": 3})
        assert await handle.pending() == [{"n": 1}, {"n": 2}, {"n": 3}]


def sync_scenario(url: str) -> list[Any]:
    with SyncClient(url, encoding="cbor") as client:
        handle = client.get_or_create("echo", ["sync"])
        handle.send("jobs", {"n": 1})
        result = handle.send("tasks", "hi", wait=True, timeout=5)
        try:
            handle.send("jobs", 5)
        except QueueError as exc:
            code = exc.code
        return [result, code, handle.pending()]


async def test_sync_client_send(echo_server: Served) -> None:
    result, code, pending = await asyncio.to_thread(sync_scenario, echo_server.url)
    assert (result.status, result.response) == ("completed", {"done": "hi"})
    assert code == "invalid_payload"
    assert pending == [{"n": 1}]
