"""Commits through the Rivet Engine's KV (`EngineStore`), next to the engine's own floor.

    python bench/bench_engine_store.py            # ~1 min
    python bench/bench_engine_store.py --quick    # smaller counts, for a smoke run

Starts a real ``rivet-engine`` (the binary of tests/conformance/js's locked npm
packages; single node, file-system backend) on free loopback ports and one envoy in
this process hosting the counter actor (`counter_app.py`, durability "strict": a reply
waits for its commit) on an `EngineStore`. The actors are created and woken through
the engine's gateway; then actions are called in-process (`Runtime.call_action`), so
what is timed is the runtime plus its commits over the envoy socket, not the gateway.

* 1 actor, sequential: ``increment(1)`` awaited in a loop; commit latency p50/p99 and
  commits/s.
* 8 actors x 64 callers (see `ACTORS` on why not 64 actors): caller loops spread over
  the actors, all at once; calls/s, per-call p50/p99, and how many records the
  committer put in each batch (each batch is one pipelined round of engine puts).
* Floors beside them: the engine's raw KV put round trip (`EngineKV.put` of one small
  entry, sequential), and one put per actor sent together and awaited together.

Time is wall-clock (`perf_counter`); the machine is shared, so read the figures
relative to their floors. Every process started here is stopped by its handle.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

from counter_app import registry  # noqa: E402
from engine.conftest import Engine, start_engine, stop_engine  # noqa: E402
from pyrivet import Client  # noqa: E402
from pyrivet._runtime.runtime import Runtime  # noqa: E402
from pyrivet.engine._envoy import EnvoyConfig  # noqa: E402
from pyrivet.engine._host import EnvoyHost  # noqa: E402
from pyrivet.engine._kv import EngineKV  # noqa: E402
from pyrivet.engine._store import EngineStore  # noqa: E402
from pyrivet.server import create_app  # noqa: E402

POOL = "bench-engine-store"
#: Actors created. 2.3.19 (file-system backend, this machine) stalled creating the
#: 11th actor of a namespace every time (POST /actors and the gateway's getOrCreate
#: alike, with any storage driver), so the 64 callers share 8 actors.
ACTORS = 8
CALLERS = 64


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed(n: int, call: Callable[[], Awaitable[object]]) -> tuple[list[float], float]:
    """Latencies (ms) of ``n`` sequential calls and the elapsed seconds."""
    latencies = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - t0) * 1000)
    return latencies, time.perf_counter() - start


async def run(quick: bool) -> None:
    sequential = 100 if quick else 500
    per_caller = 10 if quick else 40
    actors = ACTORS
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        engine = start_engine(Path(tmp))
        try:
            store = EngineStore()
            namespace = engine.create_namespace()
            async with registry.runtime(storage=store) as runtime:
                config = EnvoyConfig(
                    engine.endpoint, namespace=namespace, pool=POOL, token=engine.token
                )
                async with EnvoyHost(runtime, create_app(runtime), config) as host:
                    await host.envoy.wait_ready()
                    async with Client(
                        engine.endpoint, namespace=namespace, pool_name=POOL, token=engine.token
                    ) as c:
                        ids = await create_actors(engine, c, namespace, actors)
                    await measure(runtime, host, ids, sequential, per_caller)
        except Exception:
            print(engine.log_tail(60), file=sys.stderr)
            raise
        finally:
            stop_engine(engine)


async def create_actors(engine: Engine, c: Client, namespace: str, count: int) -> list[str]:
    """Create and wake up to ``count`` counters; stop early (keeping those made) if the
    engine stalls on one (see `ACTORS`)."""
    ids: list[str] = []
    for i in range(count):
        try:
            actor_id = await asyncio.wait_for(
                asyncio.to_thread(engine.create_actor, "counter", f"b{i}", POOL, namespace), 40
            )
            await asyncio.wait_for(c.get_for_id("counter", actor_id).increment(0), 40)
        except (TimeoutError, OSError) as exc:
            print(f"engine stalled creating actor {i + 1} ({exc!r}); going on with {len(ids)}")
            break
        ids.append(actor_id)
    if not ids:
        raise SystemExit("the engine created no actor; see its log")
    return ids


async def measure(
    runtime: Runtime, host: EnvoyHost, ids: list[str], sequential: int, per_caller: int
) -> None:
    kv = EngineKV(host.envoy)
    one = ids[0]
    entry = [(b"\x02bench", b"\x01x")]

    floor_lat, floor_time = await timed(sequential, lambda: kv.put(one, entry))

    async def increment() -> object:
        return await runtime.call_action(one, "increment", [1])

    seq_lat, seq_time = await timed(sequential, increment)

    # 64 puts, one per actor, sent together: the pipelined floor of one batch.
    rounds = max(10, per_caller)
    t0 = time.perf_counter()
    round_lat = []
    for _ in range(rounds):
        r0 = time.perf_counter()
        await asyncio.gather(*(kv.put(actor_id, entry) for actor_id in ids))
        round_lat.append((time.perf_counter() - r0) * 1000)
    pipelined_rate = rounds * len(ids) / (time.perf_counter() - t0)

    committer = runtime._services.committer
    batches0, records0 = committer.batches, committer.records
    lat: list[float] = []

    async def caller(actor_id: str) -> None:  # one of CALLERS, over the actors in turn
        for _ in range(per_caller):
            c0 = time.perf_counter()
            await runtime.call_action(actor_id, "increment", [1])
            lat.append((time.perf_counter() - c0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(caller(ids[i % len(ids)]) for i in range(CALLERS)))
    many_time = time.perf_counter() - t0
    batches = committer.batches - batches0
    records = committer.records - records0

    load = os.getloadavg()[0]
    print(f"\nEngineStore commits over rivet-engine 2.3.19 (load average {load:.1f})\n")
    print("| figure | pyrivet EngineStore | engine KV floor |")
    print("|---|---|---|")
    print(
        f"| 1 actor sequential: commit p50 / p99 | {statistics.median(seq_lat):.2f} / "
        f"{percentile(seq_lat, 0.99):.2f} ms | put round trip {statistics.median(floor_lat):.2f}"
        f" / {percentile(floor_lat, 0.99):.2f} ms |"
    )
    print(
        f"| 1 actor sequential: commits/s | {sequential / seq_time:,.0f} | "
        f"{sequential / floor_time:,.0f} puts/s |"
    )
    print(
        f"| {len(ids)} actors x {CALLERS} callers: calls/s | {len(lat) / many_time:,.0f} | "
        f"{pipelined_rate:,.0f} puts/s ({len(ids)} pipelined per round) |"
    )
    print(
        f"| {len(ids)} actors x {CALLERS} callers: call p50 / p99 | {statistics.median(lat):.2f}"
        f" / {percentile(lat, 0.99):.2f} ms | round of {len(ids)} puts p50 "
        f"{statistics.median(round_lat):.2f} ms |"
    )
    print(
        f"| records per batch (one pipelined round of puts) | {records / max(batches, 1):.1f} "
        f"({batches} batches) | |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (smoke run)")
    args = parser.parse_args()
    asyncio.run(run(args.quick))


if __name__ == "__main__":
    main()
