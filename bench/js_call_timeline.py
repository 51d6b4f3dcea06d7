"""Where a sequential WebSocket call's wall time goes on the server, per call, with the
official RivetKit JS client: ``pyrivet serve`` (relaxed) or ``canned_floor.py``.

    python bench/js_call_timeline.py relaxed            # 200 warm-up calls, then 3000
    python bench/js_call_timeline.py canned --n 3000    # the canned server (client floor)
    PYTHONPATH=<other tree>/src python bench/js_call_timeline.py relaxed   # another tree
    python bench/js_call_timeline.py relaxed --pin 0,1  # server on CPU 0, the client on CPU 1

The server runs in this script's process image (``--serve``, started by the script
itself) with two hooks on `BatchingWebSocketProtocol`: ``data_received`` and the
transport's ``write`` take a wall clock (``perf_counter_ns``) and the loop thread's
CPU clock (``thread_time_ns``) reading, and ``gc.callbacks`` counts collections. The
readings stay in memory and are written to a temporary file when the server stops
(SIGTERM, a graceful stop). Then ``js/client.mjs latency --mode conn`` makes the calls
(one connection subscribed to ``newCount``, ``increment(1)`` awaited in a loop).

Printed, medians over the measured calls (each call: a 24-byte request read, one
30-byte write of the event and the reply):

* the client's p50 (``client.mjs``'s own timing) and the load average;
* request read -> reply write (wall): the server's part of the call;
* write -> next request read (wall): the client's part, the network and both wake-ups;
* the loop thread's CPU from the read to the write, inside the write (the system
  call), and from the end of the write to the next read (work after the reply, the
  loop's poll and the next read);
* GC collections per call.

The hooks are the same in both servers (two clock readings and a list append at each
read and at each write); the figures compare the two, they are not the servers' bare
latency (``bench_server.py`` measures that).
"""

from __future__ import annotations

import argparse
import atexit
import gc
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left
from pathlib import Path
from typing import Any

import canned_floor  # this folder is sys.path[0]
from bench_server import JS_DIR, NODE_MODULES, free_port
from pyrivet.cli import main as pyrivet_main
from pyrivet.server._uvicorn_ws import BatchingWebSocketProtocol

BENCH_DIR = Path(__file__).resolve().parent
#: The request and the reply (event + ActionResponse, bare) of ``increment(1)``.
REQUEST_SIZE = 24
REPLY_SIZE = 30


def serve(mode: str, port: int, data_dir: str, out: str) -> None:
    """Run the server with the hooks (see the module doc) until SIGTERM; then write
    the readings to ``out`` as JSON. Runs in the server process."""
    reads: list[tuple[int, int, int]] = []  # (wall, cpu, gc collections) at each read
    writes: list[tuple[int, int, int, int, int]] = []  # (size, wall, cpu, wall, cpu after)
    collections = [0]
    wall, cpu = time.perf_counter_ns, time.thread_time_ns

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collections[0] += 1

    gc.callbacks.append(on_gc)
    protocol = BatchingWebSocketProtocol
    data_received, connection_made = protocol.data_received, protocol.connection_made

    class Transport:
        """The transport with its ``write`` timed."""

        def __init__(self, transport: Any) -> None:
            self._transport = transport

        def write(self, data: bytes) -> None:
            t, c = wall(), cpu()
            self._transport.write(data)
            writes.append((len(data), t, c, wall(), cpu()))

        def __getattr__(self, name: str) -> Any:
            return getattr(self._transport, name)

    def timed_data_received(self: Any, data: bytes) -> None:
        if len(data) == REQUEST_SIZE:
            reads.append((wall(), cpu(), collections[0]))
        data_received(self, data)

    def timed_connection_made(self: Any, transport: Any) -> None:
        connection_made(self, transport)
        self.transport = Transport(self.transport)

    protocol.data_received = timed_data_received  # type: ignore[method-assign]
    protocol.connection_made = timed_connection_made  # type: ignore[method-assign]

    def dump() -> None:
        Path(out).write_text(json.dumps({"reads": reads, "writes": writes}))

    atexit.register(dump)
    if mode == "canned":
        sys.argv = ["canned_floor.py", "--port", str(port), "--data-dir", data_dir]
        canned_floor.main()
    else:
        sys.argv = ["pyrivet", "serve", "counter_app:registry", "--port", str(port)]
        sys.argv += ["--data-dir", data_dir, "--log-level", "warning", "--no-inspector"]
        pyrivet_main()


def summarize(path: str, n: int) -> dict[str, float]:
    """Medians per call over the last ``n`` requests that were answered by one write."""
    data = json.loads(Path(path).read_text())
    reads = data["reads"][-n:]
    writes = [w for w in data["writes"] if w[0] == REPLY_SIZE]
    starts = [w[1] for w in writes]
    rows: dict[str, list[float]] = {
        "read -> write (wall)": [],
        "write -> next read (wall)": [],
        "CPU read -> write": [],
        "CPU in write": [],
        "CPU write end -> next read": [],
        "GC collections": [],
    }
    for read, following in itertools.pairwise(reads):
        i = bisect_left(starts, read[0])
        if i == len(writes) or writes[i][1] > following[0]:
            continue
        _size, t, c, _t_end, c_end = writes[i]
        rows["read -> write (wall)"].append((t - read[0]) / 1e3)
        rows["write -> next read (wall)"].append((following[0] - t) / 1e3)
        rows["CPU read -> write"].append((c - read[1]) / 1e3)
        rows["CPU in write"].append((c_end - c) / 1e3)
        rows["CPU write end -> next read"].append((following[1] - c_end) / 1e3)
        rows["GC collections"].append(following[2] - read[2])
    out = {k: statistics.median(v) for k, v in rows.items() if k != "GC collections"}
    out["GC collections"] = statistics.fmean(rows["GC collections"])
    out["calls"] = len(rows["GC collections"])
    return out


def run(mode: str, n: int, warmup: int, pin: tuple[int, int] | None) -> None:
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="pyrivet-timeline-")
    out = os.path.join(data_dir, "readings.json")
    env = dict(os.environ, PYRIVET_BENCH_DURABILITY="relaxed")
    argv = [sys.executable, __file__, mode, "--serve", "--port", str(port), "--out", out]
    argv += ["--data-dir", data_dir]
    if pin is not None:
        argv += ["--cpu", str(pin[0])]
    server = subprocess.Popen(argv, cwd=BENCH_DIR, env=env)
    try:
        load = os.getloadavg()[0]
        client = [] if pin is None else ["taskset", "-c", str(pin[1])]
        client += [
            "node",
            str(JS_DIR / "client.mjs"),
            "latency",
            "--mode",
            "conn",
            "--n",
            str(n),
            "--warmup",
            str(warmup),
            "--endpoint",
            f"http://127.0.0.1:{port}",
        ]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        env = dict(os.environ, RIVETKIT_NODE_MODULES=str(NODE_MODULES))
        done = subprocess.run(client, env=env, capture_output=True, text=True, check=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    p50 = json.loads(lines[-1])["latency_us"]["p50"]
    figures = summarize(out, n)
    print(f"{mode}: client p50 {p50:.0f} µs, load average {load:.2f}, calls {figures['calls']:.0f}")
    for name, value in figures.items():
        if name == "calls":
            continue
        if name == "GC collections":
            print(f"  {name:28s} {value:6.4f} per call")
        else:
            print(f"  {name:28s} {value:6.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["relaxed", "canned"])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--pin", default="", help="SERVER_CPU,CLIENT_CPU: pin each to one CPU")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        if args.cpu >= 0:
            os.sched_setaffinity(0, {args.cpu})
        serve(args.mode, args.port, args.data_dir, args.out)
    else:
        cpus = [int(cpu) for cpu in args.pin.split(",")] if args.pin else None
        if cpus is not None and len(cpus) != 2:
            parser.error("--pin takes two CPUs: the server's, the client's")
        run(args.mode, args.n, args.warmup, None if cpus is None else (cpus[0], cpus[1]))


if __name__ == "__main__":
    main()
