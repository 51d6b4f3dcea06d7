"""The client floor of the WebSocket action: a server that answers each call with canned frames.

    python bench/canned_floor.py --port 6441 --data-dir /tmp/canned   # until SIGTERM/SIGINT

``pyrivet serve counter_app:registry`` (this folder's counter) behind `CannedReplies`,
an ASGI middleware: HTTP requests, the WebSocket handshake, `Init` and subscriptions
go to pyrivet as usual, but every ``increment``/``getCount`` `ActionRequest` read on a
WebSocket is answered by the middleware itself with the frames pyrivet sends for that
call (the ``newCount`` `Event` then the `ActionResponse` with the request's id, in the
connection's encoding, written together in one ``write`` as `pyrivet serve` does);
the actor never sees it. The frames for the next expected request (id + 1, count + 1)
are encoded ahead, after the previous reply left, so a call costs the server about
what the echo floor costs (one frame read, one write) and a client's latency here is
the network, uvicorn and *the client's own work per call* (its encoding, action-id
bookkeeping, event dispatch, promises), without pyrivet's server path.

Served by uvicorn with `pyrivet serve`'s settings (`BatchingWebSocketProtocol`, the
same ping settings, no compression). The counter's state does not change on a canned
call: the canned count starts at 0 per connection. Not for anything but measuring.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

from counter_app import registry  # this folder is sys.path[0] as a script
from pyrivet._protocol.messages import (
    ActionRequest,
    ActionResponse,
    Encoding,
    Event,
    InvalidMessageError,
    decode_to_server,
    encode_to_client,
    encode_to_server,
    parse_encoding,
)
from pyrivet.cli.serve_command import run_loop
from pyrivet.server._uvicorn_ws import DIRECT_EXTENSION, MORE_KEY, BatchingWebSocketProtocol
from pyrivet.server.app import create_app
from pyrivet.server.serve import PyrivetServer
from pyrivet.server.ws_connect import ENCODING_SUBPROTOCOL

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Frame = bytes | str

WS_PING_INTERVAL = 20.0
WS_PING_TIMEOUT = 20.0


class CannedCounter:
    """The frames ``counter_app``'s actor sends for each call on one connection.

    `answer` takes a request frame and returns the frames to send back (the
    ``newCount`` event and the reply for ``increment(n)``, the reply alone for
    ``getCount``), or None for a frame that is not such a call (the caller passes it
    on). A frame equal to the one the client would send next (the next id, ``[1]``)
    is answered from frames encoded ahead by `prepare_next`; any other is decoded.
    Pure: no I/O; runs in the connection's reading task.
    """

    def __init__(self, encoding: Encoding) -> None:
        self.encoding = encoding
        self.count = 0
        #: The id of the last call answered (-1: none yet).
        self.last_id = -1
        self._expected: Frame | None = None
        self._ahead: list[Frame] = []

    def answer(self, data: Frame) -> list[Frame] | None:
        if data == self._expected:
            self.count += 1
            self.last_id += 1
            self._expected = None
            return self._ahead
        try:
            msg = decode_to_server(data, self.encoding)
        except InvalidMessageError:
            return None
        if not isinstance(msg, ActionRequest):
            return None
        if msg.name == "getCount":
            self.last_id = msg.id
            return [self._wire(ActionResponse(id=msg.id, output=self.count))]
        if msg.name != "increment":
            return None
        self.count += int(msg.args[0]) if msg.args else 1
        self.last_id = msg.id
        self._expected = None
        return self._frames(msg.id, self.count)

    def prepare_next(self) -> None:
        """Encode the frames of ``increment(1)`` with the id after `last_id` ahead."""
        request = ActionRequest(id=self.last_id + 1, name="increment", args=[1])
        expected = encode_to_server(request, self.encoding)
        self._expected = expected.decode() if self.encoding == "json" else expected
        self._ahead = self._frames(self.last_id + 1, self.count + 1)

    def _frames(self, action_id: int, count: int) -> list[Frame]:
        event = Event(name="newCount", args=[count])
        return [self._wire(event), self._wire(ActionResponse(id=action_id, output=count))]

    def _wire(self, msg: Event | ActionResponse) -> Frame:
        """A frame as sent: json frames are text frames."""
        data = encode_to_client(msg, self.encoding)
        return data.decode() if self.encoding == "json" else data


def _encoding(scope: Scope) -> Encoding:
    for protocol in scope.get("subprotocols") or []:
        if protocol.startswith(ENCODING_SUBPROTOCOL):
            return parse_encoding(protocol[len(ENCODING_SUBPROTOCOL) :])
    return parse_encoding(None)


class CannedReplies:
    """ASGI middleware: `CannedCounter` answers calls on WebSockets, the rest goes to ``app``.

    The wrapped app is given the scope without `DIRECT_EXTENSION`, so that every frame
    it would read comes through ``receive``, where calls are taken out. Errors of the
    app propagate as they would without the middleware.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        extensions = dict(scope.get("extensions") or {})
        extensions.pop(DIRECT_EXTENSION, None)
        canned = CannedCounter(_encoding(scope))

        async def canned_receive() -> Message:
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    return message
                data = message.get("bytes")
                if data is None:
                    data = message.get("text") or ""
                frames = canned.answer(data)
                if frames is None:
                    return message
                for frame in frames[:-1]:
                    await send(_send_message(frame, more=True))
                await send(_send_message(frames[-1], more=False))
                canned.prepare_next()

        await self.app({**scope, "extensions": extensions}, canned_receive, send)


def _send_message(frame: Frame, *, more: bool) -> Message:
    message: Message = {"type": "websocket.send"}
    message["bytes" if isinstance(frame, bytes) else "text"] = frame
    if more:
        message[MORE_KEY] = True
    return message


def _started(server: PyrivetServer) -> None:
    print(f"canned_floor: serving on http://127.0.0.1:{server.port}", file=sys.stderr, flush=True)


async def serve(host: str, port: int, data_dir: str, log_level: str) -> None:
    runtime = registry.runtime(data_dir=data_dir)
    await runtime.start()
    try:
        config = uvicorn.Config(
            CannedReplies(create_app(runtime, inspector_token=None)),
            host=host,
            port=port,
            log_level=log_level,
            lifespan="off",
            ws=BatchingWebSocketProtocol,
            ws_ping_interval=WS_PING_INTERVAL,
            ws_ping_timeout=WS_PING_TIMEOUT,
            ws_per_message_deflate=False,
        )
        await PyrivetServer(config, on_started=_started).serve()
    finally:
        await runtime.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6441)
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="pyrivet-canned-")
    run_loop(serve(args.host, args.port, data_dir, args.log_level))


if __name__ == "__main__":
    main()
