"""Benchmark of envoy mode: pyrivet and RivetKit 2.3.19 hosting the same counter for
one Rivet Engine, driven by the official client through the engine's gateway.

    . .venv/bin/activate
    python bench/bench_engine.py              # the figures (~15 min on a quiet machine)
    python bench/bench_engine.py --quick      # small sizes, to check it works (~3 min)

One run, same machine, same engine binary (``rivet-engine`` 2.3.19 from
tests/conformance/js/node_modules), one engine process (file-system backend, the
workflow worker's CPU load shedding off and the gateway's ``tcp_nodelay`` on, as the
tests run it) and three envoys in pools of their own:

* ``pyrivet serve engine_app:registry --engine URL --pool pyrivet`` (``bench/
  engine_app.py``: ``counter_app``'s counter, durability "strict", and a raw ``echo``);
* the same with durability "relaxed" (``--pool pyrivet-relaxed``: the reply does not
  wait for the engine's KV ack, as RivetKit's does not), for the latency and calls/s
  figures only;
* RivetKit 2.3.19's own envoy, ``bench/js/rivetkit_envoy.mjs`` (the same counter,
  ``--pool rivetkit``).

The official client (``bench/js/client.mjs``) measures each pool through the gateway,
one figure at a time for both pools in turn (so both see the same machine):
sequential ``increment(1)`` over a WebSocket subscribed to ``newCount``, over one not
subscribed, and over HTTP (p50/p99), calls/s with 64 callers over 64 actors over
WebSockets, cold start per actor (``getOrCreate`` of a new key and its first call, one
after another), and the envoy process's RSS growth per awake actor. A figure a pool
could not produce within its bound is printed as "failed" with the reason logged.

Floors: the engine's own hop, a raw echo actor (32-byte WebSocket message / HTTP body)
through the gateway, with Python's ``websockets``/``aiohttp``; the same hop with one
commit (``durable_echo``: the message is answered once a state change is durable,
through the engine a KV put); and standalone ``pyrivet serve`` of the same app, its
counter's WebSocket p50 and the same two echoes without the engine. Targets (printed,
never asserted): envoy WebSocket p50 within 2 ms of standalone + the hop (engine echo
p50 minus standalone echo p50), and the same with the durable hop; ahead of RivetKit's
envoy on every figure. The failover time is measured by ``bench_failover.py``, for both envoys. The
load average is printed with the table: other work on the machine moves every figure.
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
    #: Sequential HTTP calls: the engine resolves the actor of every query-form
    #: request, which costs it 60 ms and more per call here.
    http_n: int
    warmup: int
    actors: int
    seconds: float
    cold: int
    awake: int


FULL = Sizes(n=500, http_n=200, warmup=50, actors=64, seconds=10, cold=20, awake=100)
QUICK = Sizes(n=100, http_n=50, warmup=20, actors=16, seconds=3, cold=5, awake=20)
POOLS = ("pyrivet", "pyrivet-relaxed", "rivetkit")
#: Figures of the relaxed pyrivet pool: RivetKit saves state after replying, as pyrivet
#: does with durability "relaxed"; the strict pool waits for the engine's KV ack.
RELAXED_FIGURES = ("ws_p50", "ws_p99", "quiet_p50", "quiet_p99", "calls_per_s")


def log(message: str) -> None:
    print(f"[bench_engine {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ processes


@contextlib.contextmanager
def engine_process(work: Path) -> Iterator[ServerProcess]:
    """``rivet-engine start`` on free loopback ports over a new data directory."""
    guard = free_port()
    config = {
        # See docs/engine.md: without it, a message to a client that follows another
        # waits up to 40 ms for the client's delayed ACK.
        "guard": {"host": "127.0.0.1", "port": guard, "tcp_nodelay": True},
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
def pyrivet_envoy(work: Path, endpoint: str, durability: str = "strict") -> Iterator[ServerProcess]:
    data = tempfile.mkdtemp(prefix="envoy-", dir=work)
    pool = "pyrivet" if durability == "strict" else f"pyrivet-{durability}"
    argv = [sys.executable, "-m", "pyrivet", "serve", "engine_app:registry"]
    argv += ["--engine", endpoint, "--token", TOKEN, "--pool", pool]
    argv += ["--data-dir", data, "--log-level", "warning"]
    env = {
        **os.environ,
        "PYRIVET_BENCH_SLEEP_TIMEOUT": "3600",
        "PYRIVET_BENCH_DURABILITY": durability,
    }
    envoy = ServerProcess(f"{pool}-envoy", argv, 0, work, cwd=BENCH_DIR, env=env)
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


def echo_url(base: str, kind: str, pool: str, name: str = "echo") -> str:
    query = f"rvt-namespace=default&rvt-method=getOrCreate&rvt-runner={pool}&rvt-key=hop"
    query += f"&rvt-crash-policy=sleep&rvt-token={TOKEN}"
    path = "websocket/" if kind == "ws" else "request/"
    url = f"{base}/gateway/{name}/{path}?{query}"
    return url.replace("http://", "ws://", 1) if kind == "ws" else url


def pool_runs(sizes: Sizes) -> list[tuple[str, list[str], float, dict[str, tuple[str, ...]]]]:
    """The official client's runs, in order: (command, args, timeout, figure -> path
    in its JSON answer)."""
    lat = ["--warmup", str(sizes.warmup)]
    tp = ["--mode", "conn", "--actors", str(sizes.actors), "--seconds", str(sizes.seconds)]
    percentiles_of = {"p50": ("latency_us", "p50"), "p99": ("latency_us", "p99")}
    return [
        (
            "latency",
            ["--mode", "conn", "--n", str(sizes.n), *lat],
            600,
            {f"ws_{k}": v for k, v in percentiles_of.items()},
        ),
        (
            "latency",
            ["--mode", "conn-quiet", "--n", str(sizes.n), *lat],
            600,
            {f"quiet_{k}": v for k, v in percentiles_of.items()},
        ),
        (
            "latency",
            ["--mode", "handle", "--n", str(sizes.http_n), *lat],
            900,
            {f"http_{k}": v for k, v in percentiles_of.items()},
        ),
        ("throughput", tp, 900, {"calls_per_s": ("calls_per_s",)}),
        ("cold", ["--n", str(sizes.cold)], 900, {"cold_p50": ("cold_us", "p50")}),
        ("awake", ["--n", str(sizes.awake)], 1200, {"kb_per_actor": ("rss_kb_per_actor",)}),
    ]


def measure_pools(
    endpoint: str, pids: dict[str, int], sizes: Sizes
) -> dict[str, dict[str, float | str]]:
    """Each figure for each pool in ``pids``, the pools in turn figure by figure; a
    figure whose run failed is the string "failed" (the error is logged) and the
    others are still taken."""
    out: dict[str, dict[str, float | str]] = {pool: {} for pool in pids}
    for command, args, timeout, fields in pool_runs(sizes):
        for pool, pid in pids.items():
            if pool == "pyrivet-relaxed" and not set(fields) & set(RELAXED_FIGURES):
                continue
            log(f"{pool}: {command} {' '.join(args[:2])}")
            try:
                argv = [*args, "--server-pids", str(pid)]
                result = client(command, endpoint, pool, argv, timeout)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                log(f"{pool}: {command} failed: {str(exc)[:300]}")
                out[pool].update(dict.fromkeys(fields, "failed"))
                continue
            for key, path in fields.items():
                value: Any = result
                for part in path:
                    value = value[part]
                out[pool][key] = float(value)
    return out


# ------------------------------------------------------------------ the table


def fmt(kind: str, value: float | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if kind == "us":
        return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.0f} µs"
    if kind == "kb":
        return f"{value:.1f} KiB"
    return f"{value:,.1f}"


ROWS = [
    ("WebSocket action p50 (subscribed to the event)", "ws_p50", "us", "ws_floor_p50"),
    ("WebSocket action p99 (subscribed to the event)", "ws_p99", "us", "ws_floor_p99"),
    ("WebSocket action p50 (not subscribed)", "quiet_p50", "us", "ws_floor_p50"),
    ("WebSocket action p99 (not subscribed)", "quiet_p99", "us", "ws_floor_p99"),
    ("HTTP action p50", "http_p50", "us", "http_floor_p50"),
    ("HTTP action p99", "http_p99", "us", "http_floor_p99"),
    ("calls/s, 64 callers over 64 actors (WebSocket)", "calls_per_s", "n", None),
    ("cold start per actor, p50", "cold_p50", "us", None),
    ("RSS per awake actor (envoy process)", "kb_per_actor", "kb", None),
]


def print_table(figures: dict[str, dict[str, float | str]], floors: dict[str, float]) -> None:
    py, rk = figures.get("pyrivet", {}), figures.get("rivetkit", {})
    relaxed = figures.get("pyrivet-relaxed", {})
    print(f"\nload average (1 min) {os.getloadavg()[0]:.2f}")
    print(
        "| figure | pyrivet envoy (strict) | pyrivet envoy (relaxed) | RivetKit 2.3.19 envoy "
        "| floor: the engine's hop (raw echo) |"
    )
    print("|---|---|---|---|---|")
    for title, key, kind, floor in ROWS:
        mine, theirs = py.get(key), rk.get(key)
        mark = ""
        if isinstance(mine, float) and theirs is not None:
            lower_is_better = kind in ("us", "kb")
            if isinstance(theirs, str):
                ahead = True  # RivetKit's envoy did not produce the figure
            else:
                ahead = mine <= theirs if lower_is_better else mine >= theirs
            mark = " ✓" if ahead else " ✗"
        floor_cell = fmt(kind, floors.get(floor)) if floor else "-"
        loose = relaxed.get(key)
        print(
            f"| {title} | {fmt(kind, mine)}{mark} | {fmt(kind, loose)} | {fmt(kind, theirs)} "
            f"| {floor_cell} |"
        )
    if "standalone_ws_p50" not in floors:
        return
    hop = floors["ws_floor_p50"] - floors["standalone_echo_p50"]
    durable_hop = floors["durable_floor_p50"] - floors["standalone_durable_p50"]
    print(
        f"\nstandalone pyrivet: WebSocket action p50 {fmt('us', floors['standalone_ws_p50'])}, "
        f"raw echo p50 {fmt('us', floors['standalone_echo_p50'])}, durable echo p50 "
        f"{fmt('us', floors['standalone_durable_p50'])}. Through the engine: raw echo "
        f"{fmt('us', floors['ws_floor_p50'])}, durable echo "
        f"{fmt('us', floors['durable_floor_p50'])}. The engine's hop {fmt('us', hop)}; "
        f"with one commit {fmt('us', durable_hop)}."
    )
    for label, key in (("subscribed", "ws_p50"), ("not subscribed", "quiet_p50")):
        value = py.get(key)
        for hop_name, extra in (("hop", hop), ("durable hop", durable_hop)):
            bound = floors["standalone_ws_p50"] + extra + 2000
            verdict = (
                "not measured"
                if not isinstance(value, float)
                else "met"
                if value <= bound
                else "missed"
            )
            print(
                f"target: envoy WebSocket p50 ({label}) {fmt('us', value)} <= standalone + "
                f"{hop_name} + 2 ms = {fmt('us', bound)}: {verdict}"
            )
    print(
        "✓: pyrivet (strict) ahead of RivetKit's envoy on that figure (or RivetKit's "
        "failed); the relaxed pool replies before its state reaches the engine, as RivetKit does"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it works")
    parser.add_argument(
        "--only", choices=POOLS, help="measure one envoy (no standalone floors either)"
    )
    options = parser.parse_args()
    sizes = QUICK if options.quick else FULL
    pools = [options.only] if options.only else list(POOLS)
    if not ENGINE_BINARY.is_file():
        raise SystemExit(
            f"no engine binary at {ENGINE_BINARY}: npm install in tests/conformance/js"
        )
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        work = Path(tmp)
        floors: dict[str, float] = {}
        with contextlib.ExitStack() as stack:
            engine = stack.enter_context(engine_process(work))
            endpoint = f"http://127.0.0.1:{engine.port}"
            pids: dict[str, int] = {}
            if "pyrivet" in pools:
                pids["pyrivet"] = stack.enter_context(pyrivet_envoy(work, endpoint)).pid
            if "pyrivet-relaxed" in pools:
                relaxed = pyrivet_envoy(work, endpoint, "relaxed")
                pids["pyrivet-relaxed"] = stack.enter_context(relaxed).pid
            if "rivetkit" in pools:
                pids["rivetkit"] = stack.enter_context(rivetkit_envoy(work, endpoint)).pid
            if "pyrivet" in pools:
                log("the engine's hop: raw echo and durable echo through the gateway")
                floors.update(engine_floors(endpoint, sizes))
            figures = measure_pools(endpoint, pids, sizes)
        if "pyrivet" in pools and not options.only:
            floors.update(standalone_floors(work, sizes))
    print_table(figures, floors)


def engine_floors(endpoint: str, sizes: Sizes) -> dict[str, float]:
    ws = run_async(echo_ws(echo_url(endpoint, "ws", "pyrivet"), sizes.n, sizes.warmup), 600)
    durable = run_async(
        echo_ws(echo_url(endpoint, "ws", "pyrivet", "durable_echo"), sizes.n, sizes.warmup), 600
    )
    http = run_async(
        echo_http(echo_url(endpoint, "http", "pyrivet"), sizes.http_n, sizes.warmup), 900
    )
    return {
        "ws_floor_p50": ws["p50"],
        "ws_floor_p99": ws["p99"],
        "durable_floor_p50": durable["p50"],
        "http_floor_p50": http["p50"],
        "http_floor_p99": http["p99"],
    }


def standalone_floors(work: Path, sizes: Sizes) -> dict[str, float]:
    with pyrivet_server(work, "strict", app="engine_app:registry") as server:
        base = f"http://127.0.0.1:{server.port}"
        log("standalone pyrivet: WebSocket latency, raw echo and durable echo")
        lat = ["--mode", "conn", "--n", str(sizes.n), "--warmup", str(sizes.warmup)]
        ws = client("latency", base, None, lat, 600)["latency_us"]["p50"]
        n, warmup = sizes.n, sizes.warmup
        echo = run_async(echo_ws(echo_url(base, "ws", "default"), n, warmup), 600)
        durable = run_async(
            echo_ws(echo_url(base, "ws", "default", "durable_echo"), n, warmup), 600
        )
    return {
        "standalone_ws_p50": ws,
        "standalone_echo_p50": echo["p50"],
        "standalone_durable_p50": durable["p50"],
    }


if __name__ == "__main__":
    main()
