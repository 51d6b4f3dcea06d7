"""The workflow engine's own cost per step, with a host that does nothing.

    python bench/bench_workflow_engine.py            # 20,000 steps, best of 5 runs
    python bench/bench_workflow_engine.py --quick    # 2,000 steps, 2 runs

The host's flush returns at once and its step context is a constant, so what is
measured is the engine: name and history checks, record encoding, the flush call,
result decoding. Reported per step, in microseconds of wall time (`perf_counter`):

* ``first run``: a step that runs and is recorded (top-level steps, and steps inside a
  loop, one per iteration, with history pruning);
* ``replay``: a new engine over the recorded history returning every step's output
  without running it (includes decoding the records at load).

The actor binding's figures add the commit itself on top of these.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pyrivet._util.clock import Clock, SystemClock
from pyrivet.workflow import (
    Loop,
    LoopBreak,
    LoopContinue,
    QueueMessage,
    StepInfo,
    Workflow,
    WorkflowContext,
    WorkflowEngine,
    WorkflowHost,
    Writes,
    workflow,
)


class NoopHost(WorkflowHost[None]):
    """Keeps the records (so a replay can load them) and does nothing else."""

    def __init__(self, records: dict[str, bytes] | None = None) -> None:
        self._clock = SystemClock()
        self.records = records if records is not None else {}

    @property
    def clock(self) -> Clock:
        return self._clock

    async def load(self) -> Mapping[str, bytes]:
        return self.records

    def step_context(self, step: StepInfo) -> None:
        return None

    def step_finished(self, step: StepInfo) -> None:
        return None

    def error_context(self) -> object:
        return None

    async def flush(self, writes: Writes) -> None:
        for key, data in writes.items():
            if data is None:
                self.records.pop(key, None)
            else:
                self.records[key] = data

    async def sleep_until(self, deadline: float) -> None:
        return None

    async def receive(
        self, names: Sequence[str] | None, count: int, deadline: float | None, completable: bool
    ) -> Sequence[QueueMessage]:
        return []

    async def complete_message(self, message_id: int, response: Any) -> None:
        return None


def top_level(steps: int) -> Workflow:
    names = [f"step-{i}" for i in range(steps)]

    def run(s: None) -> int:
        return 1

    @workflow
    async def wf(ctx: WorkflowContext[None]) -> int:
        total = 0
        for name in names:
            total += await ctx.step(name, run)
        return total

    return wf


def in_loop(steps: int) -> Workflow:
    def run(s: None) -> int:
        return 1

    async def body(ctx: WorkflowContext[None], i: int) -> LoopBreak[int] | LoopContinue[int]:
        await ctx.step("work", run)
        return Loop.break_(i) if i + 1 == steps else Loop.continue_(i + 1)

    @workflow
    async def wf(ctx: WorkflowContext[None]) -> int:
        return await ctx.loop("loop", body, state=0)

    return wf


async def measure(wf: Workflow, steps: int) -> tuple[float, float]:
    """(µs per step on the first run, µs per step on replay)."""
    host = NoopHost()
    started = time.perf_counter()
    await WorkflowEngine(wf, host).run()
    first = time.perf_counter() - started
    # Replay: the same history without the end state, so every step is replayed.
    records = dict(host.records)
    records.pop("meta")
    started = time.perf_counter()
    await WorkflowEngine(wf, NoopHost(records)).run()
    replay = time.perf_counter() - started
    return first / steps * 1e6, replay / steps * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 steps, 2 runs")
    args = parser.parse_args()
    steps, runs = (2_000, 2) if args.quick else (20_000, 5)
    print(f"python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}")
    print(f"{steps} steps, best of {runs} runs, µs per step")
    print(f"{'workflow':<22}{'first run':>12}{'replay':>10}")
    # Loops replay only their current iteration: their replay figure is not per step.
    for label, build in (("top-level steps", top_level), ("one step per loop turn", in_loop)):
        results = [await measure(build(steps), steps) for _ in range(runs)]
        first = min(r[0] for r in results)
        replay = min(r[1] for r in results)
        print(f"{label:<22}{first:>12.2f}{replay:>10.2f}")


if __name__ == "__main__":
    asyncio.run(main())
