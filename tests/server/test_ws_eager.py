"""Plain-function actions over a WebSocket start in the task that read their request
(`TaskSupervisor.spawn_eager`): replies and events keep their order and their one
write, with requests pipelined, a client that reads slowly, and coroutine actions in
flight beside them. Relaxed durability (strict mode's commit wait is covered by the
connect tests)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pyrivet import ActorOptions, Registry, actor
from pyrivet._protocol.messages import (
    ActionRequest,
    ActionResponse,
    Encoding,
    Event,
    SubscriptionRequest,
)

from ._support import ENCODINGS, query_url
from .conftest import Served, Start
from .test_ws_batching import RawSocket


def _registry() -> Registry:
    counter = actor(
        "counter",
        state={"count": 0},
        create_vars=lambda c: {"gate": asyncio.Event()},
        options=ActorOptions(durability="relaxed"),
    )

    @counter.action
    def increment(c: Any, amount: int, pad: int) -> list[Any]:
        c.state["count"] += amount
        c.broadcast("count", c.state["count"])
        return [c.state["count"], "x" * pad]

    @counter.action
    async def wait(c: Any) -> str:
        await c.vars["gate"].wait()
        return "waited"

    @counter.action
    def release(c: Any) -> str:
        c.vars["gate"].set()
        return "released"

    return Registry([counter])


async def _open(served: Served, encoding: Encoding, key: str) -> tuple[RawSocket, Any]:
    port = int(served.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    raw = RawSocket(reader, writer)
    await raw.open(served.ws_url + query_url("counter", "/connect", key=key), encoding)
    raw.send(SubscriptionRequest("count", True), encoding)
    return raw, writer


async def _read(raw: RawSocket, encoding: Encoding, count: int) -> list[Any]:
    frames: list[Any] = []
    while len(frames) < count:
        frames += [raw.decode(event, encoding) for event in await raw.read_once()]
    return frames


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_pipelined_plain_actions_keep_their_order_past_a_slow_reader(
    start_server: Start, encoding: Encoding
) -> None:
    served = await start_server(_registry())
    raw, writer = await _open(served, encoding, "slow")
    try:
        calls, pad = 120, 40_000  # ~4.8 MB of replies: the server's writes back up
        for action_id in range(calls):
            raw.send(ActionRequest(action_id, "increment", [1, pad]), encoding)
        await asyncio.sleep(0.3)  # the client reads nothing meanwhile
        frames = await _read(raw, encoding, 2 * calls)
        expected: list[Any] = []
        for action_id in range(calls):
            count = action_id + 1
            expected += [Event("count", [count]), ActionResponse(action_id, [count, "x" * pad])]
        assert frames == expected
        raw.send(ActionRequest(calls, "increment", [1, 0]), encoding)  # still open
        assert await _read(raw, encoding, 2) == [
            Event("count", [calls + 1]),
            ActionResponse(calls, [calls + 1, ""]),
        ]
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_plain_actions_reply_while_a_coroutine_action_waits(
    start_server: Start, encoding: Encoding
) -> None:
    served = await start_server(_registry())
    raw, writer = await _open(served, encoding, "mixed")
    try:
        raw.send(ActionRequest(0, "wait", []), encoding)
        raw.send(ActionRequest(1, "increment", [5, 0]), encoding)
        assert await _read(raw, encoding, 2) == [
            Event("count", [5]),
            ActionResponse(1, [5, ""]),
        ]
        raw.send(ActionRequest(2, "release", []), encoding)
        frames = await _read(raw, encoding, 2)
        assert frames == [ActionResponse(2, "released"), ActionResponse(0, "waited")]
    finally:
        writer.close()
        await writer.wait_closed()
