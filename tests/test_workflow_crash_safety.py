"""Workflow steps survive SIGKILL exactly once (strict durability, embedded SQLite).

A child process runs 8 actors whose workflows loop forever: each iteration runs a step
that appends the iteration number to the actor's state, prints an acknowledgement once
the step is durable (the step returned to the workflow), and every third iteration
sleeps durably for a moment. We kill the child with SIGKILL while steps and sleeps are
in flight, then reopen its data directory:

* every acknowledged step is in the state (nothing acknowledged is lost);
* no step was applied twice and none skipped: the state is 0, 1, 2... (a step's state
  change and its history entry are one commit);
* the same workflow, resumed, continues where its history says: the only step it runs
  again is the one whose commit the kill cut off.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pyrivet import Client, Registry, actor
from pyrivet.workflow import Loop, workflow
from serve_process import run_child_and_kill

pytestmark = pytest.mark.slow

ROOMS = 8

CHILD = textwrap.dedent(
    f"""
    import asyncio, sys
    from pyrivet import Client, Registry, actor
    from pyrivet.workflow import Loop, workflow

    flows = actor("flows", state={{"done": []}})

    @flows.run
    @workflow
    async def flow(ctx):
        room = await ctx.step("room", lambda c: c.key[0])

        async def turn(ctx, i):
            def work(c):
                c.state["done"].append(i)
                return i

            await ctx.step("work", work)
            sys.stdout.write(f"ack {{room}} {{i}}\\n")
            sys.stdout.flush()
            if i % 3 == 0:
                await ctx.sleep("nap", 0.002)
            return Loop.continue_(i + 1)

        await ctx.loop("turns", turn, state=0)

    async def main():
        async with Registry([flows]).runtime(data_dir=sys.argv[1]) as runtime:
            client = Client(runtime)
            for room in range({ROOMS}):
                await client.get_or_create("flows", [str(room)]).resolve()
            await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def resumable(executed: list[tuple[str, int]]) -> Any:
    """The child's actor type, in this process, noting every step body it runs."""
    flows = actor("flows", state={"done": []})

    @flows.run
    @workflow
    async def flow(ctx: Any) -> None:
        room = await ctx.step("room", lambda c: c.key[0])

        async def turn(ctx: Any, i: int) -> Any:
            def work(c: Any) -> int:
                executed.append((room, i))
                c.state["done"].append(i)
                return i

            await ctx.step("work", work)
            if i % 3 == 0:
                await ctx.sleep("nap", 0.002)
            return Loop.continue_(i + 1)

        await ctx.loop("turns", turn, state=0)

    @flows.action
    def done(c: Any) -> list[int]:
        return list(c.state["done"])

    return flows


async def test_workflow_steps_survive_sigkill_exactly_once(tmp_path: Path) -> None:
    acked = run_child_and_kill(CHILD, tmp_path, acks_before_kill=600)
    # Read what was stored with no workflow running.
    reader = actor("flows", state={"done": []})

    @reader.action
    def done(c: Any) -> list[int]:
        return list(c.state["done"])

    before: dict[str, list[int]] = {}
    async with Registry([reader]).runtime(data_dir=tmp_path) as runtime:
        client = Client(runtime)
        for number in range(ROOMS):
            found = await client.get_or_create("flows", [str(number)]).done()
            assert found == list(range(len(found))), f"room {number}: repeated or skipped"
            acked_steps = {int(op) for op in acked.get(number, set())}
            assert acked_steps <= set(found), f"room {number}: acknowledged steps were lost"
            before[str(number)] = found
    assert sum(len(v) for v in before.values()) >= 600

    # Resumed, each workflow goes on from its history: completed steps are not re-run.
    executed: list[tuple[str, int]] = []
    async with Registry([resumable(executed)]).runtime(data_dir=tmp_path) as runtime:
        client = Client(runtime)
        handles = {room: client.get_or_create("flows", [room]) for room in before}
        for handle in handles.values():
            await handle.resolve()
        async with asyncio.timeout(30):
            for room, handle in handles.items():
                while True:
                    if len(await handle.done()) >= len(before[room]) + 3:
                        break
                    await asyncio.sleep(0.01)
        for room, handle in handles.items():
            found = await handle.done()
            assert found == list(range(len(found))), f"room {room}: repeated after resume"
            first_run = min(i for r, i in executed if r == room)
            assert first_run == len(before[room]), f"room {room}: a completed step ran again"


CREATED_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pyrivet import Client, Registry, actor
    from pyrivet.workflow import workflow

    late = actor("late", state={"n": 0})

    async def first(c):
        await asyncio.Event().wait()  # the kill comes while the first step runs

    @late.run
    @workflow
    async def flow(ctx):
        return await ctx.step("first", first)

    async def main():
        async with Registry([late]).runtime(data_dir=sys.argv[1]) as runtime:
            await Client(runtime).get_or_create("late", ["x"]).resolve()
            await runtime.drain()  # the creation commit is durable
            sys.stdout.write("ack 0 created\\n")
            sys.stdout.flush()
            await asyncio.Event().wait()

    asyncio.run(main())
    """
)


async def test_a_workflow_created_before_sigkill_runs_after_the_restart(tmp_path: Path) -> None:
    """Killed between the actor's creation commit and its first step's: the restart
    runs the workflow to its end with no request to the actor (its "resume at once"
    alarm was in the creation commit)."""
    run_child_and_kill(CREATED_CHILD, tmp_path, acks_before_kill=1)
    ran = asyncio.Event()
    late = actor("late", state={"n": 0})

    def first(c: Any) -> int:
        c.state["n"] += 1
        ran.set()
        return int(c.state["n"])

    @late.run
    @workflow
    async def flow(ctx: Any) -> int:
        return int(await ctx.step("first", first))

    async with Registry([late]).runtime(data_dir=tmp_path) as runtime:
        async with asyncio.timeout(10):
            await ran.wait()
            # Asked only now, after the step ran: which actor it is, and that it ended.
            actor_id = await Client(runtime).get_or_create("late", ["x"]).resolve()
            while True:
                if (await runtime.workflow_history(actor_id)).state == "completed":
                    break
                await asyncio.sleep(0.005)
