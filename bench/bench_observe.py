"""What metrics and tracing cost per in-process action.

    python bench/bench_observe.py                        # every variant, prints a table
    python bench/bench_observe.py --only plain --calls 20000

One relaxed action on the memory driver (no disk: the runtime's and the client's CPU
alone), called sequentially on one actor through ``Client(runtime)``:

* ``plain``: nobody scraped ``/metrics`` and no tracer: the runtime only counts the
  action (one dict increment);
* ``timed``: as after a first scrape: each action is also timed into its histogram;
* ``traced``: an OpenTelemetry SDK tracer provider with no exporter: every action
  makes a span (what tracing costs before any export).

Wall-clock figures on a shared machine are noisy: compare variants (and commits) by
instructions, running one variant under callgrind at two call counts and dividing the
difference by the difference in calls, e.g.

    for n in 1000 3000; do valgrind --tool=callgrind --callgrind-out-file=cg.$n \\
        python bench/bench_observe.py --only plain --calls $n --quiet; done
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
from typing import Any

from pyrivet import ActorOptions, Client, Registry, actor
from pyrivet.storage import MemoryDriver

bench = actor("bench", state={"n": 0}, options=ActorOptions(durability="relaxed"))


@bench.action
def bump(c: Any, amount: int) -> int:
    c.state["n"] += amount
    return int(c.state["n"])


REGISTRY = Registry([bench])
VARIANTS = ("plain", "timed", "traced")


def _provider(variant: str) -> Any:
    if variant != "traced":
        return None
    from opentelemetry.sdk.trace import TracerProvider  # the variant needs the SDK

    return TracerProvider()


async def run(variant: str, calls: int) -> float:
    """Seconds per call of ``calls`` sequential calls (after a warm-up)."""
    options: dict[str, Any] = {"storage": MemoryDriver()}
    provider = _provider(variant)
    if provider is not None:
        options["tracer_provider"] = provider
    async with REGISTRY.runtime(**options) as runtime:
        if variant == "timed":
            runtime.metrics.enable_timing()
        handle = Client(runtime).get_or_create("bench", ["one"])
        for _ in range(200):
            await handle.bump(1)
        started = time.perf_counter()
        for _ in range(calls):
            await handle.bump(1)
        return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=VARIANTS)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quiet", action="store_true", help="print nothing (for callgrind)")
    args = parser.parse_args()
    variants = [args.only] if args.only else list(VARIANTS)
    rows = []
    for variant in variants:
        figures = [asyncio.run(run(variant, args.calls)) for _ in range(args.repeat)]
        rows.append((variant, statistics.median(figures) * 1e6))
    if args.quiet:
        return
    print(f"python {platform.python_version()}, {args.calls} calls, median of {args.repeat}")
    print(f"{'variant':<10} {'µs/call':>9}")
    for variant, micros in rows:
        print(f"{variant:<10} {micros:>9.2f}")


if __name__ == "__main__":
    main()
