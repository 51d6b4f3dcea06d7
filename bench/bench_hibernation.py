"""Benchmark of connection hibernation: memory, wake-on-message latency, event fan-out.

    . .venv/bin/activate
    python bench/bench_hibernation.py              # 10,000 connections, ~1-2 min
    python bench/bench_hibernation.py --conns 2000 --wakes 100     # a smoke run

Each figure is taken on a fresh server subprocess on a loopback port (stopped by PID at
the end): the floor is ``bench/echo_floor.py``, the others ``pyrivet serve
hibernation_app:registry`` on a new SQLite data directory (default strict durability).
The client is one Python process speaking the RivetKit ``connect`` protocol (json) with
the ``websockets`` library, as a RivetKit client would (no resume extension).

* floor: server RSS growth per idle raw echo socket (10,000 sockets);
* awake idle: 10,000 connections to one ``awake_room`` actor (connections keep it
  awake), each subscribed to an event and checked with one action round trip;
* hibernated: 10,000 connections to 100 ``room`` actors (100 each); after each actor
  got its connections it is put to sleep (``nap``), so what is left is 10,000
  hibernated connections and no awake actor. The first action on a sample of them
  must find its actor fresh (woken by that message): checked, printed;
* wake-on-message: one connection to a ``room``; ``nap``, wait 20 ms (the actor is
  asleep), then time ``ping`` until its reply; only round trips that found the actor
  freshly woken count. The same ``ping`` while awake is printed next to it;
* fan-out: 1,000 connections subscribed to ``tick``; one ``burst(200)`` broadcasts 200
  events; time until every connection received all of them (client-side reading in the
  same single Python process as the other connections, so this is a lower bound).

Targets (printed, never asserted): a hibernated connection ≤ the floor + 4 KiB;
wake-on-message p50 ≤ 2 ms. Other work on the machine moves these figures: the load
average is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench_server import (  # this folder is sys.path[0] when run as a script
    BENCH_DIR,
    ServerProcess,
    bounded_pool,
    echo_server,
    free_port,
    percentiles,
    proc_reading,
    py_floor_conns,
)

PROTOCOLS = [Subprotocol("rivet"), Subprotocol("rivet_encoding.json")]
SETTLE = 2.0


@contextmanager
def hibernation_server(log_dir: Path) -> Iterator[ServerProcess]:
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="data-", dir=log_dir)
    argv = [
        sys.executable,
        "-m",
        "pyrivet",
        "serve",
        "hibernation_app:registry",
        "--port",
        str(port),
        "--data-dir",
        data_dir,
        "--log-level",
        "warning",
    ]
    server = ServerProcess("pyrivet", argv, port, log_dir, cwd=BENCH_DIR)
    try:
        server.wait_ready("/metadata")
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _frame(tag: str, val: dict[str, Any]) -> str:
    return json.dumps({"body": {"tag": tag, "val": val}})


def action_frame(action_id: int, name: str, *args: Any) -> str:
    return _frame(
        "ActionRequest", {"id": ["$BigInt", str(action_id)], "name": name, "args": list(args)}
    )


SUBSCRIBE = _frame("SubscriptionRequest", {"eventName": "tick", "subscribe": True})


class Conn:
    """One ``connect`` socket, its next action id."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, name: str, *args: Any) -> Any:
        action_id = self.next_id
        self.next_id += 1
        await self.ws.send(action_frame(action_id, name, *args))
        while True:
            body = json.loads(await self.ws.recv())["body"]
            if body["tag"] == "ActionResponse":
                return body["val"]["output"]
            if body["tag"] == "Error":
                raise RuntimeError(f"action {name} failed: {body['val']}")


async def open_conn(port: int, actor: str, key: str, *, subscribe: bool = True) -> Conn:
    url = (
        f"ws://127.0.0.1:{port}/gateway/{actor}/connect?rvt-namespace=default"
        f"&rvt-method=getOrCreate&rvt-runner=default&rvt-key={key}&rvt-crash-policy=sleep"
    )
    ws = await connect(url, subprotocols=PROTOCOLS, compression=None, max_queue=None)
    body = json.loads(await ws.recv())["body"]
    if body["tag"] != "Init":
        raise RuntimeError(f"expected Init, got {body}")
    conn = Conn(ws)
    if subscribe:
        await ws.send(SUBSCRIBE)
    await conn.call("ping")
    return conn


async def close_all(conns: list[Conn]) -> None:
    await asyncio.gather(*(c.ws.close() for c in conns), return_exceptions=True)


async def awake_conns(port: int, pid: int, n: int) -> dict[str, Any]:
    first = await open_conn(port, "awake_room", "m")
    await asyncio.sleep(SETTLE)
    _, before = proc_reading(pid)
    conns: list[Conn] = []

    async def task() -> None:
        conns.append(await open_conn(port, "awake_room", "m"))

    await bounded_pool(n, 64, task)
    await asyncio.sleep(SETTLE)
    _, after = proc_reading(pid)
    await close_all([first, *conns])
    return {"open": len(conns), "kb_per_conn": (after - before) / len(conns)}


async def hibernated_conns(port: int, pid: int, n: int, per_actor: int) -> dict[str, Any]:
    warm = await open_conn(port, "room", "warm")
    await warm.call("nap")
    await asyncio.sleep(SETTLE)
    _, before = proc_reading(pid)
    conns: list[Conn] = []
    firsts: list[Conn] = []
    for b in range(n // per_actor):
        batch: list[Conn] = []

        async def task(key: str = f"h-{b}", batch: list[Conn] = batch) -> None:
            batch.append(await open_conn(port, "room", key))

        await bounded_pool(per_actor, 64, task)
        await batch[-1].call("nap")
        conns.extend(batch)
        firsts.append(batch[0])
    await asyncio.sleep(SETTLE)
    _, after = proc_reading(pid)
    # Each actor must be asleep: the first message on one of its connections wakes it.
    fresh = sum([bool(await c.call("ping")) for c in firsts])
    await close_all([warm, *conns])
    return {
        "open": len(conns),
        "kb_per_conn": (after - before) / len(conns),
        "woken_by_first_message": f"{fresh}/{len(firsts)}",
    }


async def wake_latency(port: int, n: int) -> dict[str, Any]:
    conn = await open_conn(port, "room", "lat", subscribe=False)
    asleep: list[float] = []
    awake: list[float] = []
    missed = 0
    for _ in range(n):
        await conn.call("nap")
        await asyncio.sleep(0.02)
        t0 = time.perf_counter_ns()
        fresh = await conn.call("ping")
        elapsed = (time.perf_counter_ns() - t0) / 1000
        if fresh:
            asleep.append(elapsed)
        else:
            missed += 1
        t0 = time.perf_counter_ns()
        await conn.call("ping")
        awake.append((time.perf_counter_ns() - t0) / 1000)
    await close_all([conn])
    return {"asleep": percentiles(asleep), "awake": percentiles(awake), "not_asleep": missed}


async def fan_out(port: int, pid: int, n: int, events: int) -> dict[str, Any]:
    conns: list[Conn] = []

    async def task() -> None:
        conns.append(await open_conn(port, "room", "fan"))

    await bounded_pool(n, 64, task)
    done = 0
    all_done = asyncio.get_running_loop().create_future()

    async def count(conn: Conn) -> None:
        nonlocal done
        seen = 0
        while seen < events:
            body = json.loads(await conn.ws.recv())["body"]
            if body["tag"] == "Event":
                seen += 1
        done += 1
        if done == n and not all_done.done():
            all_done.set_result(None)

    sender = await open_conn(port, "room", "fan", subscribe=False)
    readers = [asyncio.ensure_future(count(c)) for c in conns]
    cpu0, _ = proc_reading(pid)
    t0 = time.perf_counter()
    await sender.call("burst", events)
    await asyncio.wait_for(all_done, 120)
    elapsed = time.perf_counter() - t0
    cpu1, _ = proc_reading(pid)
    await asyncio.gather(*readers)
    await close_all([sender, *conns])
    return {
        "seconds": elapsed,
        "deliveries_per_s": n * events / elapsed,
        "events_per_s": events / elapsed,
        "server_us_per_delivery": (cpu1 - cpu0) * 1e6 / (n * events),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conns", type=int, default=10_000)
    parser.add_argument("--per-actor", type=int, default=100)
    parser.add_argument("--wakes", type=int, default=300)
    parser.add_argument("--fan-out", type=int, default=1_000)
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-hibernation-"))
    started = time.monotonic()
    try:
        with echo_server(work) as echo:
            floor = asyncio.run(
                py_floor_conns(f"ws://127.0.0.1:{echo.port}/", args.conns, echo.pid, SETTLE)
            )
        with hibernation_server(work) as server:
            awake = asyncio.run(awake_conns(server.port, server.pid, args.conns))
        with hibernation_server(work) as server:
            hib = asyncio.run(hibernated_conns(server.port, server.pid, args.conns, args.per_actor))
        with hibernation_server(work) as server:
            lat = asyncio.run(wake_latency(server.port, args.wakes))
            fan = asyncio.run(fan_out(server.port, server.pid, args.fan_out, args.events))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    target_kb = floor["rss_kb_per_conn"] + 4
    wake = lat["asleep"]
    print(
        f"\nbench_hibernation: {args.conns:,} connections, {time.monotonic() - started:.0f} s,"
        f" load average {os.getloadavg()[0]:.2f}"
    )
    print()
    print("| figure | value | target |")
    print("|---|---|---|")
    print(f"| floor: server RSS per idle raw echo socket | {floor['rss_kb_per_conn']:.1f} KiB | |")
    print(f"| server RSS per awake idle connection | {awake['kb_per_conn']:.1f} KiB | |")
    ok = "met" if hib["kb_per_conn"] <= target_kb else "**not met**"
    print(
        f"| server RSS per hibernated connection | {hib['kb_per_conn']:.1f} KiB"
        f" (woken by its first message: {hib['woken_by_first_message']}) |"
        f" ≤ {target_kb:.1f} KiB (floor + 4): {ok} |"
    )
    ok = "met" if wake["p50"] <= 2000 else "**not met**"
    print(
        f"| wake-on-message round trip, p50 / p99 | {wake['p50']:,.0f} / {wake['p99']:,.0f} µs"
        f" ({wake['count']} wakes) | p50 ≤ 2,000 µs: {ok} |"
    )
    print(
        f"| same action while awake, p50 / p99 | {lat['awake']['p50']:,.0f} /"
        f" {lat['awake']['p99']:,.0f} µs | |"
    )
    print(
        f"| fan-out: {args.events} events to {args.fan_out:,} subscribed connections |"
        f" {fan['deliveries_per_s']:,.0f} deliveries/s ({fan['events_per_s']:,.0f} events/s,"
        f" {fan['seconds']:.2f} s; server CPU {fan['server_us_per_delivery']:.1f} µs per"
        " delivery; the one client process reading 1,000 sockets is the bound) | |"
    )


if __name__ == "__main__":
    main()
