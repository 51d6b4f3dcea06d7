"""Durable workflows in actors against DBOS Transact, on this machine, in one run.

    python bench/bench_workflow.py                  # pyrivet + DBOS on SQLite and PostgreSQL
    python bench/bench_workflow.py --quick          # smaller counts, one run (DBOS --quick)
    python bench/bench_workflow.py --dbos none      # pyrivet only (no DBOS virtualenv needed)
    python bench/bench_workflow.py --instructions 400 --in-flight 64 --storage memory

``--instructions N`` only runs N workflows (``--in-flight`` at a time, on
``--storage``), untimed, for callgrind: count at two N, and the difference divided by
the difference in steps (10 per workflow) is the cost of a step, its share of the
workflow's creation and completion included (see bench/README.md).

The workload is DBOS's anchor workload (``shared/anchors/dbos``): a workflow of 10
sequential steps. In pyrivet each workflow is an actor whose ``run`` is the workflow,
on the embedded SQLite default with strict durability; each step changes the actor's
state (``c.state["n"] = i + 1``), so every step is one commit of its output, its history
entry and the state together.

Figures (medians over --runs runs; wall clock, `perf_counter`):

* **per step, sequential**: one workflow at a time; the interval between the starts of
  two consecutive step bodies (the step, its commit, the orchestration between), p50
  and p99, beside the machine's one-commit floor (a bare SQLite WAL commit,
  synchronous=FULL, measured in the same run). Target: p50 ≤ floor + 50 µs. Beside
  it, `bench_core.commit_then_relaxed`'s floor: that commit followed by a relaxed
  action on an actor, timed together (the CPU runs slower right after an fsync on
  this machine), and how far above it a step is. Each run measures both floors just
  before its workflows, and the gaps are the medians of each run's own.
* **steps/s @64**: 64 workflows in flight, each slot starting a new workflow (a new
  actor) as soon as its last one finished its 10th step; completed steps per second
  over a window after a warm-up. Target: at least 50 times DBOS's steps/s @64 in the same run.
* DBOS's rows come from its harness, run by ``dbos_anchor.py`` (its own virtualenv,
  PostgreSQL database ``pyrivet_dbos_anchor``; see that module). It waits for an idle
  machine before each measurement, so it can take minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import statistics
import tempfile
import time
from typing import Any

from bench_core import (  # this folder is sys.path[0] as a script
    commit_floor,
    commit_then_relaxed,
    paired_gap,
    percentile,
)
from dbos_anchor import AnchorError, AnchorFigures, measure
from pyrivet import Client, Registry, actor
from pyrivet.storage import MemoryDriver, SQLiteDriver
from pyrivet.workflow import workflow

STEPS = 10
CONCURRENCY = 64


class Probe:
    """What the workflows report to the bench: step start times and completions."""

    def __init__(self) -> None:
        self.step_starts: list[float] = []
        self.record_starts = False
        self.steps_done = 0
        self.finished: dict[str, asyncio.Event] = {}


def make_registry(probe: Probe) -> Registry:
    flow_actor = actor("flow", state={"n": 0})

    def step(i: int) -> Any:
        def body(c: Any) -> int:
            if probe.record_starts:
                probe.step_starts.append(time.perf_counter())
            c.state["n"] = i + 1
            return i + 1

        return body

    bodies = [step(i) for i in range(STEPS)]

    @flow_actor.run
    @workflow
    async def ten_steps(ctx: Any) -> int:
        value = 0
        for i in range(STEPS):
            value = await ctx.step(f"s{i}", bodies[i])
            probe.steps_done += 1
        key = await ctx.step("key", lambda c: c.key[0], ephemeral=True)
        event = probe.finished.get(key)
        if event is not None:
            event.set()
        return value

    return Registry([flow_actor])


async def run_one(client: Client, probe: Probe, key: str) -> None:
    done = probe.finished[key] = asyncio.Event()
    await client.get_or_create("flow", [key]).resolve()
    await done.wait()
    del probe.finished[key]


async def sequential(workflows: int) -> tuple[float, float, float]:
    """(step interval p50, p99, workflow wall / 10 p50), in seconds."""
    probe = Probe()
    walls: list[float] = []
    with tempfile.TemporaryDirectory(prefix="pyrivet-bench-") as data_dir:
        async with make_registry(probe).runtime(data_dir=data_dir) as runtime:
            client = Client(runtime)
            for n in range(20):  # warm-up
                await run_one(client, probe, f"warm-{n}")
            intervals: list[float] = []
            for n in range(workflows):
                probe.step_starts = []
                probe.record_starts = True
                start = time.perf_counter()
                await run_one(client, probe, f"seq-{n}")
                walls.append((time.perf_counter() - start) / STEPS)
                probe.record_starts = False
                starts = probe.step_starts
                intervals.extend(b - a for a, b in itertools.pairwise(starts))
    return percentile(intervals, 0.5), percentile(intervals, 0.99), percentile(walls, 0.5)


async def concurrent(warmup: float, window: float) -> float:
    """Completed steps per second with `CONCURRENCY` workflows in flight."""
    probe = Probe()
    with tempfile.TemporaryDirectory(prefix="pyrivet-bench-") as data_dir:
        async with make_registry(probe).runtime(data_dir=data_dir) as runtime:
            client = Client(runtime)
            stop = False

            async def slot(number: int) -> None:
                n = 0
                while not stop:
                    await run_one(client, probe, f"c{number}-{n}")
                    n += 1

            tasks = [asyncio.ensure_future(slot(i)) for i in range(CONCURRENCY)]
            await asyncio.sleep(warmup)
            first, started = probe.steps_done, time.perf_counter()
            await asyncio.sleep(window)
            rate = (probe.steps_done - first) / (time.perf_counter() - started)
            stop = True
            await asyncio.gather(*tasks)
    return rate


def instructions(workflows: int, in_flight: int, storage: str) -> None:
    """Run ``workflows`` workflows, ``in_flight`` at a time, untimed (for callgrind)."""

    async def main() -> None:
        probe = Probe()
        with tempfile.TemporaryDirectory(prefix="pyrivet-bench-") as data_dir:
            # Under callgrind every commit overruns the inline budget (5 ms): a large one
            # keeps the path a real machine takes (inline when the writer is idle).
            driver = (
                MemoryDriver()
                if storage == "memory"
                else SQLiteDriver(data_dir, synchronous="FULL", inline_budget=60.0)
            )
            async with make_registry(probe).runtime(data_dir=data_dir, storage=driver) as runtime:
                client = Client(runtime)
                numbers = iter(range(workflows))

                async def slot() -> None:
                    for n in numbers:
                        await run_one(client, probe, f"w{n}")

                await asyncio.gather(*(slot() for _ in range(in_flight)))

    asyncio.run(main())


def dbos_figures(which: str, quick: bool, busy: bool) -> AnchorFigures | None:
    if which == "none":
        return None
    args = ["--mode", "async", "--no-recovery"]
    if quick:
        args.append("--quick")
    if busy:
        # Measure now, under whatever load there is, as pyrivet's rows just were.
        args += ["--idle-wait", "0", "--retries", "0"]
    if which != "both":
        args += ["--backend", which]
    try:
        return measure(args)
    except AnchorError as exc:
        print(f"DBOS anchor not measured: {exc}", flush=True)
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, one run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dbos", choices=["both", "sqlite", "postgres", "none"], default="both")
    parser.add_argument(
        "--busy",
        action="store_true",
        help="do not let the DBOS harness wait for an idle machine (both sides then "
        "run under the same load; the ratio stays meaningful, the absolute figures less so)",
    )
    parser.add_argument("--instructions", type=int, metavar="N", help="see the docstring")
    parser.add_argument("--in-flight", type=int, default=1, help="with --instructions")
    parser.add_argument("--storage", choices=["sqlite", "memory"], default="sqlite")
    args = parser.parse_args()
    if args.instructions is not None:
        instructions(args.instructions, args.in_flight, args.storage)
        return
    runs = 1 if args.quick else args.runs
    workflows = 50 if args.quick else 200
    warmup, window = (1.0, 3.0) if args.quick else (2.0, 10.0)

    print(
        f"# pyrivet workflow benchmark ({platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, runs={runs}, "
        f"{STEPS}-step workflows, strict, SQLite)",
        flush=True,
    )
    # Run by run, the per-step figure right after its floors; gaps are medians of each
    # run's own (`paired_gap`): the disk's speed drifts between runs.
    floors, afters, seq = [], [], []
    for _ in range(runs):
        floors.append(commit_floor(500 if args.quick else 2_000)[0])
        afters.append(asyncio.run(commit_then_relaxed(500 if args.quick else 5_000))[0])
        seq.append(asyncio.run(sequential(workflows)))
    floor, after = statistics.median(floors), statistics.median(afters)
    p50s = [s[0] for s in seq]
    p50 = statistics.median(p50s)
    p99 = statistics.median(s[1] for s in seq)
    wall = statistics.median(s[2] for s in seq)
    rate = statistics.median(asyncio.run(concurrent(warmup, window)) for _ in range(runs))

    def us(seconds: float) -> str:
        return f"{seconds * 1e6:.0f} µs"

    print(f"{'floor: bare SQLite WAL commit (FULL), p50':<52} {us(floor):>12}")
    print(
        f"{'floor: bare commit, then a relaxed action, p50':<52} {us(after):>12}"
        f"  (floor + {us(paired_gap(afters, floors))}: the action after an fsync)"
    )
    print(
        f"{'pyrivet per step p50 / p99 (step to step)':<52} {us(p50):>5} / {us(p99):<9}"
        f"  target p50 ≤ floor + 50 = {us(floor + 50e-6)} "
        f"(floor + {us(paired_gap(p50s, floors))}; "
        f"the floor above + {us(paired_gap(p50s, afters))})"
    )
    print(f"{'pyrivet per step p50, workflow wall / 10':<52} {us(wall):>12}")
    print(f"{f'pyrivet steps/s @{CONCURRENCY}':<52} {rate:>12,.0f}")

    dbos = dbos_figures(args.dbos, args.quick, args.busy)
    if dbos is None:
        return
    for name, figures in sorted(dbos["rows"].items()):
        their = figures["steps_per_s"]
        label = f"DBOS {name} steps/s @{dbos['concurrency']}"
        print(f"{f'DBOS {name} per step p50 (wf/10)':<52} {figures['per_step_p50_us']:>9.0f} µs")
        print(
            f"{label:<52} {their:>12,.0f}"
            f"  pyrivet / DBOS = {rate / their:.0f}x (target: at least 50x)"
        )
    for name, floor_figures in sorted(dbos["floors"].items()):
        print(f"{f'floor (DBOS harness) {name} p50':<52} {floor_figures['p50_us']:>9.0f} µs")


if __name__ == "__main__":
    main()
