"""Under `pyrivet serve`'s protocol a frame is taken in ``data_received``
(`DirectReceive`) and a plain-function action starts right there
(`TaskSupervisor.spawn_eager`): replies and events keep their order and their one
write, with requests pipelined, a client that reads slowly, and coroutine actions in
flight beside them. Relaxed durability (strict mode's commit wait is covered by the
connect tests)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from pyrivet import ActorOptions, Registry, actor
from pyrivet._protocol.messages import (
    ActionRequest,
    ActionResponse,
    Encoding,
    Error,
    Event,
    Init,
    SubscriptionRequest,
    encode_to_server,
)
from pyrivet.server.ws_connect import ConnectSession
from pyrivet.storage import MemoryDriver

from ._support import ENCODINGS, query_url, recv_msg, subprotocols
from .conftest import Served, Start
from .test_ws_batching import RawSocket


def _registry(durability: Any = "relaxed") -> Registry:
    counter = actor(
        "counter",
        state={"count": 0},
        create_vars=lambda c: {"gate": asyncio.Event()},
        options=ActorOptions(durability=durability),
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
            # Every fourth alone in a read (taken in data_received), the others three
            # in one (websockets' parser, the receive queue): both paths, in order.
            alone = action_id % 4 == 0
            if alone:
                await asyncio.sleep(0.002)
            raw.send(ActionRequest(action_id, "increment", [1, pad]), encoding)
            if alone:
                await asyncio.sleep(0.002)
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
async def test_strict_plain_actions_reply_after_their_commit_in_order(
    start_server: Start, encoding: Encoding
) -> None:
    """A strict plain action goes on in a task at its commit wait and replies from
    there (`spawn_eager` resumes it in the task's first step): a failed commit fails
    its call with no event, and pipelined calls keep event-before-reply order."""
    store = MemoryDriver()
    served = await start_server(_registry("strict"), storage=store)
    raw, writer = await _open(served, encoding, "strict")
    try:
        raw.send(ActionRequest(0, "increment", [1, 0]), encoding)
        assert await _read(raw, encoding, 2) == [Event("count", [1]), ActionResponse(0, [1, ""])]
        store.fail_next_commit(RuntimeError("disk on fire"))
        raw.send(ActionRequest(1, "increment", [1, 0]), encoding)
        (failed,) = await _read(raw, encoding, 1)
        assert isinstance(failed, Error) and failed.action_id == 1
        for action_id in range(2, 12):
            raw.send(ActionRequest(action_id, "increment", [1, 0]), encoding)
        frames = await _read(raw, encoding, 20)
        # The failed call's change was rolled back: the count goes on from 1. Calls
        # committed together may send their events ahead of their replies; each event
        # comes before its call's reply, and both kinds keep their order.
        ids = range(2, 12)
        assert [f for f in frames if isinstance(f, Event)] == [Event("count", [i]) for i in ids]
        replies = [f for f in frames if isinstance(f, ActionResponse)]
        assert replies == [ActionResponse(i, [i, ""]) for i in ids]
        for i in ids:
            assert frames.index(Event("count", [i])) < frames.index(replies[i - 2])
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


@pytest.mark.parametrize("compression", [None, "deflate"])  # None: frames come direct
async def test_an_unexpected_error_taking_a_frame_fails_the_socket_as_internal(
    start_server: Start, monkeypatch: pytest.MonkeyPatch, compression: Any
) -> None:
    served = await start_server(_registry())

    def broken(self: ConnectSession, request: Any) -> None:
        raise RuntimeError("a bug while dispatching")

    url = served.ws_url + query_url("counter", "/connect", key="bug")
    async with connect(url, subprotocols=subprotocols("bare"), compression=compression) as ws:
        assert isinstance(await recv_msg(ws, "bare"), Init)
        monkeypatch.setattr(ConnectSession, "_start_action", broken)
        await ws.send(encode_to_server(ActionRequest(0, "increment", [1, 0]), "bare"))
        error = await recv_msg(ws, "bare")
        assert isinstance(error, Error)
        assert (error.group, error.code, error.action_id) == ("core", "internal_error", None)
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (1011, "core.internal_error")
