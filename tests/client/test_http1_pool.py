"""`Http1Pool`, the client's lean HTTP/1.1 path for action calls, against raw sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from pyrivet.client._http1 import Http1Error, Http1Pool

from .waiting import until

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


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
        except asyncio.IncompleteReadError:
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


def pool_for(raw: RawServer, timeout: float = 10.0) -> Http1Pool:
    return Http1Pool(
        "127.0.0.1", raw.port, headers={"user-agent": "t"}, timeout=timeout, connect_timeout=5.0
    )


async def test_keep_alive_reuses_one_connection_and_parses_split_responses(
    serve: Callable[[Handler], Awaitable[RawServer]],
) -> None:
    response = (
        b"HTTP/1.1 201 Created\r\nX-Rivet-Actor: abc\r\nVary: a\r\nvary: b\r\n"
        b"Content-Length: 5\r\n\r\nhello"
    )

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await raw.read_request(reader):
            for i in range(len(response)):  # one byte per write: every split point
                writer.write(response[i : i + 1])
                await writer.drain()

    raw = await serve(handler)
    pool = pool_for(raw)
    try:
        for body in (b"one", b"two!"):
            got = await pool.request("POST", "/a?b=c", {"x-y": "z"}, body)
            assert (got.status_code, got.reason_phrase, got.content) == (201, "Created", b"hello")
            assert got.headers["x-rivet-actor"] == "abc" and got.headers["vary"] == "a, b"
            assert got.is_success
    finally:
        pool.close()
    assert raw.connections == 1
    assert raw.requests[0].startswith(b"POST /a?b=c HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nuser-agent: t\r\nx-y: z\r\ncontent-length: 3\r\n\r\none" in raw.requests[0]
    assert raw.requests[1].endswith(b"content-length: 4\r\n\r\ntwo!")


async def test_a_connection_the_server_closed_is_not_reused(
    serve: Callable[[Handler], Awaitable[RawServer]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        # Then close while the client keeps the connection idle.

    raw = await serve(handler)
    pool = pool_for(raw)
    try:
        assert (await pool.request("POST", "/", {}, b"")).content == b"ok"
        await until(lambda: pool._idle[0].closed)  # the client saw the server's FIN
        assert (await pool.request("POST", "/", {}, b"")).content == b"ok"
    finally:
        pool.close()
    assert raw.connections == 2


async def test_connection_close_and_http_1_0_responses_close_the_connection(
    serve: Callable[[Handler], Awaitable[RawServer]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read_request(reader)
        writer.write(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx")
        await writer.drain()
        await reader.read()  # the client closes it

    raw = await serve(handler)
    pool = pool_for(raw)
    try:
        for _ in range(2):
            got = await pool.request("POST", "/", {}, b"")
            assert (got.status_code, got.is_success) == (404, False)
    finally:
        pool.close()
    assert raw.connections == 2


async def test_failures_raise_and_close_the_connection(
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
    pool = pool_for(raw, timeout=0.2)
    try:
        with pytest.raises(Http1Error, match="invalid HTTP response"):
            await pool.request("POST", "/", {}, b"")
        with pytest.raises(ConnectionError, match="closed the connection"):
            await pool.request("POST", "/", {}, b"")
        with pytest.raises(TimeoutError):
            await pool.request("POST", "/", {}, b"")
        assert pool._idle == []
    finally:
        pool.close()
    assert raw.connections == 3
    with pytest.raises(RuntimeError, match="closed"):
        await pool.request("POST", "/", {}, b"")


async def test_refused_connection_raises_oserror(
    serve: Callable[[Handler], Awaitable[RawServer]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        return

    raw = await serve(handler)
    assert raw.server is not None
    raw.server.close()
    await raw.server.wait_closed()
    pool = pool_for(raw)
    with pytest.raises(OSError):
        await pool.request("POST", "/", {}, b"")


def test_headers_it_cannot_carry_are_refused() -> None:
    assert Http1Pool.can_send({"x-rivet-encoding": "bare", "a": '{"u":"x"}'})
    assert not Http1Pool.can_send({"a": "é"})
    assert not Http1Pool.can_send({"a": "x\r\nInjected: 1"})
    assert not Http1Pool.can_send({"a:b": "x"})
