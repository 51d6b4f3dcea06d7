"""Acknowledged writes survive SIGKILL (strict durability, embedded SQLite).

A child process serves increments to 8 actors from 32 concurrent callers and prints one
line per reply it received. We kill it with SIGKILL in the middle of the load, reopen
its data directory and check every actor's log of operations: every acknowledged
operation is there, and none is there twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pyrivet import Client, Registry, actor

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


def run_child_and_kill(data_dir: Path, acks_before_kill: int) -> dict[int, set[str]]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: dict[int, set[str]] = {}
    count = 0
    assert child.stdout is not None
    try:
        for line in child.stdout:
            _, room, op = line.split()
            acked.setdefault(int(room), set()).add(op)
            count += 1
            if count == acks_before_kill:
                os.kill(child.pid, signal.SIGKILL)
                break
    finally:
        child.kill()
        _, stderr = child.communicate(timeout=30)
    assert count == acks_before_kill, f"child stopped early: {stderr}"
    return acked


async def test_acknowledged_increments_survive_sigkill(tmp_path: Path) -> None:
    acked = run_child_and_kill(tmp_path, acks_before_kill=3000)
    async with Registry([ledger]).runtime(data_dir=tmp_path) as runtime:
        client = Client(runtime)
        for room, acked_ops in sorted(acked.items()):
            stored = await client.get_or_create("ledger", [f"room-{room}"]).ops()
            assert len(stored) == len(set(stored)), f"room {room}: an op was counted twice"
            missing = acked_ops - set(stored)
            assert not missing, f"room {room}: acknowledged ops lost: {sorted(missing)[:5]}"
