"""Sequential WebSocket actions against ``pyrivet serve``, for the server's CPU, system
calls and instruction counts per call (not a latency benchmark: see ``bench_server.py``).

    python bench/prof_server_ws.py strict 3000      # server threads' CPU and switches / call
    python bench/prof_server_ws.py strict 3000 --synchronous NORMAL  # same work, no fsync
    python bench/prof_server_ws.py echo 3000        # the echo floor server, same figures
    python bench/prof_server_ws.py echo-commit 3000 # the echo + one commit floor server
    python bench/prof_server_ws.py relaxed 1000 --wrap "strace -ff -o /tmp/st/t"
    # instructions per call, per thread: (count at 1000 - count at 200) / 800
    python bench/prof_server_ws.py strict 200 --wrap "valgrind --tool=callgrind \
        --separate-threads=yes --callgrind-out-file=/tmp/cg.strict.200"   # and 1000

``--client js`` drives the calls with the official RivetKit client instead
(``js/client.mjs latency --mode conn``: its own 300 warm-up calls, then N; prints its
p50, the server's CPU per call and the client's CPU from that script's readings). Mode
``canned`` (with ``--client js``) runs ``canned_floor.py``: pyrivet behind canned
replies, every call answered with pyrivet's frames without reaching the actor.

Mode ``echo`` runs the echo floor server (``echo_floor.py``) instead, with a raw
``websockets`` client sending 32 bytes and waiting for them back; ``echo-commit`` the
same server with ``--commit`` (one bare SQLite commit on its loop before each echo, its
database in the fresh data directory: the floor of a strict call). Otherwise it starts
``pyrivet serve counter_app:registry`` (through ``--wrap`` if given) on a fresh
data directory with ``PYRIVET_BENCH_DURABILITY`` set to the mode, then one pyrivet
client connection to ``counter["a"]`` subscribed to ``newCount``: 300 warm-up
``increment(1)`` calls, then N measured ones, one at a time. Prints the client's p50
and, per measured call, the CPU time and the voluntary / involuntary context switches
of each server thread (``/proc``; under a wrapper the server's own). The server is
stopped with SIGTERM (a graceful stop: callgrind writes its counts then).

The store's inline budget clock is frozen (unless ``--no-freeze-inline-clock``) so that
a slow run (valgrind) does not send commits to the writer thread: a run then does the
same work as an unwrapped one. ``--synchronous NORMAL`` runs the store without its
fsyncs (same instructions, no wait for the disk); ``--no-inline`` sends every commit to
the store's writer thread; ``--cprofile FILE`` writes the server's cProfile stats
(these three need the frozen clock's launcher).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from websockets.asyncio.client import connect

from bench_server import JS_DIR, NODE_MODULES, free_port  # this folder is sys.path[0]
from pyrivet.client import Client

BENCH_DIR = Path(__file__).resolve().parent
#: Runs the server with the store's inline-budget clock frozen (see the docstring).
LAUNCH = (
    "import os, sys; from pyrivet.storage import _sqlite; _sqlite._perf_counter = lambda: 0.0; "
    "from pyrivet.storage import _sqlite_writer as w; i = w.Writer.__init__; "
    "w.Writer.__init__ = lambda s, p, y, g: i(s, p, os.environ['PROF_SYNC'] or y, g); "
    "_sqlite.SQLiteDriver.__init__.__kwdefaults__['inline'] = not os.environ['PROF_NO_INLINE']; "
    "from pyrivet.cli import main; sys.argv[0] = 'pyrivet'; out = os.environ.get('PROF_CPROFILE')\n"
    "if out:\n import cProfile; p = cProfile.Profile(); p.enable()\n"
    "try: main()\nfinally:\n if out: p.disable(); p.dump_stats(out)"
)


def server_pid(proc: subprocess.Popen[bytes]) -> int:
    """The server's PID: ``proc``'s, or its child's under a wrapper that forks (strace)."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    return int(children[0]) if children else proc.pid


def thread_cpu(pid: int) -> dict[str, tuple[int, int, int, int]]:
    """{"tid:name": (user ticks, system ticks, voluntary and involuntary context
    switches)} of every thread of ``pid``."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines()
        except FileNotFoundError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        switches = {k: int(v) for k, _, v in (line.partition(":") for line in status[-2:])}
        out[f"{tid}:{name}"] = (
            int(fields[11]),
            int(fields[12]),
            switches["voluntary_ctxt_switches"],
            switches["nonvoluntary_ctxt_switches"],
        )
    return out


async def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(6000):
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
        else:
            w.close()
            return
    raise SystemExit("the server did not listen within 600 s")


async def measure(
    call: Callable[[], Awaitable[object]], n: int, proc: subprocess.Popen[bytes]
) -> tuple[
    list[float], float, dict[str, tuple[int, int, int, int]], dict[str, tuple[int, int, int, int]]
]:
    """300 warm-up calls, then ``n`` timed ones: (latencies, wall time, CPU before, after)."""
    for _ in range(300):
        await call()
    before = thread_cpu(server_pid(proc))
    lat = []
    t0 = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        await call()
        lat.append(time.perf_counter() - t)
    wall = time.perf_counter() - t0
    return lat, wall, before, thread_cpu(server_pid(proc))


async def js_calls(port: int, n: int, proc: subprocess.Popen[bytes]) -> None:
    """``js/client.mjs latency`` with 300 warm-up calls and ``n`` timed ones; its figures."""
    await wait_listening(port, proc)
    argv = ["node", str(JS_DIR / "client.mjs"), "latency", "--mode", "conn", "--n", str(n)]
    argv += ["--warmup", "300", "--endpoint", f"http://127.0.0.1:{port}", "--timeout-s", "3000"]
    argv += ["--call-timeout-s", "600"]
    argv += ["--server-pids", str(server_pid(proc))]
    env = dict(os.environ, RIVETKIT_NODE_MODULES=str(NODE_MODULES))
    node = await asyncio.create_subprocess_exec(*argv, env=env, stdout=subprocess.PIPE)
    out, _ = await node.communicate()
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    if node.returncode != 0 or not lines:
        raise SystemExit(f"client.mjs failed ({node.returncode})")
    r = json.loads(lines[-1])
    wall_us = 1e6 / r["calls_per_s"]
    print(
        f"p50 {r['latency_us']['p50']:.0f} µs, wall/call {wall_us:.0f} µs (JS client); "
        f"server CPU {r['server_cpu_ms_per_call'] * 1000:.0f} µs / call; client CPU "
        f"{r['client_cpu_percent_of_core'] * wall_us / 100:.0f} µs / call; "
        f"count matches: {r['count_matches']}, events {r['events_received']}"
    )


async def calls(port: int, n: int, proc: subprocess.Popen[bytes], echo: bool) -> None:
    await wait_listening(port, proc)
    if echo:
        async with connect(f"ws://127.0.0.1:{port}/") as ws:

            async def round_trip() -> None:
                await ws.send(bytes(32))
                await ws.recv()

            lat, wall, before, after = await measure(round_trip, n, proc)
    else:
        async with Client(f"http://127.0.0.1:{port}") as client:
            conn = client.get_or_create("counter", ["a"]).connect()
            async with conn:
                conn.on("newCount", lambda *a: None)
                lat, wall, before, after = await measure(lambda: conn.increment(1), n, proc)
    tick = os.sysconf("SC_CLK_TCK")
    print(f"p50 {statistics.median(lat) * 1e6:.0f} µs, wall/call {wall / n * 1e6:.0f} µs")
    for key, (user, sys_, vol, invol) in after.items():
        if key in before:
            du, ds = user - before[key][0], sys_ - before[key][1]
            if du + ds:
                per = 1e6 / tick / n
                print(
                    f"  thread {key}: {(du + ds) * per:.0f} µs CPU / call "
                    f"(user {du * per:.0f}, sys {ds * per:.0f}); context switches / call: "
                    f"{(vol - before[key][2]) / n:.2f} voluntary, "
                    f"{(invol - before[key][3]) / n:.2f} involuntary"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["strict", "relaxed", "echo", "echo-commit", "canned"])
    parser.add_argument("n", type=int)
    parser.add_argument("--wrap", default="", help="command to run the server under")
    parser.add_argument("--no-freeze-inline-clock", action="store_true")
    parser.add_argument(
        "--synchronous",
        choices=["FULL", "NORMAL"],
        default="",
        help="the store's synchronous setting (NORMAL: a commit does not fsync)",
    )
    parser.add_argument(
        "--no-inline", action="store_true", help="every commit on the store's writer thread"
    )
    parser.add_argument("--cprofile", default="", help="write the server's cProfile stats here")
    parser.add_argument("--client", choices=["py", "js"], default="py", help="who makes the calls")
    args = parser.parse_args()
    if args.mode == "canned" and args.client != "js":
        parser.error("mode canned needs --client js")
    echo = args.mode in ("echo", "echo-commit")
    if echo and args.client != "py":
        parser.error("mode echo drives a raw websockets client (js: bench/js/floor.mjs)")
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="pyrivet-prof-ws-")
    durability = "strict" if args.mode == "echo-commit" else args.mode
    durability = "relaxed" if args.mode == "canned" else durability
    env = dict(os.environ, PYRIVET_BENCH_DURABILITY=durability, PYTHONHASHSEED="0")
    env["PROF_SYNC"] = args.synchronous
    env["PROF_CPROFILE"] = args.cprofile
    env["PROF_NO_INLINE"] = "1" if args.no_inline else ""
    serve = ["serve", "counter_app:registry", "--port", str(port), "--data-dir", data_dir]
    serve += ["--log-level", "warning", "--no-inspector"]
    if echo:
        cmd = [sys.executable, "echo_floor.py", "--port", str(port)]
        if args.mode == "echo-commit":
            cmd += ["--commit", "--data-dir", data_dir]
    elif args.mode == "canned":
        cmd = [sys.executable, "canned_floor.py", "--port", str(port), "--data-dir", data_dir]
    elif args.no_freeze_inline_clock:
        cmd = [sys.executable, "-m", "pyrivet", *serve]
    else:
        cmd = [sys.executable, "-c", LAUNCH, *serve]
    proc = subprocess.Popen([*shlex.split(args.wrap), *cmd], cwd=BENCH_DIR, env=env)
    try:
        if args.client == "js":
            asyncio.run(js_calls(port, args.n, proc))
        else:
            asyncio.run(calls(port, args.n, proc, echo))
    finally:
        os.kill(server_pid(proc), signal.SIGTERM)
        proc.wait(timeout=300)


if __name__ == "__main__":
    main()
