"""The actors of ``bench_hibernation.py``.

    pyrivet serve hibernation_app:registry --port 6420 --data-dir /tmp/bench-data   # from bench/

``room``: connections hibernate (pyrivet's default). ``nap()`` puts the actor to sleep;
``ping()`` answers whether this run of the actor is fresh (its first call since it
woke), so a client can tell a wake-up round trip from an awake one; ``burst(n)``
broadcasts ``tick`` n times. ``awake_room`` is the same with
``hibernatable_connections=False`` (connections keep it awake, as before hibernation).
"""

from __future__ import annotations

from typing import Any

from pyrivet import ActorOptions, Registry, actor


def _room(name: str, **options: Any) -> Any:
    room = actor(
        name,
        state={"ticks": 0},
        create_vars=lambda c: {"fresh": True},
        options=ActorOptions(**options),
    )

    @room.action
    def nap(c: Any) -> None:
        c.sleep()

    @room.action
    def ping(c: Any) -> bool:
        fresh = bool(c.vars["fresh"])
        c.vars["fresh"] = False
        return fresh

    @room.action
    def burst(c: Any, n: int) -> int:
        for i in range(n):
            c.broadcast("tick", i)
        return n

    return room


registry = Registry([_room("room"), _room("awake_room", hibernatable_connections=False)])
