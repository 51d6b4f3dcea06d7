"""Benchmark of envoy mode: pyrivet and RivetKit 2.3.19 hosting the same counter for
one Rivet Engine, driven by the official client through the engine's gateway.

    . .venv/bin/activate
    python bench/bench_engine.py              # the figures (~10 min on a quiet machine)
    python bench/bench_engine.py --quick      # small sizes, to check it works (~3 min)

One run, same machine, same engine binary (``rivet-engine`` 2.3.19 from
tests/conformance/js/node_modules), one engine process (file-system backend, the
workflow worker's CPU load shedding off, as the tests run it) and two envoys in pools
of their own:

* ``pyrivet serve engine_app:registry --engine URL --pool pyrivet`` (``bench/
  engine_app.py``: ``counter_app``'s counter, durability "strict", and a raw ``echo``);
* RivetKit 2.3.19's own envoy, ``bench/js/rivetkit_envoy.mjs`` (the same counter,
  ``--pool rivetkit``).

The official client (``bench/js/client.mjs``) measures each pool through the gateway:
sequential ``increment(1)`` over a WebSocket subscribed to ``newCount`` and over HTTP
(p50/p99), calls/s with 64 callers over 64 actors over WebSockets, cold start per
actor (``getOrCreate`` of a new key and its first call, one after another), and the
envoy process's RSS growth per awake actor. Floors: the engine's own hop, a raw echo
actor (32-byte WebSocket message / HTTP body) through the gateway, with Python's
``websockets``/``aiohttp``; and standalone ``pyrivet serve`` of the same app, its
counter's WebSocket p50 and the same raw echo without the engine. Target (printed,
never asserted): envoy WebSocket p50 within 2 ms of standalone + the hop (engine echo
p50 minus standalone echo p50); ahead of RivetKit's envoy on every figure. The
failover time is measured by bench/bench_failover.py, for both envoys. The load average is
printed with the table: other work on the machine moves every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench_server import (
    BENCH_DIR,
    NODE_MODULES,
    ServerProcess,
    free_port,
    percentiles,
    pyrivet_server,
    run_async,
    run_node,
    timed_loop,
)

ENGINE_BINARY = NODE_MODULES / "@rivetkit/engine-cli-linux-x64-musl/rivet-engine"
TOKEN = "bench-token"
PAYLOAD = bytes(32)


@dataclasses.dataclass(frozen=True)
class Sizes:
    n: int
    warmup: int
    actors: int
    seconds: float
    cold: int
    awake: int


FULL = Sizes(n=2000, warmup=200, actors=64, seconds=10, cold=50, awake=200)
QUICK = Sizes(n=100, warmup=20, actors=16, seconds=3, cold=5, awake=20)


def log(message: str) -> None:
    print(f"[bench_engine {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ processes


@contextlib.contextmanager
def engine_process(work: Path) -> Iterator[ServerProcess]:
    """``rivet-engine start`` on free loopback ports over a new data directory."""
    guard = free_port()
    config = {
        "guard": {"host": "127.0.0.1", "port": guard},
        "api_peer": {"host": "127.0.0.1", "port": free_port()},
        "metrics": {"host": "127.0.0.1", "port": free_port()},
        "file_system": {"path": str(work / "engine-db")},
        "telemetry": {"enabled": False},
        "auth": {"admin_token": TOKEN},
        # See docs/engine.md: without it, a busy machine stalls actor creation.
        "runtime": {"worker_cpu_max": 1_000_000},
    }
    (work / "engine.json").write_text(json.dumps(config))
    argv = [str(ENGINE_BINARY), "--config", str(work / "engine.json"), "start"]
    engine = ServerProcess("rivet-engine", argv, guard, work, cwd=work)
    try:
        engine.wait_ready("/metadata", timeout=60)
        yield engine
    finally:
        engine.stop()


def wait_log(server: ServerProcess, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in server.log_path.read_text(errors="replace"):
            return
        if server.proc.poll() is not None:
            break
        time.sleep(0.2)
    tail = server.log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"{server.name} never printed {text!r}:\n{tail}")


def engine_env(pool: str) -> dict[str, str]:
    return {"RIVET_TOKEN": TOKEN, "RIVET_POOL": pool, "RIVET_NAMESPACE": "default"}


@contextlib.contextmanager
def pyrivet_envoy(work: Path, endpoint: str) -> Iterator[ServerProcess]:
    data = tempfile.mkdtemp(prefix="envoy-", dir=work)
    argv = [sys.executable, "-m", "pyrivet", "serve", "engine_app:registry"]
    argv += ["--engine", endpoint, "--token", TOKEN, "--pool", "pyrivet"]
    argv += ["--data-dir", data, "--log-level", "warning"]
    env = {**os.environ, "PYRIVET_BENCH_SLEEP_TIMEOUT": "3600"}
    envoy = ServerProcess("pyrivet-envoy", argv, 0, work, cwd=BENCH_DIR, env=env)
    try:
        wait_log(envoy, "pyrivet: hosting")
        yield envoy
    finally:
        envoy.stop()
        shutil.rmtree(data, ignore_errors=True)


@contextlib.contextmanager
def rivetkit_envoy(work: Path, endpoint: str) -> Iterator[ServerProcess]:
    env = {
        **os.environ,
        **engine_env("rivetkit"),
        "RIVET_ENDPOINT": endpoint,
        "RIVETKIT_NODE_MODULES": str(NODE_MODULES),
        "HOME": str(work),  # RivetKit keeps its local files under $HOME/.rivetkit
    }
    argv = ["node", str(BENCH_DIR / "js" / "rivetkit_envoy.mjs")]
    envoy = ServerProcess("rivetkit-envoy", argv, 0, work, env=env)
    try:
        wait_log(envoy, "RivetKit 2.3.19")
        yield envoy
    finally:
        envoy.stop()


# ------------------------------------------------------------------ measuring


def client(
    command: str, endpoint: str, pool: str | None, args: list[str], timeout: float
) -> dict[str, Any]:
    """``bench/js/client.mjs COMMAND`` (the official client) against ``endpoint``."""
    env = engine_env(pool) if pool else {}
    return run_node("client.mjs", [command, "--endpoint", endpoint, *args], timeout, env=env)


async def echo_ws(url: str, n: int, warmup: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    async with connect(url, subprotocols=["rivet"]) as ws:  # type: ignore[list-item]

        async def once() -> None:
            await ws.send(PAYLOAD)
            await ws.recv()

        return percentiles(await timed_loop(once, n, warmup))


async def echo_http(url: str, n: int, warmup: int) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as session:

        async def once() -> None:
            async with session.post(url, data=PAYLOAD) as response:
                await response.read()

        return percentiles(await timed_loop(once, n, warmup))


def echo_url(base: str, kind: str, pool: str) -> str:
    query = f"rvt-namespace=default&rvt-method=getOrCreate&rvt-runner={pool}&rvt-key=hop"
    query += f"&rvt-crash-policy=sleep&rvt-token={TOKEN}"
    path = "websocket/" if kind == "ws" else "request/"
    url = f"{base}/gateway/echo/{path}?{query}"
    return url.replace("http://", "ws://", 1) if kind == "ws" else url


def measure_pool(endpoint: str, pool: str, pid: int, sizes: Sizes) -> dict[str, float | None]:
    """The official client's figures for one pool of the engine; a figure whose run
    failed is None (the error is logged) and the others are still taken."""
    pids = ["--server-pids", str(pid)]
    lat = ["--n", str(sizes.n), "--warmup", str(sizes.warmup), *pids]
    tp = ["--mode", "conn", "--actors", str(sizes.actors), "--seconds", str(sizes.seconds)]
    runs: list[tuple[str, list[str], float, dict[str, tuple[str, ...]]]] = [
        (
            "latency",
            ["--mode", "conn", *lat],
            600,
            {"ws_p50": ("latency_us", "p50"), "ws_p99": ("latency_us", "p99")},
        ),
        (
            "latency",
            ["--mode", "handle", *lat],
            900,
            {"http_p50": ("latency_us", "p50"), "http_p99": ("latency_us", "p99")},
        ),
        ("throughput", [*tp, *pids], 900, {"calls_per_s": ("calls_per_s",)}),
        ("cold", ["--n", str(sizes.cold), *pids], 900, {"cold_p50": ("cold_us", "p50")}),
        ("awake", ["--n", str(sizes.awake), *pids], 1200, {"kb_per_actor": ("rss_kb_per_actor",)}),
    ]
    out: dict[str, float | None] = {}
    for command, args, timeout, fields in runs:
        log(f"{pool}: {command} {' '.join(args[:2])}")
        try:
            result = client(command, endpoint, pool, args, timeout)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            log(f"{pool}: {command} failed: {str(exc)[:300]}")
            out.update(dict.fromkeys(fields))
            continue
        for key, path in fields.items():
            value: Any = result
            for part in path:
                value = value[part]
            out[key] = float(value)
    return out


# ------------------------------------------------------------------ the table


def fmt(kind: str, value: float | None) -> str:
    if value is None:
        return "-"
    if kind == "us":
        return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.0f} µs"
    if kind == "kb":
        return f"{value:.1f} KiB"
    return f"{value:,.1f}"


ROWS = [
    ("WebSocket action p50", "ws_p50", "us", "ws_floor_p50"),
    ("WebSocket action p99", "ws_p99", "us", "ws_floor_p99"),
    ("HTTP action p50", "http_p50", "us", "http_floor_p50"),
    ("HTTP action p99", "http_p99", "us", "http_floor_p99"),
    ("calls/s, 64 callers over 64 actors (WebSocket)", "calls_per_s", "n", None),
    ("cold start per actor, p50", "cold_p50", "us", None),
    ("RSS per awake actor (envoy process)", "kb_per_actor", "kb", None),
]


def print_table(
    py: dict[str, float | None], rk: dict[str, float | None], floors: dict[str, float]
) -> None:
    print(f"\nload average (1 min) {os.getloadavg()[0]:.2f}")
    print("| figure | pyrivet envoy | RivetKit 2.3.19 envoy | floor: the engine's hop (raw echo) |")
    print("|---|---|---|---|")
    for title, key, kind, floor in ROWS:
        mine, theirs = py[key], rk[key]
        mark = ""
        if mine is not None and theirs is not None:
            lower_is_better = kind in ("us", "kb")
            ahead = mine <= theirs if lower_is_better else mine >= theirs
            mark = " ✓" if ahead else " ✗"
        floor_cell = fmt(kind, floors.get(floor)) if floor else "-"
        print(f"| {title} | {fmt(kind, mine)}{mark} | {fmt(kind, theirs)} | {floor_cell} |")
    hop = floors["ws_floor_p50"] - floors["standalone_echo_p50"]
    bound = floors["standalone_ws_p50"] + hop + 2000
    ws_p50 = py["ws_p50"]
    verdict = "not measured" if ws_p50 is None else "met" if ws_p50 <= bound else "missed"
    print(
        f"\nstandalone pyrivet: WebSocket action p50 {fmt('us', floors['standalone_ws_p50'])}, "
        f"raw echo p50 {fmt('us', floors['standalone_echo_p50'])}; the engine's hop "
        f"(echo through the engine - standalone echo) {fmt('us', hop)}"
    )
    print(
        f"target: envoy WebSocket p50 {fmt('us', ws_p50)} <= standalone + hop + 2 ms "
        f"= {fmt('us', bound)}: {verdict}"
    )
    print("✓: pyrivet ahead of RivetKit's envoy on that figure; -: not measured (see the log)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it works")
    options = parser.parse_args()
    sizes = QUICK if options.quick else FULL
    if not ENGINE_BINARY.is_file():
        raise SystemExit(
            f"no engine binary at {ENGINE_BINARY}: npm install in tests/conformance/js"
        )
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        work = Path(tmp)
        floors: dict[str, float] = {}
        with engine_process(work) as engine:
            endpoint = f"http://127.0.0.1:{engine.port}"
            with pyrivet_envoy(work, endpoint) as envoy, rivetkit_envoy(work, endpoint) as node:
                log("the engine's hop: raw echo through the gateway")
                ws = run_async(
                    echo_ws(echo_url(endpoint, "ws", "pyrivet"), sizes.n, sizes.warmup), 600
                )
                http = run_async(
                    echo_http(echo_url(endpoint, "http", "pyrivet"), sizes.n, sizes.warmup), 900
                )
                floors.update(ws_floor_p50=ws["p50"], ws_floor_p99=ws["p99"])
                floors.update(http_floor_p50=http["p50"], http_floor_p99=http["p99"])
                py = measure_pool(endpoint, "pyrivet", envoy.pid, sizes)
                rk = measure_pool(endpoint, "rivetkit", node.pid, sizes)
        with pyrivet_server(work, "strict", app="engine_app:registry") as server:
            base = f"http://127.0.0.1:{server.port}"
            log("standalone pyrivet: WebSocket latency and raw echo")
            lat = ["--mode", "conn", "--n", str(sizes.n), "--warmup", str(sizes.warmup)]
            floors["standalone_ws_p50"] = client("latency", base, None, lat, 600)["latency_us"][
                "p50"
            ]
            echo = run_async(echo_ws(echo_url(base, "ws", "default"), sizes.n, sizes.warmup), 600)
            floors["standalone_echo_p50"] = echo["p50"]
    print_table(py, rk, floors)


if __name__ == "__main__":
    main()
