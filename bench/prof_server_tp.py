"""64 callers over 64 actors over WebSockets against ``pyrivet serve``, for counted work
per call with either client: the server's syscalls, TCP segments and bytes, CPU, and
(through ``--wrap``/``--client-wrap``) instructions of the server or of the Python
client. Not a throughput benchmark (``bench_server.py`` is).

    python bench/prof_server_tp.py py relaxed --calls 200              # ss + CPU per call
    python bench/prof_server_tp.py js relaxed --calls 200 --strace /tmp/st.js  # + strace -c
    # server instructions per call: (count at 100 - count at 20) / (80 * 64)
    python bench/prof_server_tp.py js relaxed --calls 20 --wrap "valgrind --tool=callgrind \
        --separate-threads=yes --callgrind-out-file=/tmp/cg.srv.js.20"       # and 100
    # the Python client's instructions per call, the same way
    python bench/prof_server_tp.py py relaxed --calls 20 --client-wrap "valgrind \
        --tool=callgrind --separate-threads=yes --callgrind-out-file=/tmp/cg.cli.20"

Client ``js`` is the official RivetKit client (``js/phased.mjs``, from
``tests/conformance/js/node_modules`` as ``bench_server.py`` takes it); client ``py``
is pyrivet's network client (``Client(url)``) in a child process (this file with
``--child``). Either opens ``--actors`` connections (one per actor, subscribed to
``newCount``), wakes each actor, runs ``--warmup`` calls per caller, then
``--calls`` calls per caller in the measured phase, each caller awaiting its reply
before its next call. The client says "warm" and "done" on stdout and waits for a
line on stdin after each, so the readings here bracket the measured phase only:

* ``ss -tin`` over the server's sockets: segments and data segments in and out, bytes
  received and sent (the client's frames per segment = calls / data segments in);
* ``--strace FILE``: ``strace -c -f -p SERVER`` attached for the measured phase only;
* the server threads' CPU (``/proc``; noisy).

The server runs with the store's inline budget clock frozen (``prof_server_ws.LAUNCH``),
so a slow run (valgrind) does the same work as an unwrapped one. It is stopped with
SIGTERM (callgrind writes its counts then).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_server import free_port  # this folder is sys.path[0] as a script
from prof_server_ws import BENCH_DIR, LAUNCH, server_pid, thread_cpu
from pyrivet.client import ActorConnection, Client
from pyrivet.client._resume import ResumeState

_SS_FIELDS = ("segs_in", "segs_out", "data_segs_in", "data_segs_out", "bytes_received")
_SS_RE = re.compile(r"\b(" + "|".join(_SS_FIELDS) + r"|bytes_sent):(\d+)")


def ss_totals(port: int) -> dict[str, int]:
    """Sums of the TCP counters of every established socket whose local port is ``port``."""
    out = subprocess.run(
        ["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    totals = dict.fromkeys((*_SS_FIELDS, "bytes_sent"), 0)
    for name, value in _SS_RE.findall(out):
        totals[name] += int(value)
    return totals


async def child(url: str, actors: int, calls: int, warmup: int, profile: str) -> None:
    """The Python client's side of the phases (see the module doc)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    events = 0

    def on_count(_count: int) -> None:
        nonlocal events
        events += 1

    async with Client(url) as client:
        conns: list[ActorConnection] = []
        for i in range(actors):
            conn = client.get_or_create("counter", [f"phased-{time.time_ns()}-{i}"]).connect()
            await conn.__aenter__()
            conn.on("newCount", on_count)
            conns.append(conn)
        await asyncio.gather(*(c.increment(1) for c in conns))

        async def each(n: int) -> None:
            async def one(conn: ActorConnection) -> None:
                for _ in range(n):
                    await conn.increment(1)

            await asyncio.gather(*(one(c) for c in conns))

        await each(warmup)
        print("warm", flush=True)
        await reader.readline()
        prof = cProfile.Profile() if profile else None
        if prof is not None:
            prof.enable()
        await each(calls)
        if prof is not None:
            prof.disable()
            prof.dump_stats(profile)
        print(f"done {events}", flush=True)
        await reader.readline()
        for conn in conns:
            await conn.__aexit__(None, None, None)


def run(args: argparse.Namespace) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = tempfile.mkdtemp(prefix="pyrivet-prof-tp-")
    env = dict(os.environ, PYRIVET_BENCH_DURABILITY=args.durability, PYTHONHASHSEED="0")
    env.update(PROF_SYNC="", PROF_CPROFILE=args.server_cprofile, PROF_NO_INLINE="")
    serve = ["serve", "counter_app:registry", "--port", str(port), "--data-dir", data_dir]
    serve += ["--log-level", "warning", "--no-inspector"]
    server = subprocess.Popen(
        [*shlex.split(args.wrap), sys.executable, "-c", LAUNCH, *serve], cwd=BENCH_DIR, env=env
    )
    try:
        wait_port(port, server)
        sizes = ["--actors", str(args.actors), "--calls", str(args.calls)]
        sizes += ["--warmup", str(args.warmup)]
        if args.client == "js":
            cmd = [*shlex.split(args.client_wrap), "node", str(BENCH_DIR / "js" / "phased.mjs")]
            cmd += ["run", "--endpoint", url, *sizes]
        else:
            cmd = [*shlex.split(args.client_wrap), sys.executable, __file__, "py", "-"]
            cmd += ["--child", url, *sizes, *(["--no-resume"] if args.no_resume else [])]
            cmd += ["--client-cprofile", args.client_cprofile]
        client = subprocess.Popen(
            cmd, cwd=BENCH_DIR, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert client.stdin is not None and client.stdout is not None
        expect(client, "warm")
        pid = server_pid(server)
        strace = None
        if args.strace:
            strace = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o", args.strace])
            time.sleep(1.0)  # attached to every thread before the phase starts
        cli0 = process_cpu(client.pid)
        cpu0, ss0, t0 = thread_cpu(pid), ss_totals(port), time.perf_counter()
        client.stdin.write("go\n")
        client.stdin.flush()
        done = expect(client, "done")
        wall = time.perf_counter() - t0
        cpu1, ss1 = thread_cpu(pid), ss_totals(port)
        client_cpu = process_cpu(client.pid) - cli0
        if strace is not None:
            strace.send_signal(signal.SIGINT)
            strace.wait(timeout=60)
        client.stdin.write("close\n")
        client.stdin.flush()
        client.wait(timeout=600)
        report(args, cpu0, cpu1, ss0, ss1, wall, done)
        n = args.actors * args.calls
        print(
            f"  client CPU {client_cpu / n * 1e6:.1f} µs / call "
            f"({100 * client_cpu / wall:.0f} % of a core)"
        )
    finally:
        os.kill(server_pid(server), signal.SIGTERM)
        server.wait(timeout=600)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    import socket

    for _ in range(6000):
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not listen within 600 s")


def expect(proc: subprocess.Popen[str], word: str) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith(word):
        raise SystemExit(f"the client said {line!r} instead of {word!r} (exit {proc.poll()})")
    return line.strip()


def report(
    args: argparse.Namespace,
    cpu0: dict[str, tuple[int, int, int, int]],
    cpu1: dict[str, tuple[int, int, int, int]],
    ss0: dict[str, int],
    ss1: dict[str, int],
    wall: float,
    done: str,
) -> None:
    n = args.actors * args.calls
    tick = os.sysconf("SC_CLK_TCK")
    print(f"{args.client} {args.durability}: {n} calls in {wall:.2f} s ({n / wall:,.0f}/s); {done}")
    d = {k: ss1[k] - ss0[k] for k in ss0}
    print(
        "  server sockets per call: "
        + ", ".join(f"{k} {v / n:.3f}" for k, v in d.items())
        + f"; client frames per data segment in: {n / max(d['data_segs_in'], 1):.3f}"
    )
    busy = 0.0
    for key, (user, sys_, vol, invol) in cpu1.items():
        if key in cpu0:
            du, ds = user - cpu0[key][0], sys_ - cpu0[key][1]
            busy += du + ds
            if du + ds:
                per = 1e6 / tick / n
                print(
                    f"  thread {key}: {(du + ds) * per:.1f} µs CPU / call "
                    f"(user {du * per:.1f}, sys {ds * per:.1f}); switches / call "
                    f"{(vol - cpu0[key][2]) / n:.3f} vol, {(invol - cpu0[key][3]) / n:.3f} invol"
                )
    print(f"  server CPU {100 * busy / tick / wall:.0f} % of a core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("client", choices=["py", "js"])
    parser.add_argument("durability", choices=["relaxed", "strict", "-"])
    parser.add_argument("--actors", type=int, default=64)
    parser.add_argument("--calls", type=int, default=200, help="measured calls per caller")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up calls per caller")
    parser.add_argument("--wrap", default="", help="command to run the server under")
    parser.add_argument("--client-wrap", default="", help="command to run the client under")
    parser.add_argument("--strace", default="", help="strace -c the server into this file")
    parser.add_argument(
        "--client-cprofile", default="", help="the Python client's cProfile stats, measured phase"
    )
    parser.add_argument("--server-cprofile", default="", help="the server's cProfile stats")
    parser.add_argument(
        "--no-resume", action="store_true", help="the Python client offers no resume extension"
    )
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.no_resume:  # a diagnosis: what numbered events cost the server
            ResumeState.subprotocol = lambda self, events: "x-pyrivet-bench-none"  # type: ignore[method-assign]
        asyncio.run(child(args.child, args.actors, args.calls, args.warmup, args.client_cprofile))
    else:
        run(args)


if __name__ == "__main__":
    main()
