"""A chat room: messages in the actor's own SQL database, typing indicators as events.

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

#: The room keeps this many messages; older ones are deleted.
HISTORY = 200
MAX_TEXT = 2000

chat = actor(
    "chat",
    # The history lives in the room's SQL database (c.db): each message is committed
    # with the unit of work that posted it, before the reply, and kept across sleeps and
    # restarts. ("id" numbers messages so that clients can merge without doubles.)
    options=ActorOptions(sleep_timeout=60),
)


@chat.on_migrate
async def migrate(c: Any, db: Any) -> None:
    """Every start, before the other hooks: the schema, created once."""
    await db.execute(
        """
        CREATE TABLE IF NOT EXISTS messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            author TEXT NOT NULL,
            text TEXT NOT NULL,
            at REAL NOT NULL
        )
        """
    )


@chat.action
async def post(c: Any, author: str, text: str) -> dict[str, Any]:
    """Append a message and broadcast it to everyone in the room; returns it."""
    author, text = author.strip(), text.strip()
    if not author or not text:
        raise UserError("a message needs an author and some text", code="empty_message")
    if len(text) > MAX_TEXT:
        raise UserError(f"messages are at most {MAX_TEXT} characters", code="too_long")
    async with c.db.transaction():  # the insert and the trim, all or nothing
        rows = await c.db.execute(
            "INSERT INTO messages (author, text, at) VALUES (?, ?, ?) "
            "RETURNING id, author, text, at",
            author,
            text,
            c.clock.now(),
        )
        await c.db.execute(
            "DELETE FROM messages WHERE id <= (SELECT MAX(id) FROM messages) - ?", HISTORY
        )
    message = dict(rows[0])
    # Released once the message is durable (strict mode): nobody sees a message that a
    # crash could take back.
    c.broadcast("message", message)
    return message


@chat.action
async def history(c: Any) -> list[dict[str, Any]]:
    """The room's messages, oldest first. Clients call it on every (re)connect."""
    return list(await c.db.execute("SELECT id, author, text, at FROM messages ORDER BY id"))


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
