"""What an inspector page and ``/metrics`` cost the server, in instructions per action.

    . .venv/bin/activate
    python bench/bench_inspector_cost.py                 # every variant, one after another
    python bench/bench_inspector_cost.py --only none --only pages-all
    python bench/bench_inspector_cost.py --actors 8 --only none --only pages-all  # quicker

Wall-clock throughput on a shared 2-core machine moves by ±20 % between identical runs
(``bench_inspector.py``); instruction counts do not. For each variant this starts
``pyrivet serve inspector_app:registry`` (SQLite, strict: a commit per call) under
``valgrind --tool=callgrind`` with instrumentation off, warms it up, turns
instrumentation on (``callgrind_control``), drives the same fixed sequence of actions
from this process, dumps the counts and divides the server's instructions (every
thread: the event loop and the SQLite writer) by the number of actions.

The sequence models ``bench_inspector.py``'s load at its baseline of ~4,000 calls/s
over 64 actors: actors take turns, each getting ``--burst`` (6) sequential
``increment(1)`` calls over HTTP (keep-alive, aiohttp), for ``--rounds`` rounds; one
call in flight at a time, so commits are never batched and the counts repeat. At 4,000
calls/s each actor commits ~6 times per 100 ms gathering window of the live hub, so a
watched actor's burst should reach its page as one push: the server runs with the
window widened to ``--window`` seconds (``live_window_serve.py``; under callgrind a
burst takes tens of milliseconds) and the table shows how many pushes the pages got.
"Every second" means every ``--per-second`` (4,000) calls: each page fetches its summary
and ``/metrics`` is scraped that often, at fixed points of the sequence.

Variants (``--only`` picks some; the first one run is the baseline):

* ``none``: nobody inspecting, nobody scraping;
* ``metrics``: ``/metrics`` scraped (and scraped once before, so latencies are timed);
* ``page-idle``: one page (live socket + summary) on an actor nobody calls;
* ``page-called``: one page on one of the called actors;
* ``page-called+metrics``: both;
* ``pages-all``: a page on every called actor.

Target (printed, not asserted): each within 5 % of ``none``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench_inspector import AUTH, TOKEN, url_of
from bench_server import BENCH_DIR, ServerProcess, free_port

TARGET = 5.0


@dataclass(frozen=True)
class Variant:
    name: str
    pages: str  # "none", "idle", "one" or "all"
    metrics: bool


VARIANTS = {
    v.name: v
    for v in (
        Variant("none", "none", False),
        Variant("metrics", "none", True),
        Variant("page-idle", "idle", False),
        Variant("page-called", "one", False),
        Variant("page-called+metrics", "one", True),
        Variant("pages-all", "all", False),
    )
}


@dataclass
class Result:
    """One variant's counts (instructions of the whole server process, every thread)."""

    variant: str
    actions: int
    #: Instructions while the actions ran, and how long that took (wall seconds).
    action_instructions: int = 0
    action_seconds: float = 0.0
    #: Instructions per wall second of an idle server (subtracted from the above).
    idle_per_second: float = 0.0
    #: Instructions of one "second"'s side work (summaries, scrape).
    per_second_work: float = 0.0
    #: Actions per "second" (``--per-second``).
    per_second: int = 4000
    pushes: int = 0
    expected_pushes: int = 0

    @property
    def per_action(self) -> float:
        """Everything the server ran while the actions ran (its idle ticks included, as
        in a real run), plus its share of the once-a-second work."""
        return self.action_instructions / self.actions + self.per_second_work / self.per_second

    @property
    def busy_per_action(self) -> float:
        """`per_action` less the idle ticks of that wall time (rate measured before the
        actions; on a very busy machine the rate itself moves, see bench/README.md)."""
        idle = self.idle_per_second * self.action_seconds / self.actions
        return self.per_action - idle


@contextlib.contextmanager
def callgrind_server(work: Path, window: float) -> Iterator[ServerProcess]:
    """``pyrivet serve inspector_app:registry`` under callgrind, instrumentation off."""
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="data-", dir=work)
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={work}/cg.%p",
        sys.executable,
        str(BENCH_DIR / "live_window_serve.py"),
        "serve",
        "inspector_app:registry",
        "--port",
        str(port),
        "--data-dir",
        data_dir,
        "--log-level",
        "warning",
    ]
    env = {
        **os.environ,
        "PYTHONHASHSEED": "0",
        "PYRIVET_INSPECTOR_TOKEN": TOKEN,
        "BENCH_LIVE_WINDOW": str(window),
        "BENCH_WS_PING": "0",
    }
    server = ServerProcess("callgrind", argv, port, work, cwd=BENCH_DIR, env=env)
    try:
        server.wait_ready("/metadata", timeout=300)
        yield server
    finally:
        server.stop()


def control(pid: int, *flags: str) -> None:
    """``callgrind_control`` on exactly this process (it waits for the answer)."""
    subprocess.run(["callgrind_control", *flags, str(pid)], check=True, capture_output=True)


def dumped_totals(work: Path, pid: int) -> list[int]:
    """The instruction totals of the dumps callgrind wrote for ``pid``, in order."""
    dumps = sorted(work.glob(f"cg.{pid}.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    totals = []
    for dump in dumps:
        match = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(errors="replace"), re.M)
        if match is None:
            raise RuntimeError(f"no totals in {dump}")
        totals.append(int(match.group(1)))
    return totals


class Page:
    """An inspector page: a live socket read to the end; `summary` on demand."""

    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key
        self.history_pushes = 0
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        ws_url = "ws" + self.base[4:] + url_of("", "/inspector/live", self.key)
        self._ws = await connect(
            ws_url,
            subprotocols=[Subprotocol("pyrivet-inspector"), Subprotocol(f"bearer.{TOKEN}")],
        )
        self._reader = asyncio.ensure_future(self._read(self._ws))

    async def _read(self, ws: ClientConnection) -> None:
        async for text in ws:
            if json.loads(text)["type"] == "history":
                self.history_pushes += 1

    async def summary(self, http: aiohttp.ClientSession) -> None:
        url = url_of(self.base, "/inspector/summary", self.key)
        async with http.get(url, headers=AUTH) as response:
            response.raise_for_status()
            await response.read()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._ws is not None:
            await self._ws.close()


@dataclass
class Driven:
    """What `drive` did, besides the dumps: actions, wall seconds, pushes."""

    actions: int
    idle_seconds: float
    action_seconds: float
    pushes: int
    expected_pushes: int


async def drive(base: str, pid: int, variant: Variant, args: argparse.Namespace) -> Driven:
    """Warm up, then count the instructions of the fixed sequence of actions."""
    keys = [f"a{i}" for i in range(args.actors)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4)) as http:

        async def call(key: str) -> None:
            url = url_of(base, "/action/increment", key)
            async with http.post(url, json={"args": [1]}) as response:
                response.raise_for_status()
                await response.read()

        async def scrape() -> None:
            async with http.get(f"{base}/metrics") as response:
                response.raise_for_status()
                await response.read()

        watched = {"none": [], "idle": ["idle"], "one": keys[:1], "all": keys}[variant.pages]
        pages = [Page(base, key) for key in watched]
        for key in keys:  # every actor created and awake before the count starts
            await call(key)
        for page in pages:
            await page.open()
            await page.summary(http)
        if variant.metrics:
            await scrape()
        for key in keys:
            for _ in range(args.burst):
                await call(key)
        await asyncio.sleep(args.window * 2)  # the warm-up's pushes are out
        pushes_before = sum(p.history_pushes for p in pages)

        control(pid, "--instr=on")
        # 1. Idle: what the server spends per second of wall time doing nothing (uvicorn's
        # tick, timers); subtracted from the actions' window, whose length depends on load.
        control(pid, "--zero")
        idle_started = time.monotonic()
        await asyncio.sleep(args.idle)
        control(pid, "--dump")
        idle_seconds = time.monotonic() - idle_started
        # 2. The actions, and the pushes of the last bursts.
        control(pid, "--zero")
        started = time.monotonic()
        done = 0
        for _round in range(args.rounds):
            for key in keys:
                for _ in range(args.burst):
                    await call(key)
                    done += 1
        await asyncio.sleep(args.window * 1.5)
        control(pid, "--dump")
        seconds = time.monotonic() - started
        pushes = sum(p.history_pushes for p in pages) - pushes_before
        # 3. "Every second"'s work, `--seconds-work` times: counted pro rata per action.
        control(pid, "--zero")
        for _ in range(args.seconds_work):
            for page in pages:
                await page.summary(http)
            if variant.metrics:
                await scrape()
        control(pid, "--dump")
        for page in pages:
            await page.close()
    called_pages = {"none": 0, "idle": 0, "one": 1, "all": args.actors}[variant.pages]
    return Driven(done, idle_seconds, seconds, pushes, called_pages * args.rounds)


def run_variant(variant: Variant, args: argparse.Namespace) -> Result:
    with tempfile.TemporaryDirectory(prefix="bench-inspector-cost-") as tmp:
        work = Path(tmp)
        with callgrind_server(work, args.window) as server:
            base = f"http://127.0.0.1:{server.port}"
            driven = asyncio.run(drive(base, server.pid, variant, args))
            idle, actions, side = dumped_totals(work, server.pid)[:3]
        if args.keep is not None:  # for callgrind_annotate
            args.keep.mkdir(parents=True, exist_ok=True)
            for dump in work.glob(f"cg.{server.pid}.*"):
                shutil.copy(dump, args.keep / f"{variant.name}.{dump.name.rsplit('.', 1)[1]}")
    return Result(
        variant.name,
        driven.actions,
        action_instructions=actions,
        action_seconds=driven.action_seconds,
        idle_per_second=idle / driven.idle_seconds,
        per_second_work=side / args.seconds_work,
        per_second=args.per_second,
        pushes=driven.pushes,
        expected_pushes=driven.expected_pushes,
    )


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    load = os.getloadavg()[0]
    base = results[0]
    print(
        f"\nbench_inspector_cost on {platform.python_version()}, load average {load:.2f} "
        "(instruction counts do not depend on it)"
    )
    print(
        f"Server instructions per increment(1) over HTTP (strict, SQLite), "
        f"{base.actions:,} actions: {args.actors} actors x {args.burst} calls x "
        f"{args.rounds} rounds; 'every second' = every {args.per_second:,} calls"
    )
    print(
        f"{'variant':<20} {'instr/action':>12} {'baseline':>10} {'vs base':>8} {'target':>7} "
        f"{'less idle':>10} {'vs base':>8} {'s':>5} {'idle/s':>8} {'pushes':>7}"
    )
    for r in results:
        delta = (r.per_action / base.per_action - 1) * 100
        busy_delta = (r.busy_per_action / base.busy_per_action - 1) * 100
        verdict = "ok" if abs(delta) <= TARGET else "MISSED"
        pushes = f"{r.pushes}/{r.expected_pushes}" if r.expected_pushes else str(r.pushes)
        print(
            f"{r.variant:<20} {r.per_action:>12,.0f} {base.per_action:>10,.0f} "
            f"{delta:>+7.1f}% {verdict:>7} {r.busy_per_action:>10,.0f} {busy_delta:>+7.1f}% "
            f"{r.action_seconds:>5.0f} {r.idle_per_second:>8,.0f} {pushes:>7}"
        )
    print(
        f"\nTarget (printed, never asserted): within {TARGET:g} % of '{base.variant}'. "
        "less idle: without the idle server's instructions per wall second (idle/s) over "
        "the actions' wall time (s); pushes: history frames the pages got / one per burst "
        "of a watched actor."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", choices=list(VARIANTS), default=None)
    parser.add_argument("--actors", type=int, default=64)
    parser.add_argument("--burst", type=int, default=6, help="calls per actor per turn (6)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--per-second", type=int, default=4000)
    parser.add_argument("--window", type=float, default=3.0, help="live hub window, s (3)")
    parser.add_argument("--idle", type=float, default=5.0, help="idle measure, s (5)")
    parser.add_argument("--seconds-work", type=int, default=5, help="side work repeats (5)")
    parser.add_argument("--keep", type=Path, default=None, help="copy the dumps here")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    names = args.only or list(VARIANTS)
    results = []
    for name in names:
        started = time.monotonic()
        result = run_variant(VARIANTS[name], args)
        print(
            f"{name}: {result.per_action:,.0f} instructions/action "
            f"({time.monotonic() - started:.0f} s)",
            flush=True,
        )
        results.append(result)
    print_table(results, args)
    if args.json:
        print(json.dumps([{**r.__dict__, "per_action": r.per_action} for r in results]))


if __name__ == "__main__":
    main()
