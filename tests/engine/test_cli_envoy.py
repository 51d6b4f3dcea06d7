"""``pyrivet serve app:registry --engine URL`` as a process, against a real engine."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from pyrivet import Client
from serve_process import APP, ServeProcess

from .conftest import Engine

pytestmark = pytest.mark.slow
WAIT = 30.0


def test_envoy_mode_serves_through_the_gateway_and_stops_on_sigterm(
    engine: Engine, pool: str, namespace: str, tmp_path: Path
) -> None:
    (tmp_path / "app.py").write_text(APP)
    env = {
        "RIVET_ENDPOINT": engine.endpoint,
        "RIVET_TOKEN": engine.token,
        "RIVET_POOL": pool,
        "RIVET_NAMESPACE": namespace,
    }
    served = ServeProcess(tmp_path, ["--data-dir", str(tmp_path / "data")], env=env)
    try:
        line = served.wait_line(lambda s: "pyrivet: hosting" in s, timeout=WAIT)
        assert f"pool {pool}" in line and f"namespace {namespace}" in line
        assert engine.endpoint in line

        async def call() -> int:
            async with Client(
                engine.endpoint, namespace=namespace, pool_name=pool, token=engine.token
            ) as client:
                room = client.get_or_create("counter", ["cli"])
                await room.increment(2)
                return int(await room.increment(3))

        assert asyncio.run(asyncio.wait_for(call(), WAIT)) == 5
        served.signal(signal.SIGTERM)
        assert served.wait_exit() == 0
        assert "every actor is asleep" in served.output()
    finally:
        served.close()


def test_unreachable_engine_exits_1_after_the_bound(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    args = ["--engine", "http://127.0.0.1:9", "--engine-give-up", "0.5", "--data-dir", "d"]
    served = ServeProcess(tmp_path, args)
    try:
        assert served.wait_exit() == 1
        assert "could not reach the Rivet Engine at http://127.0.0.1:9" in served.output()
    finally:
        served.close()
