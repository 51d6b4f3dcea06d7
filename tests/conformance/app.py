"""The registry the JavaScript conformance scenarios (``js/scenarios.mjs``) run against.

Served by ``pyrivet serve app:registry`` from this directory (see ``test_js_client.py``).

* ``counter``: ``create_state`` keeps the creation input; ``increment`` broadcasts
  ``newCount``; ``fail`` raises a `UserError` with a code and metadata; ``hold``
  waits until ``release`` is called; ``nap`` puts it to sleep (``getNaps`` counts);
  ``getConnects`` counts the connections opened (``on_connect``).
* ``guarded``: ``on_before_connect`` rejects connections whose params lack the right
  token (``user/forbidden`` with metadata); ``whoami`` echoes the params.
* ``web``: raw ``on_request`` / ``on_websocket`` hooks.
* ``mailbox``: queues. Its run loop completes every ``tasks`` message with
  ``{"done": body}``; ``jobs`` (dict bodies) is only drained by ``pending``;
  ``closed`` refuses every publisher.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyrivet import Queue, Registry, UserError, actor
from pyrivet.server import Request, Response, WebSocket

counter = actor(
    "counter",
    create_state=lambda c, input: {"count": 0, "input": input},
    create_vars=lambda c: {"gate": asyncio.Event()},
)


@counter.action
def increment(c: Any, amount: int = 1) -> int:
    c.state["count"] += amount
    c.broadcast("newCount", c.state["count"])
    return int(c.state["count"])


@counter.action(name="getCount")
def get_count(c: Any) -> int:
    return int(c.state["count"])


@counter.action(name="getInput")
def get_input(c: Any) -> Any:
    return c.state["input"]


@counter.action
def echo(c: Any, *args: Any) -> list[Any]:
    return list(args)


@counter.action
def fail(c: Any, code: str, detail: Any) -> None:
    raise UserError(f"failed with {code}", code=code, metadata={"detail": detail})


@counter.action
async def hold(c: Any) -> str:
    await c.vars["gate"].wait()
    return "released"


@counter.action
def release(c: Any) -> None:
    c.vars["gate"].set()


@counter.action
def nap(c: Any) -> None:
    c.sleep()


@counter.on_sleep
def count_naps(c: Any) -> None:
    c.state["naps"] = c.state.get("naps", 0) + 1


@counter.on_connect
def count_connects(c: Any, conn: Any) -> None:
    c.state["connects"] = c.state.get("connects", 0) + 1


@counter.action(name="getConnects")
def get_connects(c: Any) -> int:
    return int(c.state.get("connects", 0))


@counter.action(name="getNaps")
def get_naps(c: Any) -> int:
    return int(c.state.get("naps", 0))


@counter.action(name="failPlain")
def fail_plain(c: Any) -> None:
    raise UserError("plain failure")


guarded = actor("guarded", state={"joined": 0})


@guarded.on_before_connect
def check_token(c: Any, params: Any) -> None:
    if not isinstance(params, dict) or params.get("token") != "secret":
        raise UserError("wrong token", code="forbidden", metadata={"hint": "token"})


@guarded.on_connect
def joined(c: Any, conn: Any) -> None:
    c.state["joined"] += 1


@guarded.action
def whoami(c: Any) -> Any:
    return {"user": c.conn.params.get("user"), "joined": c.state["joined"]}


web = actor("web", state={"hits": 0, "frames": 0})


@web.on_request
async def on_request(c: Any, request: Request) -> Response:
    if request.path == "/fail":
        raise UserError("teapot here", code="teapot", metadata={"short": True})
    c.state["hits"] += 1
    return Response.json(
        {
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "body": request.text(),
            "header": request.headers.get("x-custom"),
            "hits": c.state["hits"],
        },
        status=201 if request.method == "POST" else 200,
        headers={"x-from-actor": "yes"},
    )


@web.on_websocket
async def on_websocket(c: Any, ws: WebSocket) -> None:
    await ws.send(f"hello {ws.request.path}?{ws.request.query_string}")
    async for message in ws:
        c.state["frames"] += 1
        if isinstance(message, bytes):
            await ws.send(message[::-1])
        else:
            await ws.send(f"echo {message} #{c.state['frames']}")


@web.action
def stats(c: Any) -> dict[str, int]:
    return dict(c.state)


mailbox = actor(
    "mailbox",
    queues={
        "tasks": Queue(),
        "jobs": Queue(dict),
        "closed": Queue(can_publish=lambda c: False),
    },
)


@mailbox.run
async def run_mailbox(c: Any) -> None:
    async for message in c.queue.iter(["tasks"], completable=True):
        await message.complete({"done": message.body})


@mailbox.action
def pending(c: Any) -> list[Any]:
    return [m.body for m in c.queue.try_next_batch(["jobs"], count=100)]


registry = Registry([counter, guarded, web, mailbox])
