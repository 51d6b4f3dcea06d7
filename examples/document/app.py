"""A collaborative document: Yjs updates synced through one actor over a raw WebSocket.

Run it (from this folder): ``npm install && npm start`` (builds the page into dist/,
then runs ``pyrivet serve app:registry``) and open, in two windows,
http://127.0.0.1:6420/gateway/document/request/?rvt-method=getOrCreate&rvt-key=notes

Each document is one actor. Browsers edit a local Yjs document (the ``yjs`` npm
package) and send each change as a binary frame to
``/gateway/document/websocket/?rvt-key=…``; the actor merges it into its own copy
(``pycrdt``, the Rust Yjs port), keeps the merged document in its state, and relays the
frame to the document's other sockets. Because Yjs updates merge in any order and any
number of times, the protocol is small:

* on connect the actor sends the whole document as one update, and the browser sends
  its whole local document (so edits made while disconnected are merged);
* after that, every frame either way is one update.

The document is in the actor's state, so it survives sleep and restarts; a frame is
relayed only after the change it carries is durable.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text

from pyrivet import ActorOptions, Registry, actor
from pyrivet.server import Request, Response, WebSocket, WebSocketClosed

#: Close code for a frame that is not a Yjs update (1003: "unsupported data").
NOT_AN_UPDATE = 1003

document = actor(
    "document",
    # The whole document, encoded as one Yjs update ("" until the first edit).
    state={"update": b""},
    # Rebuilt on every wake: the decoded document and the open sockets.
    create_vars=lambda c: {"doc": None, "sockets": set()},
    options=ActorOptions(sleep_timeout=60),
)


def load(c: Any) -> Doc:
    """The document, decoded from the state once per wake."""
    if c.vars["doc"] is None:
        doc = Doc()
        if c.state["update"]:
            doc.apply_update(c.state["update"])
        c.vars["doc"] = doc
    return c.vars["doc"]  # type: ignore[no-any-return]


@document.on_websocket
async def on_websocket(c: Any, ws: WebSocket) -> None:
    """One browser: send it the document, then merge and relay what it sends."""
    doc = load(c)
    sockets: set[WebSocket] = c.vars["sockets"]
    sockets.add(ws)
    try:
        await ws.send(doc.get_update())
        async for frame in ws:
            if not isinstance(frame, bytes):
                await ws.close(NOT_AN_UPDATE, "send Yjs updates as binary frames")
                return
            try:
                doc.apply_update(frame)
            except ValueError:
                await ws.close(NOT_AN_UPDATE, "that frame is not a Yjs update")
                return
            c.state["update"] = doc.get_update()
            await c.save_state()  # durable before anyone else sees the change
            for other in list(sockets):
                if other is not ws:
                    with contextlib.suppress(WebSocketClosed):  # closed meanwhile: skip it
                        await other.send(frame)
    finally:
        sockets.discard(ws)


@document.action
def text(c: Any) -> str:
    """The document's text, for code that is not a Yjs client (and for tests)."""
    return str(load(c).get("content", type=Text))


# -- the page ------------------------------------------------------------------------

HERE = Path(__file__).resolve().parent


@document.on_request
def page(c: Any, request: Request) -> Response:
    """``/`` is the page, ``/app.js`` its bundle (built by ``npm run build``)."""
    if request.path in ("", "/"):
        return Response((HERE / "index.html").read_bytes(), content_type="text/html")
    if request.path == "/app.js":
        bundle = HERE / "dist" / "app.js"
        if not bundle.exists():
            return Response("app.js is not built: run `npm install && npm run build`", status=503)
        return Response(bundle.read_bytes(), content_type="text/javascript")
    return Response("not found", status=404)


registry = Registry([document])
