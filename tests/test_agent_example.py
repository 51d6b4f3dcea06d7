"""examples/agent.py served by ``pyrivet serve``, killed with SIGKILL mid-answer.

A network client connects to the agent, sends a question that needs the weather tool,
and listens to the answer's ``token`` events. After a few tokens we kill the server with
SIGKILL and start it again on the same port and data directory. The client reconnects
by itself; the workflow resumes at the next token:

* the answer in the agent's state is complete and exactly the model's answer (no token
  twice, none missing), and the conversation goes on with the next message;
* the tool actor was called once (its completed step was not run again);
* tokens heard after the restart all come after those heard before it (the stream
  resumed mid-answer instead of starting over), and none was heard twice.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import signal
import socket
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pyrivet.client import Backoff, Client
from serve_process import ServeProcess

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "agent.py"
QUESTION = "what is the weather in Tokyo?"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agent_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    """Poll ``predicate`` (plain or async) until it holds."""
    async with asyncio.timeout(timeout):
        while True:
            held = predicate()
            if held is True or (held is not False and await held):
                return
            await asyncio.sleep(0.02)


async def test_the_agent_resumes_mid_answer_after_sigkill(tmp_path: Path) -> None:
    example = load_example()
    answer = example.compose(QUESTION, example.FORECASTS["tokyo"])
    shutil.copy(EXAMPLE, tmp_path / "app.py")
    port = free_port()
    args = ["--port", str(port), "--data-dir", str(tmp_path / "data"), "--log-level", "warning"]

    server = ServeProcess(tmp_path, args)
    heard: list[tuple[int, int, str]] = []  # (turn, index, token), in arrival order
    restarted_at = 0
    try:
        assert await asyncio.to_thread(server.wait_serving) == port
        async with Client(
            f"http://127.0.0.1:{port}", backoff=Backoff(initial=0.05, maximum=0.2, jitter=0.0)
        ) as client:
            chat = client.get_or_create("agent", ["chat-1"])
            async with chat.connect() as conn:
                conn.on("token", lambda t: heard.append((t["turn"], t["index"], t["token"])))
                await wait_for(lambda: conn.status == "connected")
                await chat.send("user", QUESTION)
                await wait_for(lambda: len(heard) >= 3)

                server.process.send_signal(signal.SIGKILL)
                await asyncio.to_thread(server.wait_exit)
                restarted_at = len(heard)
                server.close()
                server = ServeProcess(tmp_path, args)
                assert await asyncio.to_thread(server.wait_serving) == port

                # The workflow resumes by itself (its alarm), mid-answer.
                async def answered(count: int) -> bool:
                    return len(await chat.transcript()) >= count

                await wait_for(lambda: answered(2), timeout=30)
                transcript = await chat.transcript()
                assert transcript == [
                    {"role": "user", "text": QUESTION},
                    {"role": "agent", "text": " ".join(answer)},
                ]
                assert await client.get_or_create("weather", ["global"]).lookups() == 1

                # The conversation goes on.
                await chat.send("user", "thanks")
                await wait_for(lambda: answered(4), timeout=30)
        server.signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.wait_exit) == 0
    finally:
        server.close()

    before = [index for turn, index, _ in heard[:restarted_at] if turn == 0]
    after = [index for turn, index, _ in heard[restarted_at:] if turn == 0]
    assert before == list(range(len(before))) and len(before) >= 3
    assert len(set(after)) == len(after), "a token was streamed twice"
    assert all(index > max(before) for index in after), "the answer started over"
    assert all(answer[index] == token for turn, index, token in heard if turn == 0)
