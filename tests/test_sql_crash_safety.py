"""An actor's SQL data and its state survive SIGKILL together (strict, embedded SQLite).

A child process runs 8 actors with a SQL database each, called by 32 concurrent callers.
Every action inserts one row (its op) and counts it in the state, in one unit of work,
and the child prints a line per acknowledged call. Half of the actions also change
only the state (a unit with no SQL), so the redo log holds units of both kinds. We kill
the child with SIGKILL mid-flight, reopen its data directory and check every actor:
the count in the state equals the rows in its database (both from the same point, the
roll forward included), and every acknowledged op is there.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from pyrivet import Client, Registry, actor
from serve_process import run_child_and_kill

pytestmark = pytest.mark.slow

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pyrivet import Client, Registry, actor

    ledger = actor("ledger", state={"count": 0, "bumps": 0})

    @ledger.on_migrate
    async def migrate(c, db):
        await db.execute("CREATE TABLE IF NOT EXISTS ops (op TEXT PRIMARY KEY)")

    @ledger.action
    async def record(c, op):
        await c.db.execute("INSERT INTO ops (op) VALUES (?)", op)
        c.state["count"] += 1

    @ledger.action
    def bump(c):
        c.state["bumps"] += 1

    async def caller(client, worker):
        room = client.get_or_create("ledger", [f"room-{worker % 8}"])
        n = 0
        while True:
            op = f"{worker}:{n}"
            await room.record(op)
            sys.stdout.write(f"ack {worker % 8} {op}\\n")
            sys.stdout.flush()
            if n % 2:
                await room.bump()
            n += 1

    async def main():
        async with Registry([ledger]).runtime(data_dir=sys.argv[1]) as runtime:
            client = Client(runtime)
            await asyncio.gather(*(caller(client, w) for w in range(32)))

    asyncio.run(main())
    """
)

ledger = actor("ledger", state={"count": 0, "bumps": 0}, db=True)


@ledger.action
async def stored(c: Any) -> dict[str, Any]:
    rows = await c.db.execute("SELECT op FROM ops")
    return {"count": c.state["count"], "ops": [row["op"] for row in rows]}


async def test_sql_and_state_survive_sigkill_together(tmp_path: Path) -> None:
    acked = run_child_and_kill(CHILD, tmp_path, acks_before_kill=2000)
    async with Registry([ledger]).runtime(data_dir=tmp_path) as runtime:
        client = Client(runtime)
        for room, acked_ops in sorted(acked.items()):
            found = await client.get_or_create("ledger", [f"room-{room}"]).stored()
            ops = set(found["ops"])
            assert found["count"] == len(ops), f"room {room}: state and SQL data disagree"
            missing = acked_ops - ops
            assert not missing, f"room {room}: acknowledged rows lost: {sorted(missing)[:5]}"
