"""What the actions in flight on a connection see when the server closes it because of
one bad message: the bad one gets its error, the others their own replies (pyrivet's
server answers them first) or, from a server that does not, `ConnectionLostError`
saying they may have run; never the bad message's error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pyrivet._protocol.messages import Error
from pyrivet.client import Backoff, Client, ConnectionLostError
from pyrivet.errors import ActorError
from pyrivet.server import PyrivetApp

from .fake_gateway import FakeGateway
from .server_support import ServerHandle
from .waiting import until

ENCODINGS = ["json", "cbor", "bare"]
#: Above the server's default incoming limit (64 KiB) once encoded.
OVERSIZE = "x" * 70_000


@pytest.fixture(params=ENCODINGS)
def encoding(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def server_refused_a_frame(server: ServerHandle) -> bool:
    """Whether a connect socket of ``server`` stopped reading on a bad frame (and now
    waits for its in-flight actions before closing)."""
    app: PyrivetApp = server._server.config.app
    state = app._state
    assert state is not None
    return any(session._failure is not None for session in state.sockets)  # type: ignore[attr-defined]


async def test_an_oversize_call_fails_alone_and_in_flight_calls_get_their_replies(
    server: ServerHandle, encoding: str
) -> None:
    async with Client(
        server.url,
        encoding=encoding,  # type: ignore[arg-type]
        backoff=Backoff(initial=0.05, maximum=0.2, jitter=0.0),
    ) as client:
        room = client.get_or_create("counter", ["oversize"])
        async with room.connect() as conn:
            held = asyncio.ensure_future(conn.wait())
            # Frames are read in order: once this replies, `wait` runs on the server.
            assert await conn.increment(1) == 1
            oversize = asyncio.ensure_future(conn.echo(OVERSIZE))
            await until(lambda: server_refused_a_frame(server))
            assert not held.done()
            server.gate.set()
            assert await asyncio.wait_for(held, 10) == "waited"
            with pytest.raises(ActorError) as caught:
                await asyncio.wait_for(oversize, 10)
            assert (caught.value.group, caught.value.code) == ("message", "incoming_too_long")
            assert not isinstance(caught.value, ConnectionLostError)
            # The connection comes back by itself; nothing the big frame asked ran.
            assert await asyncio.wait_for(conn.increment(1), 10) == 2


@pytest.fixture
async def fake_client(gateway: FakeGateway, encoding: str) -> AsyncIterator[Client]:
    async with Client(
        gateway.url,
        encoding=encoding,  # type: ignore[arg-type]
        metadata_lookup=False,
        backoff=Backoff(initial=0.05, maximum=0.2, jitter=0.0),
    ) as client:
        yield client


async def test_a_connection_error_fails_the_other_calls_as_lost(
    gateway: FakeGateway, fake_client: Client
) -> None:
    async with fake_client.get("counter", "a").connect() as conn:
        first = asyncio.ensure_future(conn.hang())
        second = asyncio.ensure_future(conn.hang())
        fake = await gateway.wait_conns(1)
        await until(lambda: len(fake.received) >= 2)
        await fake.send(
            Error(
                "message",
                "incoming_too_long",
                "a message is 70000 bytes, above the incoming message limit",
                {"limit": 65536, "size": 70000},
            )
        )
        for future in (first, second):
            with pytest.raises(ConnectionLostError) as caught:
                await asyncio.wait_for(future, 10)
            message = caught.value.message
            assert "may or may not have run" in message
            assert "message/incoming_too_long" in message
            assert caught.value.metadata == {"connection_error": "message.incoming_too_long"}


async def test_a_close_reason_naming_an_error_fails_in_flight_calls_as_lost(
    gateway: FakeGateway, fake_client: Client
) -> None:
    async with fake_client.get("counter", "a").connect() as conn:
        pending = asyncio.ensure_future(conn.hang())
        fake = await gateway.wait_conns(1)
        await until(lambda: len(fake.received) >= 1)
        await fake.ws.close(1011, "message.incoming_too_long")
        with pytest.raises(ConnectionLostError) as caught:
            await asyncio.wait_for(pending, 10)
        assert "may or may not have run" in caught.value.message
        assert caught.value.metadata == {
            "close_code": 1011,
            "close_reason": "message.incoming_too_long",
        }
