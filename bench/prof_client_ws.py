"""Sequential WebSocket actions from this process against a server in another one, for
the *client's* instruction counts per call (not a latency benchmark: see
``bench_server.py``; for the server's counts see ``prof_server_ws.py``).

    # instructions per call of the client's loop thread: (count at 2000 - at 200) / 1800
    PYTHONHASHSEED=0 valgrind --tool=callgrind --separate-threads=yes \
        --callgrind-out-file=/tmp/cg.client.200 python bench/prof_client_ws.py pyrivet 200
    ...                                      # the same with 2000
    python bench/prof_client_ws.py echo 200   # the floor's client: bare ``websockets``
    python bench/prof_client_ws.py pyrivet 3000 --cprofile /tmp/client.prof

Mode ``pyrivet`` starts ``pyrivet serve counter_app:registry`` (relaxed durability, a
fresh data directory) and calls ``conn.increment(1)`` on one connection to
``counter["a"]`` subscribed to ``newCount``, as ``bench_server.py``'s WebSocket latency
row does (so each call also receives one event). ``--no-events`` leaves the event
unsubscribed. Mode ``echo`` starts the echo floor server (``echo_floor.py``) and runs the
floor's client, ``py_floor_ws``'s: send 32 bytes, wait for them back. Mode ``echo-hop``
is the same with the replies read by a second task that hands them over through a
future, as pyrivet's connection does (its reader also receives events): the cost of that
hand-over alone.

Either way: 300 warm-up calls, then N measured ones, one at a time; prints the p50. The
server runs outside valgrind (valgrind does not follow children unless told to), so a
callgrind run counts the client only; its main thread is the event loop's.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import connect

from bench_server import PAYLOAD, free_port  # this folder is sys.path[0] as a script
from prof_server_ws import BENCH_DIR, wait_listening
from pyrivet.client import Client


async def timed(call: Callable[[], Awaitable[object]], n: int, profile: str) -> list[float]:
    """300 warm-up calls, then ``n`` timed ones (cProfiled into ``profile`` if given)."""
    for _ in range(300):
        await call()
    prof = cProfile.Profile() if profile else None
    if prof is not None:
        prof.enable()
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        lat.append(time.perf_counter() - t)
    if prof is not None:
        prof.disable()
        prof.dump_stats(profile)
    return lat


async def calls(mode: str, port: int, n: int, proc: subprocess.Popen[bytes], args: Any) -> None:
    await wait_listening(port, proc)
    if mode == "echo":
        async with connect(f"ws://127.0.0.1:{port}/") as ws:

            async def round_trip() -> None:
                await ws.send(PAYLOAD)
                await ws.recv()

            lat = await timed(round_trip, n, args.cprofile)
    elif mode == "echo-hop":
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            waiter: list[asyncio.Future[object]] = []

            async def reader() -> None:
                while True:
                    data = await ws.recv()
                    waiter.pop().set_result(data)

            task = asyncio.ensure_future(reader())

            async def hop_trip() -> None:
                fut = asyncio.get_running_loop().create_future()
                waiter.append(fut)
                await ws.send(PAYLOAD)
                await fut

            lat = await timed(hop_trip, n, args.cprofile)
            task.cancel()
    else:
        async with Client(f"http://127.0.0.1:{port}", encoding=args.encoding) as client:
            conn = client.get_or_create("counter", ["a"]).connect()
            async with conn:
                if not args.no_events:
                    conn.on("newCount", lambda *a: None)
                lat = await timed(lambda: conn.increment(1), n, args.cprofile)
    print(f"{mode}: p50 {statistics.median(lat) * 1e6:.0f} µs over {n} calls")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["pyrivet", "echo", "echo-hop"])
    parser.add_argument("n", type=int)
    parser.add_argument("--no-events", action="store_true", help="do not subscribe newCount")
    parser.add_argument("--encoding", default="bare", choices=["bare", "cbor", "json"])
    parser.add_argument("--cprofile", default="", help="write the client's cProfile stats here")
    args = parser.parse_args()
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="pyrivet-prof-client-ws-")
    env = dict(os.environ, PYRIVET_BENCH_DURABILITY="relaxed", PYTHONHASHSEED="0")
    if args.mode.startswith("echo"):
        cmd = [sys.executable, "echo_floor.py", "--port", str(port)]
    else:
        cmd = [sys.executable, "-m", "pyrivet", "serve", "counter_app:registry"]
        cmd += ["--port", str(port), "--data-dir", data_dir]
        cmd += ["--log-level", "warning", "--no-inspector"]
    proc = subprocess.Popen(cmd, cwd=BENCH_DIR, env=env)
    try:
        asyncio.run(calls(args.mode, port, args.n, proc, args))
    finally:
        proc.terminate()  # SIGTERM to this server's own PID
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
