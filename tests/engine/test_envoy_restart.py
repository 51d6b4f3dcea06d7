"""A connection through the engine survives a restart of the envoy process.

``pyrivet serve app:registry --engine URL`` runs as a process; pyrivet's Python client
connects through the engine's gateway and gets an event; the envoy is stopped
(SIGTERM: its actors sleep, each connection saved with its socket's record) and a new
envoy process starts with an empty data directory. The gateway kept the client's
socket open (hibernating), so the client's next call wakes the actor on the new
envoy, which serves the same socket again from the stored record: the call is
answered and events arrive on the same connection and subscription, and
``on_connect`` ran once. (The official JS client's run of the same flow is in
test_js_conformance.py.)
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from pyrivet import Client
from serve_process import ServeProcess

from .conftest import Engine

pytestmark = pytest.mark.slow
WAIT = 60.0

APP = """
from pyrivet import Registry, actor

counter = actor("counter", state={"count": 0, "connects": 0})

@counter.on_connect
def connected(c, conn):
    c.state["connects"] += 1

@counter.action
def increment(c, amount=1):
    c.state["count"] += amount
    c.broadcast("count", c.state["count"])
    return c.state["count"]

@counter.action
def info(c):
    return dict(c.state)

registry = Registry([counter])
"""


def _envoy(engine: Engine, pool: str, namespace: str, app_dir: Path, data: str) -> ServeProcess:
    args = ["--engine", engine.endpoint, "--token", engine.token, "--pool", pool]
    args += ["--namespace", namespace, "--data-dir", str(app_dir / data)]
    served = ServeProcess(app_dir, args)
    served.wait_line(lambda s: "pyrivet: hosting" in s, timeout=WAIT)
    return served


def test_a_connection_survives_an_envoy_restart(
    engine: Engine, pool: str, namespace: str, tmp_path: Path
) -> None:
    (tmp_path / "app.py").write_text(APP)
    envoys = [_envoy(engine, pool, namespace, tmp_path, "first")]

    def restart() -> None:
        first = envoys[0]
        first.signal(signal.SIGTERM)
        assert first.wait_exit(WAIT) == 0, first.output()
        envoys.append(_envoy(engine, pool, namespace, tmp_path, "second"))  # empty dir

    async def run() -> tuple[list[int], list[str], dict[str, int]]:
        seen: asyncio.Queue[int] = asyncio.Queue()
        statuses: list[str] = []
        async with (
            Client(
                engine.endpoint, namespace=namespace, pool_name=pool, token=engine.token
            ) as client,
            client.get_or_create("counter", ["restart"]).connect() as conn,
        ):
            conn.on_status_change(statuses.append)
            conn.on("count", seen.put_nowait)
            assert await asyncio.wait_for(conn.increment(5), WAIT) == 5
            before = await asyncio.wait_for(seen.get(), WAIT)
            await asyncio.to_thread(restart)
            assert await asyncio.wait_for(conn.increment(1), WAIT) == 6
            after = await asyncio.wait_for(seen.get(), WAIT)
            state = await asyncio.wait_for(conn.info(), WAIT)
        return [before, after], statuses, state

    try:
        events, statuses, state = asyncio.run(asyncio.wait_for(run(), 4 * WAIT))
    except BaseException:
        for served in envoys:
            print(served.output())
        raise
    finally:
        for served in envoys:
            served.close()
    assert events == [5, 6]  # before and after, on one subscription
    assert state == {"count": 6, "connects": 1}  # one connection: on_connect ran once
    assert "disconnected" not in statuses and "reconnecting" not in statuses
