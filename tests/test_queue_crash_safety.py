"""Acknowledged queue sends survive SIGKILL (strict durability, embedded SQLite).

Two children: a process running the runtime in-process, and ``pyrivet serve`` taking
sends over HTTP from the network client.

A child process sends messages to 4 actors from 16 concurrent callers, printing one
line per acknowledged send, while each actor's ``run`` loop receives them (completable),
records each body in its state and completes it. We kill the child with SIGKILL in the
middle of it all (so sends, receives and completions are all in flight), reopen its
data directory with a definition that has no consumer, and check every actor: each
acknowledged message is either still queued or recorded as processed, never both and
never twice (the record and the delete land in one commit).
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pyrivet import Client, Queue, Registry, actor
from serve_process import ServeProcess, run_child_and_kill

pytestmark = pytest.mark.slow

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pyrivet import Client, Queue, Registry, actor

    inbox = actor("inbox", state={"done": []}, queues={"jobs": Queue()})

    @inbox.run
    async def run(c):
        async for message in c.queue.iter(completable=True):
            c.state["done"].append(message.body)
            await message.complete()

    async def sender(client, worker):
        room = client.get_or_create("inbox", [f"room-{worker % 4}"])
        n = 0
        while True:
            op = f"{worker}:{n}"
            await room.send("jobs", op)
            sys.stdout.write(f"ack {worker % 4} {op}\\n")
            sys.stdout.flush()
            n += 1

    async def main():
        async with Registry([inbox]).runtime(data_dir=sys.argv[1]) as runtime:
            client = Client(runtime)
            await asyncio.gather(*(sender(client, w) for w in range(16)))

    asyncio.run(main())
    """
)

#: The same actor type without a consumer, to read what was stored.
inbox = actor("inbox", state={"done": []}, queues={"jobs": Queue()})


@inbox.action
def stored(c: Any) -> dict[str, list[str]]:
    queued = [m.body for m in c.queue.try_next_batch(count=100_000, completable=True)]
    return {"queued": queued, "done": list(c.state["done"])}


async def test_acknowledged_sends_survive_sigkill(tmp_path: Path) -> None:
    acked = run_child_and_kill(CHILD, tmp_path, acks_before_kill=1500)
    async with Registry([inbox]).runtime(data_dir=tmp_path) as runtime:
        client = Client(runtime)
        processed = 0
        for room, acked_ops in sorted(acked.items()):
            found = await client.get_or_create("inbox", [f"room-{room}"]).stored()
            queued, done = found["queued"], found["done"]
            assert len(done) == len(set(done)), f"room {room}: a message was processed twice"
            assert not set(queued) & set(done), f"room {room}: processed and still queued"
            missing = acked_ops - set(queued) - set(done)
            assert not missing, f"room {room}: acknowledged messages lost: {sorted(missing)[:5]}"
            processed += len(done)
        # The consumers were running when the child died.
        assert processed > 0


#: The app ``pyrivet serve`` runs: the child's actor, with the reading action.
SERVED_APP = CHILD.split("async def sender")[0] + textwrap.dedent(
    """
    @inbox.action
    def stored(c):
        queued = [m.body for m in c.queue.try_next_batch(count=100_000, completable=True)]
        return {"queued": queued, "done": list(c.state["done"])}

    registry = Registry([inbox])
    """
)


async def test_acknowledged_http_sends_survive_sigkill_of_pyrivet_serve(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(SERVED_APP)
    args = ["--port", "0", "--data-dir", str(tmp_path / "data"), "--log-level", "warning"]
    acked: set[str] = set()
    enough = asyncio.Event()

    async def sender(client: Client, worker: int) -> None:
        # One handle per sender: a handle sends one message at a time.
        room = client.get_or_create("inbox", ["room"])
        n = 0
        while True:
            op = f"{worker}:{n}"
            await room.send("jobs", op)
            acked.add(op)
            n += 1
            if len(acked) >= 300:
                enough.set()

    server = ServeProcess(tmp_path, args)
    try:
        port = await asyncio.to_thread(server.wait_serving)
        async with Client(f"http://127.0.0.1:{port}", encoding="cbor") as client:
            senders = [asyncio.ensure_future(sender(client, w)) for w in range(8)]
            await asyncio.wait_for(enough.wait(), 60)
            server.process.kill()  # SIGKILL, with sends in flight
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
        server.close()
        known = set(acked)
        assert len(known) >= 300
        server = ServeProcess(tmp_path, args)
        port = await asyncio.to_thread(server.wait_serving)
        async with Client(f"http://127.0.0.1:{port}", encoding="cbor") as client:
            found = await client.get_or_create("inbox", ["room"]).stored()
        queued, done = found["queued"], found["done"]
        assert len(done) == len(set(done)), "a message was processed twice"
        assert not set(queued) & set(done), "a message is processed and still queued"
        missing = known - set(queued) - set(done)
        assert not missing, f"acknowledged messages lost: {sorted(missing)[:5]}"
    finally:
        server.close()
