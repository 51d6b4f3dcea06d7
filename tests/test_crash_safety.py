"""Acknowledged writes survive SIGKILL (strict durability, embedded SQLite).

A child process serves increments to 8 actors from 32 concurrent callers and prints one
line per reply it received. We kill it with SIGKILL in the middle of the load, reopen
its data directory and check every actor's log of operations: every acknowledged
operation is there, and none is there twice.
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

    ledger = actor("ledger", state={"ops": []})

    @ledger.action
    def add(c, op: str) -> int:
        c.state["ops"].append(op)
        return len(c.state["ops"])

    async def caller(client, worker):
        room = client.get_or_create("ledger", [f"room-{worker % 8}"])
        n = 0
        while True:
            op = f"{worker}:{n}"
            await room.add(op)
            sys.stdout.write(f"ack {worker % 8} {op}\\n")
            sys.stdout.flush()
            n += 1

    async def main():
        async with Registry([ledger]).runtime(data_dir=sys.argv[1]) as runtime:
            client = Client(runtime)
            await asyncio.gather(*(caller(client, w) for w in range(32)))

    asyncio.run(main())
    """
)

ledger = actor("ledger", state={"ops": []})


@ledger.action
def ops(c: Any) -> list[str]:
    return list(c.state["ops"])


async def test_acknowledged_increments_survive_sigkill(tmp_path: Path) -> None:
    acked = run_child_and_kill(CHILD, tmp_path, acks_before_kill=3000)
    async with Registry([ledger]).runtime(data_dir=tmp_path) as runtime:
        client = Client(runtime)
        for room, acked_ops in sorted(acked.items()):
            stored = await client.get_or_create("ledger", [f"room-{room}"]).ops()
            assert len(stored) == len(set(stored)), f"room {room}: an op was counted twice"
            missing = acked_ops - set(stored)
            assert not missing, f"room {room}: acknowledged ops lost: {sorted(missing)[:5]}"
