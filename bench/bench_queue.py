"""Benchmark of durable queues on the embedded SQLite default, strict durability.

    . .venv/bin/activate
    python bench/bench_queue.py               # medians of 3 runs, in-process
    python bench/bench_queue.py --quick       # 1 run, small counts (a smoke run)
    python bench/bench_queue.py --network     # also over HTTP to `pyrivet serve`

The actors are those of ``bench/queue_app.py``: ``worker`` (its ``run`` loop receives
each message of ``jobs`` completable, counts it in its state and completes it with the
count), ``inbox`` (a queue nobody receives from) and ``counter`` (a strict action that
changes state, to compare with). In-process, every scenario runs on a fresh runtime
(``Registry.runtime(data_dir=...)`` in a new directory) through ``Client(runtime)``;
with ``--network``, each run also starts ``pyrivet serve queue_app:registry`` on a
fresh data directory (a subprocess on a free loopback port, stopped by its PID) and
measures the same scenarios with the network client ``Client(url)``.

Figures (each the median of ``--runs`` runs, with the range of the runs):

* sequential latency, one sender, one actor, p50/p99: ``send(wait=True)`` to
  ``worker`` (enqueue durable, received, completed durable, response back: one commit
  when the run loop completes the message before the send's commit is built, as it
  does here, else two), ``send()`` to ``inbox`` (the durable enqueue alone), ``send()``
  to ``worker`` (the same while the run loop drains each message), and a strict action;
* throughput, 64 producers over 64 actors (each producer its own actor, ``--messages``
  each): ``send(wait=True)`` messages/s; ``send()`` with the run loops draining
  (messages/s until the last one was completed: each producer's last send waits for
  its completion, and the queue is in order), and the rate at which the sends alone
  were acknowledged; the same shape with the strict action, actions/s.

Next to them: the one-commit floor of this disk measured in the same run (a bare
SQLite WAL commit with synchronous=FULL, ``bench_core.commit_floor``), the lower bound
it gives each figure (k commits), and over the network the HTTP echo floor of the same
client library (``bench_server.py``'s). In-process, the commits per message (group
commits written by the committer / messages) say how many commits a message took.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_core import commit_floor  # this folder is sys.path[0] when run as a script
from bench_server import (
    Results,
    cell,
    echo_server,
    fmt_us,
    log,
    percentiles,
    py_floor_http,
    pyrivet_server,
    timed_loop,
)
from pyrivet import Client
from queue_app import registry

BODY = {"job": "resize", "size": 1}


@dataclass(frozen=True)
class Sizes:
    """How much each measurement does."""

    runs: int
    calls: int  # timed sequential calls per latency figure
    warmup: int
    actors: int  # producers = actors for the throughput figures
    messages: int  # per producer


FULL = Sizes(runs=3, calls=3_000, warmup=200, actors=64, messages=300)
QUICK = Sizes(runs=1, calls=300, warmup=50, actors=64, messages=30)

#: Stats of the committer, (batches, records), or None where they are not visible
#: (a server in another process).
Stats = Callable[[], tuple[int, int]] | None


# ------------------------------------------------------------------ scenarios


def _check(result: Any) -> None:
    if result.status != "completed":
        raise RuntimeError(f"a waiting send ended {result.status!r}, not completed")


def latency_call(client: Client, scenario: str, key: str) -> Callable[[], Awaitable[Any]]:
    """One call of a sequential latency scenario, on a fresh actor of key ``key``."""
    if scenario == "send_wait":
        worker = client.get_or_create("worker", [key])

        async def send_wait() -> None:
            _check(await worker.send("jobs", BODY, wait=True))

        return send_wait
    if scenario == "send_inbox":
        inbox = client.get_or_create("inbox", [key])
        return lambda: inbox.send("jobs", BODY)
    if scenario == "send_drained":
        drained = client.get_or_create("worker", [key])
        return lambda: drained.send("jobs", BODY)
    counter = client.get_or_create("counter", [key])
    return lambda: counter.increment(1)


async def sequential(client: Client, stats: Stats, scenario: str, sizes: Sizes) -> dict[str, float]:
    """p50/p99 (µs) of ``scenario`` and, in-process, the commits per call."""
    call = latency_call(client, scenario, f"lat-{scenario}-{time.time_ns()}")
    for _ in range(sizes.warmup):
        await call()
    before = stats() if stats else (0, 0)
    samples = await timed_loop(call, sizes.calls, 0)
    after = stats() if stats else (0, 0)
    figures = percentiles(samples)
    result = {"p50": figures["p50"], "p99": figures["p99"]}
    if stats:
        result["commits"] = (after[0] - before[0]) / sizes.calls
    return result


async def throughput(client: Client, stats: Stats, scenario: str, sizes: Sizes) -> dict[str, float]:
    """Messages (or actions) per second, 64 producers each on its own actor.

    ``scenario``: "send_wait" (every send waits for its completion), "send_drained"
    (sends that do not wait, the last of each producer waits: "rate" counts until every
    message was completed, "acked" until the sends before the last were acknowledged)
    or "action".
    """
    tag = f"tp-{scenario}-{time.time_ns()}"
    n = sizes.messages
    if scenario == "action":
        handles = [client.get_or_create("counter", [f"{tag}-{i}"]) for i in range(sizes.actors)]
        await asyncio.gather(*(h.increment(0) for h in handles))  # wake them first
    else:
        handles = [client.get_or_create("worker", [f"{tag}-{i}"]) for i in range(sizes.actors)]
        await asyncio.gather(*(h.send("jobs", BODY, wait=True) for h in handles))
    acked: list[float] = []

    async def producer(handle: Any) -> None:
        if scenario == "action":
            for _ in range(n):
                await handle.increment(1)
        elif scenario == "send_wait":
            for _ in range(n):
                _check(await handle.send("jobs", BODY, wait=True))
        else:
            for _ in range(n - 1):
                await handle.send("jobs", BODY)
            acked.append(time.perf_counter())
            _check(await handle.send("jobs", BODY, wait=True))

    before = stats() if stats else (0, 0)
    start = time.perf_counter()
    await asyncio.gather(*(producer(h) for h in handles))
    elapsed = time.perf_counter() - start
    after = stats() if stats else (0, 0)
    total = n * sizes.actors
    result = {"rate": total / elapsed}
    if acked:
        result["acked"] = (n - 1) * sizes.actors / (max(acked) - start)
    if stats:
        batches, records = after[0] - before[0], after[1] - before[1]
        result["commits"] = batches / total
        result["per_batch"] = records / max(1, batches)
    return result


LATENCY = ("send_wait", "send_inbox", "send_drained", "action")
THROUGHPUT = ("send_wait", "send_drained", "action")


async def in_process(
    measure: Callable[[Client, Stats, str, Sizes], Awaitable[dict[str, float]]],
    scenario: str,
    sizes: Sizes,
) -> dict[str, float]:
    """``measure`` on a fresh runtime in a new data directory."""
    with tempfile.TemporaryDirectory(prefix="pyrivet-bench-queue-") as data_dir:
        async with registry.runtime(data_dir=data_dir) as runtime:
            return await measure(Client(runtime), runtime.committer_stats, scenario, sizes)


async def over_network(endpoint: str, sizes: Sizes) -> dict[str, dict[str, float]]:
    """Every scenario against one server (fresh actors for each)."""
    out: dict[str, dict[str, float]] = {}
    async with Client(endpoint) as client:
        for scenario in LATENCY:
            out[f"lat_{scenario}"] = await sequential(client, None, scenario, sizes)
        for scenario in THROUGHPUT:
            out[f"tp_{scenario}"] = await throughput(client, None, scenario, sizes)
    return out


def add_all(results: Results, where: str, name: str, figures: dict[str, float]) -> None:
    for key, value in figures.items():
        results.add(where, f"{name}_{key}", value)


def one_run(sizes: Sizes, network: Path | None, results: Results) -> None:
    log("floor: bare SQLite commits")
    results.add("-", "commit", commit_floor(max(500, sizes.calls))[0] * 1e6)
    for scenario in LATENCY:
        log(f"in-process: sequential {scenario}")
        figures = asyncio.run(in_process(sequential, scenario, sizes))
        add_all(results, "local", f"lat_{scenario}", figures)
    for scenario in THROUGHPUT:
        log(f"in-process: {sizes.actors} x {sizes.actors} {scenario}")
        figures = asyncio.run(in_process(throughput, scenario, sizes))
        add_all(results, "local", f"tp_{scenario}", figures)
    if network is None:
        return
    log("floor: HTTP echo round trips (aiohttp, as the network client)")
    with echo_server(network) as echo:
        url = f"http://127.0.0.1:{echo.port}/"
        floor = asyncio.run(py_floor_http(url, sizes.calls, sizes.warmup))
    results.add("-", "http", floor["latency_us"]["p50"])
    log("pyrivet serve queue_app:registry: every scenario over HTTP")
    with queue_server(network) as endpoint:
        for name, figures in asyncio.run(over_network(endpoint, sizes)).items():
            add_all(results, "net", name, figures)


@contextlib.contextmanager
def queue_server(work: Path) -> Iterator[str]:
    with pyrivet_server(work, "strict", app="queue_app:registry") as server:
        yield f"http://127.0.0.1:{server.port}"


# ------------------------------------------------------------------ the table

LATENCY_ROWS = [
    # (scenario, label, the fewest commits it can take)
    ("send_wait", "send(wait=True) -> receive -> complete -> response", 1),
    ("send_inbox", "send() to a queue nobody receives (durable enqueue)", 1),
    ("send_drained", "send() while the run loop receives and completes", 1),
    ("action", "strict action (increment), for comparison", 1),
]

THROUGHPUT_ROWS = [
    ("send_wait", "send(wait=True), messages/s"),
    ("send_drained", "send() + run loop draining, messages/s completed"),
    ("action", "strict action (increment), actions/s"),
]


def _heading(title: str, columns: list[str], network_columns: list[str], network: bool) -> None:
    header = "| " + " | ".join(columns + (network_columns if network else [])) + " |"
    print()
    print(f"### {title}")
    print()
    print(header)
    print("|" + "---|" * (header.count("|") - 1))


def print_table(results: Results, sizes: Sizes, network: bool) -> None:
    commit = statistics.median(results.get("-", "commit"))
    http = results.get("-", "http")
    print()
    print(
        f"pyrivet queue benchmark: {sizes.runs} run(s), medians (range of runs); durability "
        f"strict, SQLite; {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average 1 min at the end: {os.getloadavg()[0]:.1f}"
    )
    print(
        f"sizes: {sizes.calls:,} timed sequential calls after {sizes.warmup} warm-up; "
        f"throughput {sizes.actors} producers x {sizes.actors} actors, "
        f"{sizes.messages:,} messages (actions) each"
    )
    print(
        "one-commit floor (a bare SQLite WAL commit, synchronous=FULL, on this disk), p50: "
        f"{cell(results.get('-', 'commit'), 'us')} (x 2 = {fmt_us(2 * commit)})"
        + (f"; HTTP echo floor (aiohttp), p50: {cell(http, 'us')}" if http else "")
    )
    _heading(
        "Sequential, one sender, one actor: p50 / p99",
        ["figure", "in-process", "commits per call", "k x floor", "p50 - k x floor"],
        ["over HTTP", "p50 - k x floor - HTTP echo"],
        network,
    )
    for scenario, label, k in LATENCY_ROWS:
        p50 = results.get("local", f"lat_{scenario}_p50")
        p99 = results.get("local", f"lat_{scenario}_p99")
        commits = results.get("local", f"lat_{scenario}_commits")
        bound = k * commit
        line = (
            f"| {label} | {cell(p50, 'us')} / {cell(p99, 'us')} "
            f"| {_num(commits, 2)} | {k} x = {fmt_us(bound)} "
            f"| {_signed_us(statistics.median(p50) - bound)} |"
        )
        if network:
            np50 = results.get("net", f"lat_{scenario}_p50")
            np99 = results.get("net", f"lat_{scenario}_p99")
            above = statistics.median(np50) - bound - statistics.median(http)
            line += f" {cell(np50, 'us')} / {cell(np99, 'us')} | {_signed_us(above)} |"
        print(line)
    print()
    print(
        "k: the fewest commits the path can take. A waited-for message needs two (its "
        "enqueue, its completion) unless the run loop completes it before the send's "
        "commit is written; then both go into one commit (commits per call shows which)."
    )
    _heading(
        f"Throughput, {sizes.actors} producers x {sizes.actors} actors",
        ["figure", "in-process", "commits per message", "records per commit"],
        ["over HTTP"],
        network,
    )
    for scenario, label in THROUGHPUT_ROWS:
        rate = results.get("local", f"tp_{scenario}_rate")
        line = (
            f"| {label} | {cell(rate, 'calls')} "
            f"| {_num(results.get('local', f'tp_{scenario}_commits'), 3)} "
            f"| {_num(results.get('local', f'tp_{scenario}_per_batch'), 1)} |"
        )
        if network:
            line += f" {cell(results.get('net', f'tp_{scenario}_rate'), 'calls')} |"
        print(line)
        if scenario == "send_drained":
            line = "| &nbsp; the sends alone acknowledged, messages/s | "
            line += f"{cell(results.get('local', 'tp_send_drained_acked'), 'calls')} | | |"
            if network:
                line += f" {cell(results.get('net', 'tp_send_drained_acked'), 'calls')} |"
            print(line)
    print()
    for where, title in (("local", "in-process"), ("net", "over HTTP")):
        action = results.get(where, "tp_action_rate")
        if not action:
            continue
        costs = [
            f"{statistics.median(action) / statistics.median(values):.2f} x ({what})"
            for scenario, what in (("send_wait", "waited for"), ("send_drained", "drained"))
            if (values := results.get(where, f"tp_{scenario}_rate"))
        ]
        print(f"{title}, a queued message costs " + ", ".join(costs) + " a strict action")
    if results.notes:
        print()
        print("notes: " + "; ".join(results.notes))


def _signed_us(us: float) -> str:
    return ("+" if us >= 0 else "-") + fmt_us(abs(us))


def _num(values: list[float], digits: int) -> str:
    return f"{statistics.median(values):.{digits}f}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, one run")
    parser.add_argument("--runs", type=int, help="runs to take medians over (3)")
    parser.add_argument("--calls", type=int, help="timed sequential calls per figure")
    parser.add_argument("--messages", type=int, help="messages per producer (throughput)")
    parser.add_argument(
        "--network", action="store_true", help="also measure over HTTP against pyrivet serve"
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    sizes = dataclasses.replace(
        sizes,
        runs=args.runs or sizes.runs,
        calls=args.calls or sizes.calls,
        messages=args.messages or sizes.messages,
    )
    if sizes.messages < 2:
        raise SystemExit("--messages must be at least 2 (the last send of a producer waits)")
    results = Results()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pyrivet-bench-queue-") as tmp:
        for run in range(1, sizes.runs + 1):
            log(f"run {run}/{sizes.runs}")
            one_run(sizes, Path(tmp) if args.network else None, results)
    log(f"done in {time.monotonic() - started:.0f} s")
    print_table(results, sizes, args.network)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
