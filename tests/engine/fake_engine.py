"""A scripted stand-in for the engine's envoy endpoint, on a real loopback socket.

For faults the real engine cannot be made to produce on demand (a malformed frame, a
replayed command, an event acknowledged late, a refusal). It answers ``GET /metadata``
and ``GET /runner-configs`` like the engine and hands each envoy WebSocket to the test,
which then plays the engine's side frame by frame.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from pyrivet.engine._protocol import decode_to_rivet, encode_to_envoy
from pyrivet.engine._schema import Tagged

WAIT = 10.0


class FakeConn:
    """One envoy connection, driven by the test."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.path = ws.request.path if ws.request is not None else ""
        self.done = asyncio.Event()

    async def recv(self) -> Tagged:
        frame = await asyncio.wait_for(self.ws.recv(), WAIT)
        assert isinstance(frame, bytes)
        return decode_to_rivet(frame)

    async def recv_tag(self, tag: str) -> Any:
        """The value of the next frame with ``tag`` (Pongs and others are skipped)."""
        while True:
            message = await self.recv()
            if message.tag == tag:
                return message.val

    async def send(self, message: Tagged) -> None:
        await self.ws.send(encode_to_envoy(message))

    async def init(self, *, read_metadata: bool = True) -> None:
        """Read the envoy's Metadata (unless the test did) and answer Init."""
        if read_metadata:
            assert (await self.recv()).tag == "ToRivetMetadata"
        metadata = {
            "envoy_lost_threshold": 15_000,
            "actor_stop_threshold": 60_000,
            "max_response_payload_size": 1 << 20,
        }
        await self.send(Tagged("ToEnvoyInit", {"metadata": metadata}))


class FakeEngine:
    def __init__(self, protocol_version: int = 8) -> None:
        self.protocol_version = protocol_version
        self.connections: asyncio.Queue[FakeConn] = asyncio.Queue()
        self.endpoint = ""

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.startswith("/envoys/connect"):
            return None
        if request.path.startswith("/metadata"):
            body: Any = {"version": "9.9.9", "envoy_protocol_version": self.protocol_version}
        elif request.path.startswith("/runner-configs"):
            body = {"runner_configs": {"fake": {}}}
        else:
            return connection.respond(404, "not found\n")
        return connection.respond(200, json.dumps(body))

    async def _handler(self, ws: ServerConnection) -> None:
        conn = FakeConn(ws)
        await self.connections.put(conn)
        await ws.wait_closed()
        conn.done.set()

    async def next(self) -> FakeConn:
        return await asyncio.wait_for(self.connections.get(), WAIT)


@asynccontextmanager
async def fake_engine(protocol_version: int = 8) -> AsyncIterator[FakeEngine]:
    fake = FakeEngine(protocol_version)
    async with serve(fake._handler, "127.0.0.1", 0, process_request=fake._http) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        fake.endpoint = f"http://127.0.0.1:{port}"
        yield fake


def checkpoint(actor_id: str, generation: int, index: int) -> dict[str, Any]:
    return {"actor_id": actor_id, "generation": generation, "index": index}


def start_command(actor_id: str, index: int, generation: int = 0) -> dict[str, Any]:
    config = {"name": "counter", "key": "k", "create_ts": 1, "input": None}
    inner = Tagged(
        "CommandStartActor",
        {"config": config, "hibernating_requests": [], "preloaded_kv": None},
    )
    return {"checkpoint": checkpoint(actor_id, generation, index), "inner": inner}


def stop_command(actor_id: str, index: int, reason: str, generation: int = 0) -> dict[str, Any]:
    inner = Tagged("CommandStopActor", {"reason": reason})
    return {"checkpoint": checkpoint(actor_id, generation, index), "inner": inner}
