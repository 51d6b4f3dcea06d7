"""Live cursors over hibernating connections: a room that sleeps while its clients stay.

``python app.py`` serves the room on a free port and runs a short demo with two Python
clients over the network (it takes a few seconds: it waits for the room to fall
asleep); ``pyrivet serve app:registry`` serves it to real clients (connect with
``params={"name": ...}``, call ``move(x, y)``, listen to ``cursor`` and ``left``).

Each room is one ``cursors`` actor. A client's cursor is its connection's state
(``conn.state``: a name and the last position, a few bytes), so the actor itself keeps
nothing. Every move is broadcast as a ``cursor`` event; a client that leaves takes its
cursor with it (``on_disconnect`` broadcasts ``left``).

When nobody moves for ``SLEEP_TIMEOUT`` seconds the actor goes to sleep although its
connections are open: they hibernate (the server keeps the sockets, the actor holds no
memory). The next move wakes the actor with every connection, its state and its
subscriptions, and the other clients see the move as if nothing happened. Errors: a
bad name refuses the connection (``bad_name``); a connection without params only
watches; a move that is not two numbers in the room, or from a watcher or a plain HTTP
call, is refused (``bad_move``, ``not_joined``) and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import tempfile
from collections.abc import AsyncIterator
from typing import Any

from pyrivet import ActorOptions, Client, Registry, Runtime, UserError, actor
from pyrivet.server.serve import PyrivetServer, serve

#: Seconds without any message before the room sleeps (its connections stay open).
SLEEP_TIMEOUT = 2.0
#: Positions are in 0..SIZE on both axes (pixels of a page, say).
SIZE = 10_000


def new_cursor(c: Any, params: Any) -> dict[str, Any]:
    """A connection's state: its name (None: a watcher), no position until the first move."""
    return {"name": params["name"] if params is not None else None, "x": None, "y": None}


cursors = actor(
    "cursors",
    create_conn_state=new_cursor,
    # hibernatable_connections is on by default: said here because it is the point.
    options=ActorOptions(sleep_timeout=SLEEP_TIMEOUT, hibernatable_connections=True),
)


@cursors.on_before_connect
def check_name(c: Any, params: Any) -> None:
    """Clients connect with ``params={"name": "..."}``; without params they only watch."""
    if params is None:
        return
    name = params.get("name") if isinstance(params, dict) else None
    if not isinstance(name, str) or not 1 <= len(name) <= 20:
        raise UserError("connect with params={'name': <1 to 20 characters>}", code="bad_name")


@cursors.on_disconnect
def left(c: Any, conn: Any) -> None:
    """The client left (also when it left while the room slept: run at the next wake)."""
    c.broadcast("left", conn.id)


def cursor_of(conn: Any) -> dict[str, Any]:
    return {"id": conn.id, **conn.state}


@cursors.action
def move(c: Any, x: float, y: float) -> None:
    """Put the caller's cursor at ``(x, y)`` and tell the room."""
    if c.conn is None or c.conn.state["name"] is None:
        raise UserError(
            "move over a connection: connect(params={'name': ...}) to the room",
            code="not_joined",
        )
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (x, y)
    ) or not (0 <= x <= SIZE and 0 <= y <= SIZE):
        raise UserError(f"move to two numbers between 0 and {SIZE}", code="bad_move")
    c.conn.state["x"], c.conn.state["y"] = x, y
    c.broadcast("cursor", cursor_of(c.conn))


@cursors.action
def where(c: Any) -> list[float] | None:
    """The caller's last position (None before its first move)."""
    if c.conn is None or c.conn.state["x"] is None:
        return None
    return [c.conn.state["x"], c.conn.state["y"]]


@cursors.action
def room(c: Any) -> list[dict[str, Any]]:
    """Every cursor that has moved: what a client that just joined draws first."""
    return [cursor_of(conn) for conn in c.conns.values() if conn.state["x"] is not None]


registry = Registry([cursors])


# -- a demo: two clients over the network, and a room that sleeps between moves --------


async def demo(url: str, is_awake: Any) -> None:
    """Ada moves, Bob sees it; the room sleeps with both connected; Ada's move wakes it."""
    async with Client(url) as client:
        handle = client.get_or_create("cursors", ["demo"])
        async with (
            handle.connect(params={"name": "ada"}) as ada,
            handle.connect(params={"name": "bob"}) as bob,
            bob.events("cursor") as seen,
        ):
            # A round trip after subscribing: the server has the subscription (a
            # connection's messages are handled in order), and here is who is there.
            print("bob joins a room with", await bob.room())
            await ada.move(10, 20)
            print("bob sees", (await anext(seen))[1][0])
            actor_id = await handle.resolve()
            for _ in range(int(SLEEP_TIMEOUT * 20) + 50):  # at most SLEEP_TIMEOUT + 5 s
                if not is_awake(actor_id):
                    break
                await asyncio.sleep(0.1)
            print("room asleep:", not is_awake(actor_id), "- connections open:", ada.is_open)
            await ada.move(30, 40)  # wakes the room
            print("bob sees", (await anext(seen))[1][0])
            print("ada is at", await ada.where(), "- room awake:", is_awake(actor_id))


@contextlib.asynccontextmanager
async def serving(runtime: Runtime) -> AsyncIterator[str]:
    """Serve ``runtime`` on a free loopback port (in this process); yields its URL.

    The server stops when the block ends; the runtime is the caller's to close.
    """
    started: asyncio.Future[PyrivetServer] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(
            runtime,
            port=0,
            on_started=started.set_result,
            handle_signals=False,
            configure_logging=False,
            log_level="warning",
        )
    )
    server = await asyncio.wait_for(started, 30)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.should_exit = True
        await task


async def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        async with registry.runtime(data_dir=data_dir) as runtime, serving(runtime) as url:
            await demo(url, runtime.is_awake)


if __name__ == "__main__":
    asyncio.run(main())
