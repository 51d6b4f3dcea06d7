"""A multiplayer game loop: a ``run`` task ticks the world, input arrives over connections.

``python app.py`` plays a short match between two bots (in-process) and prints the
scores; ``pyrivet serve app:registry`` serves the game to real clients (connect with
``params={"name": ...}`` to play, without params to watch; call ``steer(dx, dy)``;
listen to ``snapshot`` events).

Each match is one actor. Players move on a ``SIZE`` x ``SIZE`` grid that wraps around;
the one who reaches the coin scores and a new coin appears. Every ``TICK`` seconds the
``run`` loop moves everyone one cell in the direction they last steered and broadcasts
a snapshot of the world.

What is kept where: positions and the coin change ten times a second and mean nothing
after the match, so they live in ``c.vars`` (memory, dropped on sleep); the scores are
the state (durable, kept across sleeps and restarts). Time is the runtime's clock
(``c.clock``), so tests step the loop with a mock clock. When nobody has played for
``IDLE_TICKS`` ticks the actor goes to sleep; the next player to connect wakes it.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from pyrivet import ActorOptions, Client, Registry, UserError, actor

SIZE = 16
#: Seconds between two steps of the world.
TICK = 0.1
#: Ticks without any player before the match goes to sleep.
IDLE_TICKS = 50
DIRECTIONS = {(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)}


def new_world(c: Any) -> dict[str, Any]:
    rng = random.Random(c.actor_id)  # a fixed layout per match: easy to follow in tests
    return {"players": {}, "coin": (rng.randrange(SIZE), rng.randrange(SIZE)), "rng": rng}


game = actor(
    "game",
    state={"scores": {}},
    create_vars=new_world,
    options=ActorOptions(sleep_timeout=10),
)


@game.on_before_connect
def check_name(c: Any, params: Any) -> None:
    """Players connect with ``params={"name": "..."}``; without params you watch."""
    if params is None:
        return
    name = params.get("name") if isinstance(params, dict) else None
    if not isinstance(name, str) or not 1 <= len(name) <= 20:
        raise UserError("connect with params={'name': <1 to 20 characters>}", code="bad_name")


@game.on_connect
def join(c: Any, conn: Any) -> None:
    """A player appears at a random cell, standing still (a watcher does not)."""
    if conn.params is None:
        return
    rng = c.vars["rng"]
    c.vars["players"][conn.id] = {
        "name": conn.params["name"],
        "x": rng.randrange(SIZE),
        "y": rng.randrange(SIZE),
        "dx": 0,
        "dy": 0,
    }


@game.on_disconnect
def leave(c: Any, conn: Any) -> None:
    c.vars["players"].pop(conn.id, None)


@game.action
def steer(c: Any, dx: int, dy: int) -> None:
    """Input: the direction this connection's player moves in from the next tick on."""
    player = c.vars["players"].get(c.conn.id) if c.conn is not None else None
    if player is None:
        raise UserError("steer over a connection: connect() to join the game", code="not_playing")
    if (dx, dy) not in DIRECTIONS:
        raise UserError("steer with one step: dx, dy in -1, 0, 1, not both", code="bad_move")
    player["dx"], player["dy"] = dx, dy


@game.action
def scores(c: Any) -> dict[str, int]:
    return dict(c.state["scores"])


def step(c: Any) -> None:
    """One tick: move everyone, score the coin, broadcast the world."""
    world = c.vars
    for player in world["players"].values():
        player["x"] = (player["x"] + player["dx"]) % SIZE
        player["y"] = (player["y"] + player["dy"]) % SIZE
        if (player["x"], player["y"]) == world["coin"]:
            scores = c.state["scores"]
            scores[player["name"]] = scores.get(player["name"], 0) + 1
            world["coin"] = (world["rng"].randrange(SIZE), world["rng"].randrange(SIZE))
    c.broadcast(
        "snapshot",
        {
            "coin": list(world["coin"]),
            "players": {p["name"]: [p["x"], p["y"]] for p in world["players"].values()},
            "scores": c.state["scores"],
        },
    )


@game.run
async def run(c: Any) -> None:
    """The game loop: a tick every ``TICK`` seconds until shutdown or a long empty spell."""
    idle = 0
    while not c.aborted:
        await c.clock.sleep(TICK)
        step(c)
        idle = 0 if c.vars["players"] else idle + 1
        if idle >= IDLE_TICKS:
            c.sleep()  # the next connect wakes the actor, and this loop with it
            return


registry = Registry([game])


# -- a bot, and a match between two of them -------------------------------------------


def chase(snapshot: dict[str, Any], me: str) -> tuple[int, int]:
    """The step that brings ``me`` closer to the coin (the short way round the grid)."""
    (x, y), (cx, cy) = snapshot["players"][me], snapshot["coin"]

    def toward(a: int, b: int) -> int:
        d = (b - a) % SIZE
        return 0 if d == 0 else (1 if d <= SIZE // 2 else -1)

    dx = toward(x, cx)
    return (dx, 0) if dx else (0, toward(y, cy))


async def bot(client: Client, name: str, ticks: int) -> None:
    """Play for ``ticks`` snapshots, steering at the coin after each one."""
    handle = client.get_or_create("game", ["demo"])
    async with (
        handle.connect(params={"name": name}) as conn,
        conn.events("snapshot") as snapshots,
    ):
        async for _, (snapshot,) in snapshots:
            if name in snapshot["players"]:
                await conn.steer(*chase(snapshot, name))
            ticks -= 1
            if ticks == 0:
                return


async def main() -> None:
    async with registry.runtime() as runtime:  # SQLite in ./.pyrivet: scores add up
        client = Client(runtime)
        await asyncio.gather(bot(client, "ada", 50), bot(client, "bob", 50))
        print("scores:", await client.get_or_create("game", ["demo"]).scores())


if __name__ == "__main__":
    asyncio.run(main())
