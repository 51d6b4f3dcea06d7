"""`HttpTransport`'s HTTP exchanges (aiohttp underneath) against raw loopback sockets:
keep-alive, what is sent, and how broken servers surface (`NetworkError`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from pyrivet._protocol.messages import HttpActionResponse, encode_http
from pyrivet._protocol.query import ActorQuery
from pyrivet.client import NetworkError
from pyrivet.client._http import USER_AGENT, HttpTransport

from .waiting import until

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
BY_ID = ActorQuery("get_for_id", "counter", actor_id="a1")
OK_BODY = encode_http(HttpActionResponse(7), "json")
OK = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(OK_BODY), OK_BODY)


class RawServer:
    """A loopback TCP server running ``handler`` per connection; counts connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bool:
        """Read one request (head + content-length body); False at EOF."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return False
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        self.requests.append(head + await reader.readexactly(length))
        return True


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[RawServer]]]:
    servers: list[RawServer] = []

    async def start(handler: Handler) -> RawServer:
        raw = RawServer(handler)
        raw.server = await asyncio.start_server(raw._serve, "127.0.0.1", 0)
        raw.port = raw.server.sockets[0].getsockname()[1]
        servers.append(raw)
        return raw

    yield start
    for raw in servers:
        assert raw.server is not None
        raw.server.close()


def transport_for(port: int, *, timeout: float = 10.0, **headers: str) -> HttpTransport:
    return HttpTransport(
        f"http://127.0.0.1:{port}",
        encoding="json",
        metadata_lookup=False,
        timeout=timeout,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


def live_idle_connections(transport: HttpTransport) -> int:
    """Idle keep-alive connections aiohttp still holds open (its connector's pool;
    no public API tells)."""
    assert transport._session is not None
    connector = transport._session.connector
    assert isinstance(connector, aiohttp.BaseConnector)
    return sum(
        1 for conns in connector._conns.values() for proto, _ in conns if proto.is_connected()
    )


async def test_keep_alive_reuses_one_connection_and_reads_split_responses(
    serve: Callable[[Handler], Awaitable[RawServer]],
) -> None:
    response = OK.replace(b"200 OK\r\n", b"200 OK\r\nX-Rivet-Actor: a1\r\nVary: a\r\nvary: b\r\n")

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await raw.read_request(reader):
            for i in range(len(response)):  # one byte per write: every split point
                writer.write(response[i : i + 1])
                await writer.drain()

    raw = await serve(handler)
    transport = transport_for(raw.port)
    try:
        for args in ([1], [2, 3]):
            assert await transport.call(BY_ID, None, "inc", args, None) == ("a1", 7)
        fetched = await transport.fetch(BY_ID, None, "/x?y=1", method="POST", body=b"raw")
        assert (fetched.status, fetched.headers["vary"]) == (200, "a, b")
    finally:
        await transport.aclose()
    assert raw.connections == 1
    first = raw.requests[0].lower()
    assert raw.requests[0].startswith(b"POST /gateway/a1/action/inc HTTP/1.1\r\n")
    assert f"user-agent: {USER_AGENT}\r\n".encode() in first
    assert b"x-rivet-encoding: json\r\n" in first and first.endswith(b'{"args":[1]}')
    raw_fetch = raw.requests[2]
    assert raw_fetch.startswith(b"POST /gateway/a1/request/x?y=1 HTTP/1.1\r\n")
    assert b"content-type" not in raw_fetch.lower()  # none given, none added
    assert raw_fetch.endswith(b"\r\n\r\nraw")


async def test_the_callers_user_agent_replaces_ours(
    serve: Callable[[Handler], Awaitable[RawServer]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await raw.read_request(reader):
            writer.write(OK)

    raw = await serve(handler)
    transport = transport_for(raw.port, User_Agent="mine/1")
    try:
        await transport.call(BY_ID, None, "inc", [], None)
    finally:
        await transport.aclose()
    assert raw.requests[0].lower().count(b"user-agent:") == 1
    assert b"User-Agent: mine/1\r\n" in raw.requests[0]


async def test_a_connection_the_server_closed_is_not_reused(
    serve: Callable[[Handler], Awaitable[RawServer]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read_request(reader)
        writer.write(OK)
        await writer.drain()
        # Then close while the client keeps the connection idle.

    raw = await serve(handler)
    transport = transport_for(raw.port)
    try:
        assert await transport.call(BY_ID, None, "inc", [], None) == ("a1", 7)
        await until(lambda: live_idle_connections(transport) == 0)  # it saw the FIN
        assert await transport.call(BY_ID, None, "inc", [], None) == ("a1", 7)
    finally:
        await transport.aclose()
    assert raw.connections == 2


async def test_connection_close_responses_close_the_connection(
    serve: Callable[[Handler], Awaitable[RawServer]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read_request(reader)
        writer.write(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx")
        await writer.drain()
        await reader.read()  # the client closes it

    raw = await serve(handler)
    transport = transport_for(raw.port)
    try:
        for _ in range(2):
            response = await transport.fetch(BY_ID, None, "/")
            assert (response.status, response.content) == (404, b"x")
    finally:
        await transport.aclose()
    assert raw.connections == 2


async def test_redirects_are_returned_not_followed(
    serve: Callable[[Handler], Awaitable[RawServer]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await raw.read_request(reader):
            writer.write(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")

    raw = await serve(handler)
    transport = transport_for(raw.port)
    try:
        response = await transport.fetch(BY_ID, None, "/old")
    finally:
        await transport.aclose()
    assert (response.status, response.headers["location"]) == (302, "/elsewhere")
    assert len(raw.requests) == 1


async def test_broken_servers_raise_network_error(
    serve: Callable[[Handler], Awaitable[RawServer]],
) -> None:
    replies = [b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", None]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read_request(reader)
        reply = replies.pop(0)
        if reply is None:  # never answers
            await reader.read()
            return
        writer.write(reply)
        await writer.drain()

    raw = await serve(handler)
    transport = transport_for(raw.port, timeout=0.2)
    try:
        with pytest.raises(NetworkError, match=r"cannot reach http://127\.0\.0\.1"):
            await transport.call(BY_ID, None, "inc", [], None)
        with pytest.raises(NetworkError, match=r"cannot reach http://127\.0\.0\.1"):
            await transport.call(BY_ID, None, "inc", [], None)
        with pytest.raises(NetworkError, match="timed out"):
            await transport.call(BY_ID, None, "inc", [], None)
    finally:
        await transport.aclose()
    assert raw.connections == 3
    with pytest.raises(RuntimeError, match="closed"):
        await transport.call(BY_ID, None, "inc", [], None)


async def test_refused_connection_raises_network_error(
    serve: Callable[[Handler], Awaitable[RawServer]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        return

    raw = await serve(handler)
    assert raw.server is not None
    raw.server.close()
    await raw.server.wait_closed()
    transport = transport_for(raw.port)
    try:
        with pytest.raises(NetworkError, match="cannot reach"):
            await transport.call(BY_ID, None, "inc", [], None)
    finally:
        await transport.aclose()


async def test_closing_a_transport_that_never_sent_anything() -> None:
    transport = transport_for(1)
    await transport.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await transport.call(BY_ID, None, "inc", [], None)
