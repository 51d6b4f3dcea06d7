"""Graceful stop: in-flight requests finish, every actor sleeps with its state committed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from pyrivet import ActorDefinition, Registry, actor
from pyrivet._protocol.messages import ActionResponse, Encoding, Init
from pyrivet.server.serve import PyrivetServer, ServeResult, serve

from ._support import call, query_url, recv_msg, subprotocols

APP = textwrap.dedent(
    """
    from pyrivet import Registry, actor

    counter = actor("counter", state={"count": 0})

    @counter.action
    def increment(c, amount=1):
        c.state["count"] += amount
        return c.state["count"]

    @counter.on_sleep
    def on_sleep(c):
        c.state["slept"] = c.state.get("slept", 0) + 1

    @counter.action
    def slept(c):
        return c.state.get("slept", 0)

    registry = Registry([counter])
    """
)


async def start_serving(
    registry: Registry, data_dir: Path, **options: Any
) -> tuple[PyrivetServer, asyncio.Task[ServeResult]]:
    """`serve` on a free port in the background, without signal handlers or logging
    set-up; returns the server once it listens, and the task that ends when it stops."""
    started: asyncio.Queue[PyrivetServer] = asyncio.Queue()
    serving = asyncio.get_running_loop().create_task(
        serve(
            registry,
            port=0,
            data_dir=data_dir,
            log_level="warning",
            handle_signals=False,
            configure_logging=False,
            on_started=started.put_nowait,
            **options,
        )
    )
    return await started.get(), serving


def gated_actor() -> tuple[ActorDefinition[Any], asyncio.Event, asyncio.Event]:
    """Actor ``slow`` whose ``work`` action sets ``entered``, then waits for ``gate``
    before counting ``done`` and returning it: an action held in flight by the test."""
    entered = asyncio.Event()
    gate = asyncio.Event()
    slow = actor("slow", state={"done": 0})

    @slow.action
    async def work(c: Any) -> int:
        entered.set()
        await gate.wait()
        c.state["done"] += 1
        return int(c.state["done"])

    return slow, entered, gate


async def test_serve_finishes_in_flight_actions_then_sleeps_actors(tmp_path: Path) -> None:
    slow, entered, gate = gated_actor()

    @slow.action
    def done(c: Any) -> int:
        return int(c.state["done"])

    registry = Registry([slow])
    data_dir = tmp_path / "data"
    server, serving = await start_serving(registry, data_dir, grace_period=10)
    url = (
        f"http://127.0.0.1:{server.port}/gateway/slow/action/work?rvt-method=getOrCreate&rvt-key=a"
    )
    async with httpx.AsyncClient(timeout=10) as http:
        request = asyncio.get_running_loop().create_task(
            http.post(url, content=b'{"args":[]}', headers={"x-rivet-encoding": "json"})
        )
        await entered.wait()
        # `serve` keeps its store open: it wrote the WAL's first lap in advance.
        assert (data_dir / "pyrivet.sqlite3-wal").stat().st_size > 4_000_000
        server.should_exit = True
        await server.stopping.wait()
        gate.set()
        response = await request
    assert response.status_code == 200
    assert response.json() == {"output": 1}
    await serving

    async with registry.runtime(data_dir=data_dir) as runtime:
        from pyrivet._protocol.query import ActorQuery

        actor_id = await runtime.resolve(ActorQuery("get", "slow", ("a",)))
        assert await runtime.call_action(actor_id, "done", []) == 1


def _wait_for_port(process: subprocess.Popen[str]) -> int:
    assert process.stderr is not None
    for line in process.stderr:
        if "pyrivet: serving" in line:
            return int(line.split("http://127.0.0.1:")[1].split()[0])
    raise AssertionError(f"the server did not start (exit {process.wait()})")


@contextlib.contextmanager
def _pyrivet_serve(app_dir: Path, data_dir: Path) -> Any:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pyrivet",
            "serve",
            "app:registry",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
        ],
        cwd=app_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stderr is not None:
            process.stderr.close()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_pyrivet_serve_exits_0_on_signal_with_state_committed(
    tmp_path: Path, sig: signal.Signals
) -> None:
    (tmp_path / "app.py").write_text(APP)
    data_dir = tmp_path / "data"
    action = "/gateway/counter/action/{}?rvt-method=getOrCreate&rvt-key=k"
    headers = {"x-rivet-encoding": "json"}

    with _pyrivet_serve(tmp_path, data_dir) as process:
        port = _wait_for_port(process)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/metadata").json()["actorNames"] == {"counter": {}}
            reply = http.post(action.format("increment"), content=b'{"args":[5]}', headers=headers)
            assert reply.json() == {"output": 5}
        process.send_signal(sig)
        assert process.wait(timeout=30) == 0
        assert process.stderr is not None
        assert "every actor is asleep" in process.stderr.read()

    with _pyrivet_serve(tmp_path, data_dir) as process:
        port = _wait_for_port(process)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            reply = http.post(action.format("increment"), content=b'{"args":[1]}', headers=headers)
            assert reply.json() == {"output": 6}
            # on_sleep ran at the stop and its change was committed too.
            reply = http.post(action.format("slept"), content=b'{"args":[]}', headers=headers)
            assert reply.json() == {"output": 1}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


@pytest.mark.slow
def test_pyrivet_serve_reports_a_bad_app(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("registry = 42\n")
    result = subprocess.run(
        [sys.executable, "-m", "pyrivet", "serve", "app:registry", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "not a pyrivet Registry" in result.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "pyrivet", "serve", "nomodule:registry"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 1
    assert "cannot import module 'nomodule'" in missing.stderr


@pytest.mark.parametrize("encoding", ["json", "cbor", "bare"])
async def test_stop_replies_in_flight_then_closes_sockets_going_away(
    tmp_path: Path, encoding: Encoding
) -> None:
    """A connect socket gets its in-flight replies, then 1012 ``ws.going_away`` (a
    reason RivetKit's client parses and reconnects on), before actors sleep."""
    slow, entered, gate = gated_actor()
    server, serving = await start_serving(Registry([slow]), tmp_path / "data", grace_period=10)
    url = f"ws://127.0.0.1:{server.port}" + query_url("slow", "/connect", key="a")
    async with connect(url, subprotocols=subprotocols(encoding)) as ws:
        assert isinstance(await recv_msg(ws, encoding), Init)
        await call(ws, encoding, 0, "work")
        await entered.wait()
        server.should_exit = True
        await server.stopping.wait()
        gate.set()
        reply = await recv_msg(ws, encoding)
        assert isinstance(reply, ActionResponse) and reply.output == 1
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1012
        assert ws.close_reason == "ws.going_away"
    assert await serving is ServeResult.STOPPED


@pytest.mark.parametrize("compression", [False, True])
async def test_websocket_compression_is_off_unless_asked_for(
    tmp_path: Path, compression: bool
) -> None:
    """Clients offer permessage-deflate; `serve` declines it unless ``ws_compression``."""
    counter = actor("counter", state={"count": 0})

    @counter.action
    def get(c: Any) -> int:
        return int(c.state["count"])

    server, serving = await start_serving(
        Registry([counter]), tmp_path / "data", ws_compression=compression
    )
    url = f"ws://127.0.0.1:{server.port}" + query_url("counter", "/connect", key="a")
    async with connect(url, subprotocols=subprotocols("json")) as ws:  # offers deflate
        assert isinstance(await recv_msg(ws, "json"), Init)
        assert ws.response is not None
        accepted = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
        assert ("permessage-deflate" in accepted) is compression
        await call(ws, "json", 0, "get")
        reply = await recv_msg(ws, "json")
        assert isinstance(reply, ActionResponse) and reply.output == 0
    server.should_exit = True
    assert await serving is ServeResult.STOPPED


def test_pyrivet_serve_passes_ws_compression_through(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyrivet import cli
    from pyrivet.cli import serve_command

    seen: list[dict[str, Any]] = []

    def run_serve(app: str, **kw: Any) -> int:
        seen.append(kw)
        return 0

    monkeypatch.setattr(serve_command, "run_serve", run_serve)
    assert cli.main(["serve", "app:registry"]) == 0
    assert cli.main(["serve", "app:registry", "--ws-compression"]) == 0
    assert [kw["ws_compression"] for kw in seen] == [False, True]


def test_pyrivet_serve_runs_on_uvloop_unless_told_not_to(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyrivet.cli.serve_command import run_loop

    async def loop_type() -> str:
        return type(asyncio.get_running_loop()).__module__

    pytest.importorskip("uvloop", reason="uvloop is not installed (the server extra has it)")
    monkeypatch.delenv("PYRIVET_LOOP", raising=False)
    assert run_loop(loop_type()).startswith("uvloop")
    monkeypatch.setenv("PYRIVET_LOOP", "asyncio")
    assert run_loop(loop_type()).startswith("asyncio")
