"""The Python client across an in-place restart of ``pyrivet serve`` (SIGHUP).

The same `ActorConnection` comes back by itself after the process re-executed: the
state is intact, the event subscription restored, and an action issued while no
server ran is sent once the connection is back.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from pyrivet.client import Backoff, Client
from serve_process import APP, ServeProcess

from .waiting import until

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("encoding", ["json", "cbor", "bare"])
async def test_connection_survives_a_sighup_restart(tmp_path: Path, encoding: str) -> None:
    (tmp_path / "app.py").write_text(APP)
    args = ["--port", "0", "--data-dir", str(tmp_path / "data"), "--log-level", "warning"]
    server = ServeProcess(tmp_path, args)
    try:
        port = await asyncio.to_thread(server.wait_serving)
        async with Client(
            f"http://127.0.0.1:{port}",
            encoding=encoding,  # type: ignore[arg-type]
            backoff=Backoff(initial=0.05, maximum=0.4, jitter=0.0),
        ) as client:
            room = client.get_or_create("counter", ["restart"])
            heard: list[int] = []
            async with room.connect() as conn:
                conn.on("count", heard.append)
                assert await conn.increment(3) == 3
                await until(lambda: heard == [3])

                server.signal(signal.SIGHUP)
                await asyncio.to_thread(server.wait_line, lambda s: "restarting in place" in s)
                # Sent while the old server is gone: delivered once the new one answers.
                later = asyncio.ensure_future(conn.increment(1))
                assert await asyncio.to_thread(server.wait_serving) == port
                assert await asyncio.wait_for(later, 15) == 4  # state survived
                await until(lambda: heard == [3, 4])  # re-subscribed
                await until(lambda: conn.status == "connected")
                info = await conn.info()
                assert (info["slept"], info["woke"]) == (1, 2)
        server.signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.wait_exit) == 0
    finally:
        server.close()
