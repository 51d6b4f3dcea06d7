"""A chat room: messages kept in the actor's state, typing indicators as events.

Run it (from this folder): ``npm install && npm start`` (builds the React page into
dist/, then runs ``pyrivet serve app:registry``) and open
http://127.0.0.1:6420/gateway/chat/request/?rvt-method=getOrCreate&rvt-key=lobby

Each room is one actor, keyed by its name. The same actor serves the page
(``on_request``), so one process and one origin serve everything: the browser needs no
CORS and reconnects to the same address after ``kill -HUP`` restarts the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyrivet import ActorOptions, Registry, UserError, actor
from pyrivet.server import Request, Response

#: The room keeps this many messages; older ones are dropped.
HISTORY = 200
MAX_TEXT = 2000

chat = actor(
    "chat",
    # The history lives in the state: committed before each reply, kept across sleeps
    # and restarts. ("id" numbers messages so that clients can merge without doubles.)
    state={"messages": [], "next_id": 1},
    options=ActorOptions(sleep_timeout=60),
)


@chat.action
def post(c: Any, author: str, text: str) -> dict[str, Any]:
    """Append a message and broadcast it to everyone in the room; returns it."""
    author, text = author.strip(), text.strip()
    if not author or not text:
        raise UserError("a message needs an author and some text", code="empty_message")
    if len(text) > MAX_TEXT:
        raise UserError(f"messages are at most {MAX_TEXT} characters", code="too_long")
    message = {"id": c.state["next_id"], "author": author, "text": text, "at": c.clock.now()}
    c.state["next_id"] += 1
    c.state["messages"] = [*c.state["messages"], message][-HISTORY:]
    # Released once the message is durable (strict mode): nobody sees a message that a
    # crash could take back.
    c.broadcast("message", message)
    return message


@chat.action
def history(c: Any) -> list[dict[str, Any]]:
    """The room's messages, oldest first. Clients call it on every (re)connect."""
    return list(c.state["messages"])


@chat.action
def typing(c: Any, author: str, is_typing: bool) -> None:
    """Tell the room that ``author`` started or stopped typing.

    An event only: nothing is stored, and a client that is not connected misses it,
    which is what a typing indicator wants.
    """
    c.broadcast("typing", author, is_typing)


# -- the page ------------------------------------------------------------------------

DIST = Path(__file__).resolve().parent / "dist"
PAGE = Path(__file__).resolve().parent / "index.html"


@chat.on_request
def page(c: Any, request: Request) -> Response:
    """``/`` is the page, ``/app.js`` its bundle (built by ``npm run build``)."""
    if request.path in ("", "/"):
        return Response(PAGE.read_bytes(), content_type="text/html; charset=utf-8")
    if request.path == "/app.js":
        bundle = DIST / "app.js"
        if not bundle.exists():
            return Response("app.js is not built: run `npm install && npm run build`", status=503)
        return Response(bundle.read_bytes(), content_type="text/javascript; charset=utf-8")
    return Response("not found", status=404)


registry = Registry([chat])
