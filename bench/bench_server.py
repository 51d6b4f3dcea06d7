"""Benchmark of ``pyrivet serve`` over loopback, next to its floor and RivetKit 2.3.19.

    . .venv/bin/activate
    python bench/bench_server.py                  # 3 runs, ~8 min, prints the table
    python bench/bench_server.py --quick          # 3 small runs, ~1.5 min, a smoke run
    python bench/bench_server.py --durability relaxed        # the counter saves once a second
    python bench/bench_server.py --rivetkit recorded         # RECORDED.md's RivetKit column
    python bench/bench_server.py --rivetkit-results /tmp/rk/data/results.jsonl

Each run starts fresh servers (subprocesses on free loopback ports, stopped by PID at
the end), with the counter actor of ``bench/counter_app.py`` (state ``{count}``,
``increment(n)`` broadcasts ``newCount`` and returns the count):

* the floor: ``bench/echo_floor.py``, a raw WebSocket/HTTP echo app on the same
  uvicorn settings as ``pyrivet serve``;
* ``pyrivet serve counter_app:registry --log-level warning`` on a new SQLite data
  directory (durability "strict" unless ``--durability relaxed``).

Both are measured with two clients, each next to a floor taken with the libraries it
uses underneath:

* the official RivetKit client (``rivetkit/client`` 2.3.19 on Node, from
  ``tests/conformance/js/node_modules``): ``bench/js/client.mjs``; floor
  ``bench/js/floor.mjs`` (``ws`` 8.23 and Node's ``fetch``, what that client uses);
* pyrivet's network client (``pyrivet.client.Client(url)``); floor with ``websockets``
  and ``aiohttp``, what it uses.

Figures: sequential ``increment(1)`` on one actor over a WebSocket (subscribed to
``newCount``) and over HTTP, p50/p99; calls/s with 64 callers over 64 actors (one loop
per actor) over WebSockets and over HTTP; server RSS growth per idle WebSocket
connection with 10,000 connections to one actor, each subscribed (a fresh server for
each client; the floor holds the same number of raw echo sockets). Every figure is the
median of ``--runs`` runs (3), with the range of the runs. The RivetKit column is
not measured by this script (the real stack takes ~15 min for these figures): by
default it holds the figures measured on this machine on 2026-11-22 with the anchors
harness (``/work/shared/anchors/rivetkit-node``; ``bench/README.md`` has the commands),
``--rivetkit recorded`` shows ``/work/shared/anchors/RECORDED.md``'s instead, and
``--rivetkit-results FILE`` takes the medians of the JSON lines written by the
harness (``run-bench.sh`` / ``bench.mjs``) or by ``bench/js/client.mjs``.

A client floor for the JS client: ``bench/canned_floor.py`` (pyrivet with every counter
call answered by a middleware with pyrivet's exact frames, encoded ahead) measured with
the same sequential ``client.mjs`` calls; printed as a row under the WebSocket p50 with
the split echo floor + client's own work + pyrivet's server path. Not a target.

A third floor, the one-commit floor: a bare SQLite WAL commit with synchronous=FULL
(``bench_core.commit_floor``), what a strict reply waits for at least. On this kind of
machine a commit costs a round trip more than its bare time (the code after an fsync
runs slower), so strict runs also measure the two together: ``echo_floor.py
--commit``, the echo app doing one bare commit on its loop before each answer, timed
with both clients as the plain echo. It is printed as a row "floor: echo + one commit"
under the WebSocket and HTTP p50, and those rows' target cells also say how far above
it pyrivet is ("echo+commit floor + X": the median of the runs' own gaps, as each run
measures its floor a minute or so before its figure).

Targets (printed, never asserted): WebSocket action p50 at most 1.5x the echo floor
measured by the same client (relaxed), at most that floor + the one-commit floor +
100 µs (strict); ahead of RivetKit on every figure. Other work on the
machine moves these figures: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_core import (  # this folder is sys.path[0] when run as a script
    commit_floor,
    paired_gap,
)

BENCH_DIR = Path(__file__).resolve().parent
JS_DIR = BENCH_DIR / "js"
NODE_MODULES = BENCH_DIR.parent / "tests" / "conformance" / "js" / "node_modules"
PAYLOAD = bytes(32)  # floor message size, about that of an ActionRequest frame


@dataclass(frozen=True)
class Sizes:
    """How much each measurement does."""

    runs: int
    n: int  # timed sequential calls
    warmup: int
    actors: int
    seconds: float  # throughput window
    conns: int  # idle connections for the memory figure
    settle: float  # seconds before each RSS reading


FULL = Sizes(runs=3, n=2000, warmup=200, actors=64, seconds=8, conns=10_000, settle=2)
QUICK = Sizes(runs=3, n=300, warmup=50, actors=64, seconds=2, conns=1000, settle=0.5)

#: RivetKit 2.3.19 measured on this machine on 2026-11-22 with the anchors harness
#: (medians of 3 runs; the commands are in bench/README.md): µs, calls/s, KiB.
RIVETKIT_MEASURED = {
    "ws_p50": 48_001.7,
    "ws_p99": 93_815.2,
    "http_p50": 114_216.2,
    "http_p99": 130_608.9,
    "tp_ws": 186.7,
    "tp_ws_live": 39,
    "tp_http": 20.2,
    "tp_http_live": 64,
    "conn_kb": 275.58,
    "conn_open": 2246,
}
RIVETKIT_MEASURED_NOTE = (
    "measured 2026-11-22 05:32-05:46 on this machine with the anchors harness "
    "(latency 300 calls x 3, throughput 20 s x 3, 1 connection run; bench/README.md), "
    "not in this run"
)
#: RivetKit 2.3.19 as recorded on 2026-11-22 (RECORDED.md).
RIVETKIT_RECORDED = {
    "ws_p50": 45_000.0,
    "ws_p99": 54_000.0,
    "http_p50": 100_000.0,
    "http_p99": 145_000.0,
    "tp_ws": 125.0,
    "tp_http": 11.0,
}
RIVETKIT_RECORDED_NOTE = (
    "recorded 2026-11-22 (RECORDED.md; WebSocket figures probably without the "
    "newCount subscription: subscribed, the harness measured p50 51.8 ms, 84.8 calls/s)"
)


# ------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A server subprocess on a loopback port; `stop` ends exactly this process."""

    def __init__(self, name: str, argv: list[str], port: int, log_dir: Path, **popen: Any):
        self.name = name
        self.port = port
        self.log_path = log_dir / f"{name}-{port}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **popen
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, path: str, timeout: float = 30.0) -> None:
        """Wait until GET ``path`` answers 200 (raises with the log tail otherwise)."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}{path}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
            time.sleep(0.1)
        self.stop()
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.name} did not come up on port {self.port}:\n{tail}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s; only this process, by its PID."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


@contextlib.contextmanager
def echo_server(log_dir: Path, *, commit: bool = False) -> Iterator[ServerProcess]:
    """``bench/echo_floor.py``; with ``commit``, ``--commit`` (its database in a new
    directory under ``log_dir``, removed after)."""
    port = free_port()
    argv = [sys.executable, str(BENCH_DIR / "echo_floor.py"), "--port", str(port)]
    data_dir = None
    if commit:
        data_dir = tempfile.mkdtemp(prefix="echo-commit-", dir=log_dir)
        argv += ["--commit", "--data-dir", data_dir]
    server = ServerProcess("echo-commit" if commit else "echo", argv, port, log_dir)
    try:
        server.wait_ready("/")
        yield server
    finally:
        server.stop()
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def canned_server(log_dir: Path) -> Iterator[ServerProcess]:
    """``bench/canned_floor.py``: pyrivet with every counter call answered by canned frames."""
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="canned-", dir=log_dir)
    argv = [sys.executable, str(BENCH_DIR / "canned_floor.py"), "--port", str(port)]
    argv += ["--data-dir", data_dir]
    with _served_on(
        data_dir, ServerProcess("canned", argv, port, log_dir, cwd=BENCH_DIR)
    ) as server:
        yield server


@contextlib.contextmanager
def pyrivet_server(
    log_dir: Path, durability: str, app: str = "counter_app:registry"
) -> Iterator[ServerProcess]:
    """``pyrivet serve APP`` (an app of this folder) on a new data directory."""
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="data-", dir=log_dir)
    argv = [
        sys.executable,
        "-m",
        "pyrivet",
        "serve",
        app,
        "--port",
        str(port),
        "--data-dir",
        data_dir,
        "--log-level",
        "warning",
    ]
    env = {**os.environ, "PYRIVET_BENCH_DURABILITY": durability}
    server = ServerProcess("pyrivet", argv, port, log_dir, cwd=BENCH_DIR, env=env)
    with _served_on(data_dir, server):
        yield server


@contextlib.contextmanager
def _served_on(data_dir: str, server: ServerProcess) -> Iterator[ServerProcess]:
    """``server`` once it answers ``/metadata``; stopped, and ``data_dir`` removed, after."""
    try:
        server.wait_ready("/metadata")
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


# ------------------------------------------------------------------ measuring helpers


def percentiles(samples_us: list[float]) -> dict[str, float]:
    """Nearest-rank p50/p99 and mean, as bench.mjs computes them."""
    ordered = sorted(samples_us)

    def pick(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return {
        "count": len(ordered),
        "p50": pick(50),
        "p99": pick(99),
        "mean": statistics.fmean(ordered),
    }


def proc_reading(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS KiB) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return cpu, rss


async def timed_loop(call: Callable[[], Awaitable[Any]], n: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        await call()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await call()
        samples.append((time.perf_counter_ns() - t0) / 1000)
    return samples


async def bounded_pool(n: int, concurrency: int, task: Callable[[], Awaitable[None]]) -> None:
    remaining = iter(range(n))

    async def worker() -> None:
        for _ in remaining:
            await task()

    await asyncio.gather(*(worker() for _ in range(min(n, concurrency))))


def run_async(coro: Awaitable[dict[str, Any]], timeout: float) -> dict[str, Any]:
    """Run one Python-client measurement on a fresh event loop, bounded in time."""

    async def bounded() -> dict[str, Any]:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def run_node(
    script: str, args: list[str], timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run a bench/js script (``env`` added to its environment); returns its last JSON line."""
    argv = ["node", str(JS_DIR / script), *args, "--timeout-s", str(int(timeout))]
    env = {**os.environ, "RIVETKIT_NODE_MODULES": str(NODE_MODULES), **(env or {})}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{script} {args[0]} failed ({done.returncode}): {done.stderr[-1500:]}")
    return dict(json.loads(lines[-1]))


# ------------------------------------------------------------------ Python client


async def py_floor_ws(url: str, n: int, warmup: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    async with connect(url) as ws:

        async def echo() -> None:
            await ws.send(PAYLOAD)
            await ws.recv()

        samples = await timed_loop(echo, n, warmup)
    return {"latency_us": percentiles(samples)}


async def py_floor_http(url: str, n: int, warmup: int) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as http:

        async def echo() -> None:
            async with http.post(url, data=PAYLOAD) as response:
                response.raise_for_status()
                await response.read()

        samples = await timed_loop(echo, n, warmup)
    return {"latency_us": percentiles(samples)}


async def py_floor_conns(url: str, n: int, pid: int, settle: float) -> dict[str, Any]:
    from websockets.asyncio.client import ClientConnection, connect

    async def open_one() -> ClientConnection:
        ws = await connect(url)
        await ws.send(PAYLOAD)
        await ws.recv()
        return ws

    first = await open_one()
    await asyncio.sleep(settle)
    _, before = proc_reading(pid)
    sockets: list[ClientConnection] = []

    async def task() -> None:
        sockets.append(await open_one())

    await bounded_pool(n, 64, task)
    await asyncio.sleep(settle)
    _, after = proc_reading(pid)
    await asyncio.gather(*(ws.close() for ws in [first, *sockets]), return_exceptions=True)
    return {"open": len(sockets), "rss_kb_per_conn": (after - before) / len(sockets)}


async def py_latency(endpoint: str, mode: str, n: int, warmup: int, pid: int) -> dict[str, Any]:
    from pyrivet.client import Client

    async with Client(endpoint) as client:
        handle = client.get_or_create("counter", [f"py-lat-{mode}-{time.time_ns()}"])
        cpu0, _ = proc_reading(pid)
        t0 = time.perf_counter()
        if mode == "handle":
            samples = await timed_loop(lambda: handle.increment(1), n, warmup)
        else:
            events: list[int] = []
            async with handle.connect() as conn:
                conn.on("newCount", events.append)
                samples = await timed_loop(lambda: conn.increment(1), n, warmup)
            if len(events) < n:
                raise RuntimeError(f"only {len(events)} newCount events for {n + warmup} calls")
        cpu1, _ = proc_reading(pid)
    wall = time.perf_counter() - t0
    return {
        "latency_us": percentiles(samples),
        "server_cpu_percent_of_core": 100 * (cpu1 - cpu0) / wall,
    }


def increment_caller(target: Any) -> Callable[[], Awaitable[Any]]:
    """A call of ``target.increment(1)`` that looks the action up on each call, as user
    code does (``target`` is a handle or a connection)."""
    return lambda: target.increment(1)


async def py_throughput(
    endpoint: str, mode: str, actors: int, seconds: float, pid: int
) -> dict[str, Any]:
    from pyrivet.client import ActorConnection, Client

    async with Client(endpoint) as client, contextlib.AsyncExitStack() as stack:
        callers: list[Callable[[], Awaitable[Any]]] = []
        for i in range(actors):
            handle = client.get_or_create("counter", [f"py-tp-{mode}-{time.time_ns()}-{i}"])
            if mode == "handle":
                callers.append(increment_caller(handle))
            else:
                conn: ActorConnection = await stack.enter_async_context(handle.connect())
                conn.on("newCount", lambda count: None)
                callers.append(increment_caller(conn))
        await asyncio.gather(*(call() for call in callers))  # wake every actor first
        done = 0
        cpu0, _ = proc_reading(pid)
        client_cpu0 = time.process_time()
        end = time.perf_counter() + seconds

        async def loop(call: Callable[[], Awaitable[Any]]) -> None:
            nonlocal done
            while time.perf_counter() < end:
                await call()
                if time.perf_counter() <= end:
                    done += 1

        await asyncio.gather(*(loop(call) for call in callers))
        cpu1, _ = proc_reading(pid)
        client_cpu = time.process_time() - client_cpu0
    return {
        "calls_per_s": done / seconds,
        "server_cpu_percent_of_core": 100 * (cpu1 - cpu0) / seconds,
        "client_cpu_percent_of_core": 100 * client_cpu / seconds,
    }


async def py_conns(endpoint: str, n: int, pid: int, settle: float) -> dict[str, Any]:
    from pyrivet.client import ActorConnection, Client

    async with Client(endpoint) as client:
        handle = client.get_or_create("counter", [f"py-conns-{time.time_ns()}"])
        events = 0

        def on_event(count: int) -> None:
            nonlocal events
            events += 1

        conns: list[ActorConnection] = []

        async def open_one() -> ActorConnection:
            conn = handle.connect()
            conn.on("newCount", on_event)
            await conn.open()
            await conn.getCount()
            return conn

        first = await open_one()
        await asyncio.sleep(settle)
        _, before = proc_reading(pid)

        async def task() -> None:
            conns.append(await open_one())

        t0 = time.perf_counter()
        await bounded_pool(n, 64, task)
        open_s = time.perf_counter() - t0
        await asyncio.sleep(settle)
        _, after = proc_reading(pid)
        await first.increment(1)
        for _ in range(300):  # every connection gets the event, within 30 s
            if events >= n + 1:
                break
            await asyncio.sleep(0.1)
        await asyncio.gather(*(c.close() for c in [first, *conns]), return_exceptions=True)
    return {
        "open": len(conns),
        "open_s": open_s,
        "rss_kb_per_conn": (after - before) / len(conns),
        "events_delivered": events,
    }


# ------------------------------------------------------------------ one run


@dataclass
class Results:
    """Figures by (client, name) over the runs."""

    values: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, client: str, name: str, value: float | None) -> None:
        if value is not None:
            self.values.setdefault((client, name), []).append(float(value))

    def get(self, client: str, name: str) -> list[float]:
        return self.values.get((client, name), [])


def cpu_per_call_us(throughput: dict[str, Any]) -> float | None:
    """Client CPU per call in µs, from a throughput result (None if no call finished)."""
    calls = throughput["calls_per_s"]
    return 1e4 * throughput["client_cpu_percent_of_core"] / calls if calls else None


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure_echo(echo: ServerProcess, sizes: Sizes, results: Results, prefix: str) -> None:
    """Sequential WebSocket and HTTP POST round trips to an echo server with both
    clients' libraries; p50/p99 added as ``{prefix}_ws_p50`` etc. of each client."""
    n, warmup = str(sizes.n), str(sizes.warmup)
    ws_url, http_url = f"ws://127.0.0.1:{echo.port}/", f"http://127.0.0.1:{echo.port}/"
    for kind, url in (("ws", ws_url), ("http", http_url)):
        r = run_node("floor.mjs", [kind, "--url", url, "--n", n, "--warmup", warmup], 120)
        results.add("js", f"{prefix}_{kind}_p50", r["latency_us"]["p50"])
        results.add("js", f"{prefix}_{kind}_p99", r["latency_us"]["p99"])
    r = run_async(py_floor_ws(ws_url, sizes.n, sizes.warmup), 120)
    results.add("py", f"{prefix}_ws_p50", r["latency_us"]["p50"])
    results.add("py", f"{prefix}_ws_p99", r["latency_us"]["p99"])
    r = run_async(py_floor_http(http_url, sizes.n, sizes.warmup), 120)
    results.add("py", f"{prefix}_http_p50", r["latency_us"]["p50"])
    results.add("py", f"{prefix}_http_p99", r["latency_us"]["p99"])


def one_run(sizes: Sizes, work: Path, durability: str, results: Results) -> None:
    n, warmup = str(sizes.n), str(sizes.warmup)
    lat_timeout = 60 + sizes.n * 0.05

    log("floor: echo server, sequential round trips")
    with echo_server(work) as echo:
        measure_echo(echo, sizes, results, "floor")

    if durability == "strict":
        log("floor: echo server with one bare commit before each echo, sequential round trips")
        with echo_server(work, commit=True) as echo:
            measure_echo(echo, sizes, results, "floor_commit")

    log("client floor: canned replies, the JS client's sequential WebSocket calls")
    with canned_server(work) as canned:
        args = ["latency", "--mode", "conn", "--n", n, "--warmup", warmup]
        args += ["--endpoint", f"http://127.0.0.1:{canned.port}", "--server-pids", str(canned.pid)]
        r = run_node("client.mjs", args, lat_timeout)
        if not r["count_matches"] or r["events_received"] < sizes.n + sizes.warmup:
            results.notes.append("js client floor: the canned count or events did not match")
        results.add("js", "client_floor_ws_p50", r["latency_us"]["p50"])

    log("floor: bare SQLite commits (what one strict reply waits for at least)")
    results.add("-", "commit_p50", commit_floor(sizes.n)[0] * 1e6)

    log(f"floor: {sizes.conns:,} idle echo sockets per client (a fresh server each)")
    with echo_server(work) as echo:
        ws_url = f"ws://127.0.0.1:{echo.port}/"
        args = ["conns", "--url", ws_url, "--server-pids", str(echo.pid), "--n", str(sizes.conns)]
        r = run_node("floor.mjs", [*args, "--settle-s", str(sizes.settle)], 240)
        results.add("js", "floor_conn_kb", r["rss_kb_per_conn"])
    with echo_server(work) as echo:
        url = f"ws://127.0.0.1:{echo.port}/"
        r = run_async(py_floor_conns(url, sizes.conns, echo.pid, sizes.settle), 240)
        results.add("py", "floor_conn_kb", r["rss_kb_per_conn"])

    log("pyrivet serve: latency and throughput, both clients")
    with pyrivet_server(work, durability) as server:
        endpoint, pid = f"http://127.0.0.1:{server.port}", server.pid
        common = ["--endpoint", endpoint, "--server-pids", str(pid)]
        for mode, key in (("conn", "ws"), ("handle", "http")):
            args = ["latency", "--mode", mode, "--n", n, "--warmup", warmup, *common]
            r = run_node("client.mjs", args, lat_timeout)
            if not r["count_matches"]:
                results.notes.append(f"js latency {mode}: the final count did not match")
            results.add("js", f"{key}_p50", r["latency_us"]["p50"])
            results.add("js", f"{key}_p99", r["latency_us"]["p99"])
            results.add("js", f"{key}_server_cpu", r["server_cpu_percent_of_core"])
            r = run_async(py_latency(endpoint, mode, sizes.n, sizes.warmup, pid), lat_timeout)
            results.add("py", f"{key}_p50", r["latency_us"]["p50"])
            results.add("py", f"{key}_p99", r["latency_us"]["p99"])
            results.add("py", f"{key}_server_cpu", r["server_cpu_percent_of_core"])
        for mode, key in (("conn", "ws"), ("handle", "http")):
            args = ["throughput", "--mode", mode, "--actors", str(sizes.actors)]
            args += ["--seconds", str(sizes.seconds), *common]
            r = run_node("client.mjs", args, sizes.seconds + 90)
            if r["errors"]:
                results.notes.append(f"js throughput {mode}: {r['errors']} errors")
            results.add("js", f"tp_{key}", r["calls_per_s"])
            results.add("js", f"tp_{key}_server_cpu", r["server_cpu_percent_of_core"])
            results.add("js", f"tp_{key}_client_cpu", r["client_cpu_percent_of_core"])
            results.add("js", f"tp_{key}_client_us", cpu_per_call_us(r))
            r = run_async(
                py_throughput(endpoint, mode, sizes.actors, sizes.seconds, pid), sizes.seconds + 90
            )
            results.add("py", f"tp_{key}", r["calls_per_s"])
            results.add("py", f"tp_{key}_server_cpu", r["server_cpu_percent_of_core"])
            results.add("py", f"tp_{key}_client_cpu", r["client_cpu_percent_of_core"])
            results.add("py", f"tp_{key}_client_us", cpu_per_call_us(r))

    log(f"pyrivet serve: {sizes.conns:,} idle connections per client (a fresh server each)")
    with pyrivet_server(work, durability) as server:
        args = ["conns", "--n", str(sizes.conns), "--endpoint", f"http://127.0.0.1:{server.port}"]
        args += ["--server-pids", str(server.pid), "--settle-s", str(sizes.settle)]
        r = run_node("client.mjs", args, 300)
        check_conns(results, "js", r, sizes.conns)
    with pyrivet_server(work, durability) as server:
        endpoint = f"http://127.0.0.1:{server.port}"
        r = run_async(py_conns(endpoint, sizes.conns, server.pid, sizes.settle), 300)
        check_conns(results, "py", r, sizes.conns)
    results.add("-", "loadavg", os.getloadavg()[0])


def check_conns(results: Results, client: str, r: dict[str, Any], n: int) -> None:
    results.add(client, "conn_kb", r["rss_kb_per_conn"])
    results.add(client, "conn_open_s", r["open_s"])
    if r["open"] != n or r["events_delivered"] < n:
        results.notes.append(
            f"{client} conns: {r['open']}/{n} open, {r['events_delivered']} events delivered"
        )


# ------------------------------------------------------------------ RivetKit figures


def rivetkit_from_results(path: Path) -> tuple[dict[str, float], str]:
    """Medians of the RivetKit lines (bench.mjs or client.mjs JSON) of a results file."""
    found: dict[str, list[float]] = {}
    lines = 0
    for line in path.read_text().splitlines():
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if r.get("endpoint", "http://127.0.0.1:6420") != "http://127.0.0.1:6420":
            continue  # a run of the harness against another server
        if r.get("encoding", "bare") != "bare" or r.get("events", "on") != "on":
            continue
        key = {"conn": "ws", "handle": "http"}.get(r.get("mode", ""))
        lines += 1
        if r["bench"] == "latency" and key and r["latency_us"].get("count"):
            found.setdefault(f"{key}_p50", []).append(r["latency_us"]["p50"])
            found.setdefault(f"{key}_p99", []).append(r["latency_us"]["p99"])
        elif r["bench"] == "throughput" and key:
            found.setdefault(f"tp_{key}", []).append(r["calls_per_s"])
            live = r.get("live_actors", r.get("actors"))
            found.setdefault(f"tp_{key}_live", []).append(live)
        elif r["bench"] == "conns" and r.get("open"):
            found.setdefault("conn_kb", []).append(r["rss_kb_per_conn"])
            found.setdefault("conn_open", []).append(r["open"])
    figures = {name: statistics.median(values) for name, values in found.items()}
    runs = {name: len(values) for name, values in found.items()}
    note = f"measured, medians of {path} ({lines} result lines; runs per figure {runs})"
    return figures, note


# ------------------------------------------------------------------ the table


def fmt_us(us: float) -> str:
    return f"{us / 1000:,.1f} ms" if us >= 10_000 else f"{us:,.0f} µs"


def fmt_value(kind: str, value: float) -> str:
    if kind == "us":
        return fmt_us(value)
    if kind == "calls":
        return f"{value:,.0f}/s"
    return f"{value:,.1f} KiB"


def cell(values: list[float], kind: str) -> str:
    if not values:
        return "-"
    mid = fmt_value(kind, statistics.median(values))
    if len(values) == 1:
        return mid
    return f"{mid} ({fmt_value(kind, min(values))} .. {fmt_value(kind, max(values))})"


ROWS = [
    # (figure, label, unit kind, floor figure, lower is better)
    ("ws_p50", "WebSocket action, sequential, p50", "us", "floor_ws_p50", True),
    (
        "client_floor_ws_p50",
        "client floor: the same calls answered with canned frames (canned_floor.py), p50",
        "us",
        "floor_ws_p50",
        True,
    ),
    (
        "floor_commit_ws_p50",
        "floor: echo + one commit (echo_floor.py --commit), WebSocket p50",
        "us",
        "floor_ws_p50",
        True,
    ),
    ("ws_p99", "WebSocket action, sequential, p99", "us", "floor_ws_p99", True),
    ("http_p50", "HTTP action, sequential, p50", "us", "floor_http_p50", True),
    (
        "floor_commit_http_p50",
        "floor: echo + one commit (echo_floor.py --commit), HTTP p50",
        "us",
        "floor_http_p50",
        True,
    ),
    ("http_p99", "HTTP action, sequential, p99", "us", "floor_http_p99", True),
    ("tp_ws", "calls/s, 64 callers x 64 actors, WebSocket", "calls", None, False),
    ("tp_http", "calls/s, 64 callers x 64 actors, HTTP", "calls", None, False),
    ("conn_kb", "server RSS per idle WebSocket connection", "kb", "floor_conn_kb", True),
]

#: Rows printed only for a client that has the figure (the client floor: JS only; the
#: echo + commit floors: strict runs only).
OPTIONAL_ROWS = {"client_floor_ws_p50", "floor_commit_ws_p50", "floor_commit_http_p50"}

#: Rows of a floor, not of pyrivet: their figure goes in the floor column, and the
#: target column says what they add to the plain echo floor of the row's "floor" figure.
FLOOR_ROWS = {"floor_commit_ws_p50", "floor_commit_http_p50"}

#: The echo + commit floor each strict latency row is also set against.
COMMIT_FLOORS = {"ws_p50": "floor_commit_ws_p50", "http_p50": "floor_commit_http_p50"}

CLIENTS = {
    "js": "official RivetKit client 2.3.19 (Node; floor: ws 8.23 / fetch)",
    "py": "pyrivet client (Python; floor: websockets / aiohttp)",
}


#: What a strict WebSocket action may add to the echo floor and one bare commit (issue 8).
STRICT_MARGIN_US = 100.0


def gap(ours: list[float], floor: list[float]) -> float:
    """How far ``ours`` is above ``floor``: the median of the runs' own gaps when both
    were measured in every run (`bench_core.paired_gap`: the disk's speed drifts
    between runs), else the gap of the medians."""
    if len(ours) == len(floor):
        return paired_gap(ours, floor)
    return statistics.median(ours) - statistics.median(floor)


def target_cell(
    name: str,
    lower: bool,
    ours: list[float],
    floor: list[float],
    rivetkit: float | None,
    commit: list[float] | None = None,
    echo_commit: list[float] | None = None,
) -> str:
    """The verdicts of one row. ``commit``: the one-commit floors of a strict run (the
    WebSocket p50 target is then echo floor + commit floor + `STRICT_MARGIN_US`; without
    it, 1.5x the echo floor). ``echo_commit``: the row's echo + commit floor
    (`COMMIT_FLOORS`), measured by the same client in a strict run; the cell then also
    says how far above it the row is."""
    if not ours:
        return "-"
    mine = statistics.median(ours)
    if name == "client_floor_ws_p50":
        return f"{mine / statistics.median(floor):.2f}x floor (not a target)" if floor else "-"
    if name in FLOOR_ROWS:
        if not floor:
            return "-"
        said = f"echo floor + {fmt_us(gap(ours, floor))}"
        if commit:
            said += f" (the one-commit floor alone: {fmt_us(statistics.median(commit))})"
        return f"{said}; not a target"
    verdicts = []
    if name == "ws_p50" and floor:
        ratio = mine / statistics.median(floor)
        if commit:
            bound = statistics.median(floor) + statistics.median(commit) + STRICT_MARGIN_US
            met = "met" if mine <= bound else "NOT met"
            verdicts.append(
                f"{ratio:.2f}x floor; ≤ floor + commit + {STRICT_MARGIN_US:.0f} µs "
                f"= {fmt_us(bound)}: {met}"
            )
        else:
            verdicts.append(f"{ratio:.2f}x floor (≤ 1.5x: {'met' if ratio <= 1.5 else 'NOT met'})")
    if rivetkit is not None:
        ahead = mine < rivetkit if lower else mine > rivetkit
        factor = rivetkit / mine if lower else mine / rivetkit
        verdicts.append(f"{'ahead' if ahead else 'NOT ahead'} of RivetKit ({factor:,.0f}x)")
    if echo_commit:
        verdicts.append(f"echo+commit floor + {fmt_us(gap(ours, echo_commit))}")
    return "; ".join(verdicts) or "-"


def ws_split(results: Results, client: str) -> str | None:
    """The WebSocket p50 split at the client floor: echo floor, the client's own work
    per call (client floor - echo floor), pyrivet's server path (p50 - client floor)."""
    floor = results.get(client, "floor_ws_p50")
    canned = results.get(client, "client_floor_ws_p50")
    ours = results.get(client, "ws_p50")
    if not (floor and canned and ours):
        return None
    f, c, o = (statistics.median(v) for v in (floor, canned, ours))
    return (
        f"WebSocket p50 split (medians): echo floor {fmt_us(f)} + client's own work "
        f"{fmt_us(c - f)} (client floor - echo floor) + pyrivet's server path "
        f"{fmt_us(o - c)} (p50 - client floor)"
    )


def print_table(
    results: Results, rivetkit: dict[str, float], rivetkit_note: str, sizes: Sizes, args: Any
) -> None:
    loads = results.get("-", "loadavg")
    print()
    print(
        f"pyrivet serve benchmark: {sizes.runs} run(s), medians (range of runs); "
        f"durability {args.durability}; {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}, load average 1 min at the end of each run: "
        + ", ".join(f"{x:.1f}" for x in loads)
    )
    print(
        f"sizes: {sizes.n:,} timed calls after {sizes.warmup} warm-up; throughput "
        f"{sizes.actors} actors for {sizes.seconds:g} s; {sizes.conns:,} idle connections"
    )
    print(f"RivetKit 2.3.19 column: {rivetkit_note}")
    commits = results.get("-", "commit_p50")
    commit = commits if args.durability == "strict" else None
    if commits:
        print(
            "one-commit floor (a bare SQLite WAL commit, synchronous=FULL, on the disk of "
            f"the data directory), p50: {cell(commits, 'us')}"
        )
    for client, title in CLIENTS.items():
        print()
        print(f"### {title}")
        print()
        print("| figure | floor | pyrivet serve | RivetKit 2.3.19 | target |")
        print("|---|---|---|---|---|")
        for name, label, kind, floor_name, lower in ROWS:
            ours = results.get(client, name)
            if name in OPTIONAL_ROWS and not ours:
                continue
            floor = results.get(client, floor_name) if floor_name else []
            if name in FLOOR_ROWS:
                target = target_cell(name, lower, ours, floor, None, commit)
                print(f"| {label} | {cell(ours, kind)} | - | - | {target} |")
                continue
            rk = rivetkit.get(name) if client == "js" else None
            rk_cell = fmt_value(kind, rk) if rk is not None else "-"
            if client == "js" and name == "conn_kb" and rk is not None:
                rk_cell += f" ({rivetkit.get('conn_open', 0):,.0f} conns opened)"
            live = rivetkit.get(f"{name}_live")
            if client == "js" and live is not None and live < sizes.actors:
                rk_cell += f" ({live:.0f} of {sizes.actors} actors woke)"
            if client == "js" and name == "conn_kb" and rk is None:
                rk_cell = "not measured (recorded: 1.1-1.4 MB per awake actor)"
            echo_commit = results.get(client, COMMIT_FLOORS[name]) if name in COMMIT_FLOORS else []
            target = target_cell(name, lower, ours, floor, rk, commit, echo_commit or None)
            print(
                f"| {label} | {cell(floor, kind) if floor_name else '-'} "
                f"| {cell(ours, kind)} | {rk_cell} | {target} |"
            )
        cpu = [
            f"server CPU {statistics.median(results.get(client, k)):.0f} % of a core ({what})"
            for k, what in (
                ("ws_server_cpu", "sequential WebSocket"),
                ("tp_ws_server_cpu", "64 x WebSocket"),
                ("tp_http_server_cpu", "64 x HTTP"),
            )
            if results.get(client, k)
        ]
        client_cpu = [
            f"client CPU {statistics.median(results.get(client, k)):.0f} % "
            f"= {statistics.median(results.get(client, f'{k[:-4]}_us') or [0]):.0f} µs per call"
            f" ({what})"
            for k, what in (("tp_ws_client_cpu", "64 x WebSocket"), ("tp_http_client_cpu", "HTTP"))
            if results.get(client, k)
        ]
        opening = results.get(client, "conn_open_s")
        extra = [*cpu, *client_cpu]
        split = ws_split(results, client)
        if split:
            extra.append(split)
        if opening:
            extra.append(
                f"{sizes.conns:,} connections opened in {statistics.median(opening):.1f} s"
            )
        print()
        print("; ".join(extra))
    if results.notes:
        print()
        print("notes: " + "; ".join(results.notes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, < 2 min")
    parser.add_argument("--runs", type=int, help="runs to take medians over (3)")
    parser.add_argument("--conns", type=int, help="idle connections for the memory figure")
    parser.add_argument(
        "--durability", choices=["strict", "relaxed"], default="strict", help="of the counter"
    )
    parser.add_argument(
        "--rivetkit",
        choices=["measured", "recorded"],
        default="measured",
        help="built-in RivetKit figures: measured here on 2026-11-22, or RECORDED.md's",
    )
    parser.add_argument(
        "--rivetkit-results",
        type=Path,
        help="JSON lines of RivetKit runs (anchors harness / bench/js/client.mjs) instead",
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    if args.runs or args.conns:
        sizes = dataclasses.replace(
            sizes, runs=args.runs or sizes.runs, conns=args.conns or sizes.conns
        )
    if not (NODE_MODULES / "rivetkit").is_dir() or shutil.which("node") is None:
        raise SystemExit(f"needs node and the RivetKit client in {NODE_MODULES} (npm install)")
    if args.rivetkit_results:
        rivetkit, rivetkit_note = rivetkit_from_results(args.rivetkit_results)
    elif args.rivetkit == "recorded":
        rivetkit, rivetkit_note = RIVETKIT_RECORDED, RIVETKIT_RECORDED_NOTE
    else:
        rivetkit, rivetkit_note = RIVETKIT_MEASURED, RIVETKIT_MEASURED_NOTE

    results = Results()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pyrivet-bench-server-") as tmp:
        for run in range(1, sizes.runs + 1):
            log(f"run {run}/{sizes.runs}")
            one_run(sizes, Path(tmp), args.durability, results)
    log(f"done in {time.monotonic() - started:.0f} s")
    print_table(results, rivetkit, rivetkit_note, sizes, args)


if __name__ == "__main__":
    main()
