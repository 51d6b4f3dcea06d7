"""`Http1Pool`: keep-alive HTTP/1.1 exchanges of small bodies, for the client's action calls.

Why not httpx here: on the action path httpx + httpcore cost ~1 ms of client CPU per
request on the benchmark VM, and with 64 callers the pool's bookkeeping (a liveness
probe of every idle connection, ``getpeername`` included, on every request) grew with
the number of connections. This pool keeps the idle connections in a list (last used
first), writes a request's head and body in one ``write`` and parses the response with
httptools (the parser uvicorn uses). An idle connection the server closed is known
from ``connection_lost`` before it is picked again, so nothing is probed per request.

`HttpTransport` uses it for plain ``http://`` endpoints only; TLS, and anything it
does not carry (see `Http1Pool.can_send`), goes through httpx.

Everything runs on the event loop of the caller; a pool belongs to one loop. Errors:
`OSError` (``ConnectionError`` among them: refused, reset, closed before the
response ended), `TimeoutError`, and `Http1Error` for a response it cannot parse. A
failed or cancelled exchange closes its connection; a request is never resent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Final

import httptools

__all__ = ["Http1Error", "Http1Pool", "Http1Response"]

#: Idle connections kept open, at most.
MAX_IDLE: Final = 256
#: An idle connection is closed after this many seconds (below uvicorn's 5 s keep-alive,
#: so the server rarely closes one as it is being reused; Node's fetch uses 4 s too).
IDLE_EXPIRY: Final = 4.0


class Http1Error(ConnectionError):
    """The server's response is not valid HTTP/1.1."""


class Http1Response:
    """A complete response: status, headers (names in lower case), body."""

    __slots__ = ("content", "headers", "reason_phrase", "status_code")

    def __init__(
        self, status_code: int, reason_phrase: str, headers: dict[str, str], content: bytes
    ) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.headers = headers
        self.content = content

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


class _Connection(asyncio.Protocol):
    """One socket; at most one exchange at a time (`Http1Pool` hands it out alone)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Http1Response] | None = None
        self._reason = ""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(Http1Error(f"invalid HTTP response from the server: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError(f"the server closed the connection ({exc or 'EOF'})"))

    # -- httptools callbacks --

    def on_status(self, status: bytes) -> None:
        self._reason += status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        # httptools gathers a header split over several reads and calls this once.
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        old = self._headers.get(key)
        self._headers[key] = text if old is None else f"{old}, {text}"

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        response = Http1Response(
            parser.get_status_code(), self._reason, self._headers, b"".join(self._body)
        )
        if not parser.should_keep_alive():
            self.close()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    # -- used by the pool --

    def send(self, data: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Http1Response]:
        self._reason, self._headers, self._body = "", {}, []
        waiter = self._waiter = loop.create_future()
        assert self.transport is not None
        self.transport.write(data)
        return waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class Http1Pool:
    """Keep-alive connections to one ``host:port`` over plain TCP.

    Args:
        host, port: the server.
        headers: sent with every request (e.g. the user agent); names and values must
            pass `can_send`.
        timeout: seconds an exchange may take, connecting included.
        connect_timeout: seconds to open a connection.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        headers: Mapping[str, str],
        timeout: float,
        connect_timeout: float,
    ) -> None:
        self._host = host
        self._port = port
        host_header = host if ":" not in host else f"[{host}]"
        if port != 80:
            host_header += f":{port}"
        lines = [f"Host: {host_header}", *(f"{k}: {v}" for k, v in headers.items())]
        self._common = ("\r\n".join(lines) + "\r\n").encode("ascii")
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._idle: list[_Connection] = []
        self._closed = False

    @staticmethod
    def can_send(headers: Mapping[str, str]) -> bool:
        """Whether these headers fit a request here (ASCII, no line breaks)."""
        for name, value in headers.items():
            text = name + value
            if not text.isascii() or "\r" in text or "\n" in text or ":" in name:
                return False
        return True

    async def request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Http1Response:
        """Send one request and read its whole response.

        ``target`` is the path and query; ``headers`` must pass `can_send`.

        Raises:
            OSError: the connection failed (it is closed; the request may have reached
                the server).
            TimeoutError: no complete response within ``timeout`` (the connection is
                closed).
            Http1Error: the response is not valid HTTP/1.1.
        """
        if self._closed:
            raise RuntimeError("the HTTP pool is closed")
        head = [f"{method} {target} HTTP/1.1\r\n".encode("ascii"), self._common]
        head.extend(f"{k}: {v}\r\n".encode("ascii") for k, v in headers.items())
        head.append(b"content-length: %d\r\n\r\n" % len(body))
        data = b"".join(head) + body
        async with asyncio.timeout(self._timeout):
            conn = self._take() or await self._connect()
            try:
                response = await conn.send(data, asyncio.get_running_loop())
            except BaseException:
                conn.close()
                raise
        self._give_back(conn)
        return response

    def close(self) -> None:
        """Close the idle connections; later requests raise RuntimeError (an exchange
        in flight finishes, then closes its connection)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _take(self) -> _Connection | None:
        now = asyncio.get_running_loop().time()
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_EXPIRY:
                return conn
            conn.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self._connect_timeout):
            _, conn = await loop.create_connection(_Connection, self._host, self._port)
        return conn

    def _give_back(self, conn: _Connection) -> None:
        idle = self._idle
        now = asyncio.get_running_loop().time()
        # The least recently used is taken last: drop it here once it is dead or expired.
        if idle and (idle[0].closed or now - idle[0].idle_since >= IDLE_EXPIRY):
            idle.pop(0).close()
        if conn.closed or self._closed or len(idle) >= MAX_IDLE:
            conn.close()
            return
        conn.idle_since = now
        idle.append(conn)
