"""The live inspector: ``/gateway/{actor}/inspector/live``, a WebSocket of JSON frames.

Auth: the token as subprotocol ``bearer.<token>`` (what a browser can send; the socket
is accepted with subprotocol ``pyrivet-inspector``) or as ``Authorization: Bearer``.
A refused socket is closed before the handshake (HTTP 403).

Frames (server to client), each a JSON object with ``type``:

* ``init``: the summary of ``GET …/inspector/summary``;
* ``state`` ``{seq, state}``, ``connections`` ``{connections}``, ``queue`` ``{size}``,
  ``workflow`` ``{history}``: the latest value, sent when it changed;
* ``history`` ``{entries, gap}``: new history entries as they commit, without their
  states (``GET …/inspector/state-at`` has them; ``gap``: some were dropped for a slow
  reader, fetch ``GET …/inspector/history`` to fill it);
* ``events`` ``{events: [{name, args, to}], gap}``: events the actor emitted.

It never slows the actor: changes are coalesced and dropped for slow readers, see
``hubs.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

from .._asgi import Receive, RequestInfo, Send
from .._state import ServerState
from ..gateway import route_target
from ..routing import Route
from .auth import token_matches
from .call import Call
from .hubs import LiveSocket
from .routes import summary

__all__ = ["handle_live"]

_SUBPROTOCOL: Final = "pyrivet-inspector"
_BEARER: Final = "bearer."


def _authorized(state: ServerState, request: RequestInfo) -> tuple[bool, bool]:
    """(token accepted, the client offered our subprotocol)."""
    expected = state.options.inspector_token
    protocols = request.subprotocols()
    offered = _SUBPROTOCOL in protocols
    if not expected:
        return False, offered
    for proto in protocols:
        if proto.startswith(_BEARER) and token_matches(expected, proto[len(_BEARER) :]):
            return True, offered
    scheme, _, token = (request.header("authorization") or "").partition(" ")
    return scheme.lower() == "bearer" and token_matches(expected, token), offered


async def handle_live(
    state: ServerState, request: RequestInfo, route: Route, receive: Receive, send: Send
) -> None:
    """Serve one live inspector socket until the client leaves (see the module doc).

    Never raises: a refused token, an unknown actor or a bad target close the socket
    before the handshake; errors after it close it with 1011.
    """
    ok, offered = _authorized(state, request)
    if ok:
        try:
            target = route_target(route, request.query_string, max_input_size=state.max_incoming)
            actor = await state.directory.resolve(target)
        except Exception:
            ok = False
    if not ok:
        await send({"type": "websocket.close", "code": 1008})
        return
    first = await receive()
    if first["type"] != "websocket.connect":
        return
    accept: dict[str, Any] = {"type": "websocket.accept"}
    if offered:
        accept["subprotocol"] = _SUBPROTOCOL
    await send(accept)
    sock = LiveSocket(send)
    hubs = state.inspector_hubs
    hub = hubs.join(state.runtime, actor, sock)
    # The reader and the writer are this handler's: both end (cancelled) before it returns.
    writer = asyncio.ensure_future(sock.write())
    try:
        sock.offer([{"type": "init", **await summary(Call(state, actor, {}, None, ""))}])
        reader = asyncio.ensure_future(_read_until_closed(receive))
        await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    finally:
        hubs.leave(state.runtime, hub, sock)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer


async def _read_until_closed(receive: Receive) -> None:
    while (await receive())["type"] != "websocket.disconnect":
        pass
