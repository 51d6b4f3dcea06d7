"""Failover time of pyrivet envoys on a two-node Rivet Engine 2.3.19 cluster.

    . .venv/bin/activate
    python bench/bench_failover.py                 # 4 scenarios, ~3-4 min
    python bench/bench_failover.py --keys 12 --only envoy-fast

Each scenario builds a cluster of its own with tests/engine/cluster.py (a PostgreSQL
database of its own at ``PYRIVET_POSTGRES_DSN``, default
``postgresql://root@127.0.0.1:5432``; a private nats-server; two engine nodes; envoy
processes of ``pyrivet serve --engine`` through a TCP balancer in front of the nodes)
and drives ledger actors with tests/engine/load.py: one caller per actor through the
two gateways, each call waiting for its answer.

* ``envoy``: every actor on envoy "a", a second envoy "b" idle; kill -9 "a". Figure:
  seconds from the kill (the process reaped) to each actor's first acknowledged write
  after it (p50 and max over the actors). Floor: the engine's lost threshold (it only
  moves an envoy's actors once the envoy's last recorded ping is older than that).
* ``leader``: both envoys hosting, kill -9 the engine node holding the UDB leader
  lease. Figure: same. Floor: when the other node logged taking the lease (nothing
  commits before), measured in the same run.

``-default`` uses the engine's default thresholds, ``-fast`` the lowest the test suite
uses (`FAST_THRESHOLDS`; for a leader kill `LEADER_THRESHOLDS`, the same with a 30 s
lost threshold, which must outlast the lease takeover: see docs/engine.md). The
history checker's verdict is printed beside each run (every acknowledged write kept,
no actor on two envoys at once). The figures are
wall-clock times on a shared machine: compare runs on a quiet one.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from engine.cluster import (
    DEFAULT_THRESHOLDS,
    FAST_THRESHOLDS,
    LEADER_THRESHOLDS,
    Cluster,
    cluster,
)
from engine.history import check_history
from engine.load import LedgerLoad

WAIT = 180.0


@dataclass
class Result:
    name: str
    failovers: list[float]
    floor: float
    history: str


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def verdict(built: Cluster, load: LedgerLoad, gateway: int) -> str:
    await load.stop()
    final = await load.read_final(gateway)
    problems = check_history(load.acks, final, built.ownership())
    return "sound" if not problems else f"{len(problems)} problems: {problems[0]}"


def lease_taken_after(built: Cluster, survivor: int, killed_wall: float) -> float | None:
    """Seconds from the kill to the survivor's 'acquired … leader lease' log line."""
    for line in built.nodes[survivor].log_path.read_text(errors="replace").splitlines():
        if "acquired udb postgres leader lease" not in line or not line.startswith("ts="):
            continue
        stamp = line[3:].split()[0].rstrip("Z")[:26]
        at = datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.UTC).timestamp()
        if at > killed_wall:
            return at - killed_wall
    return None


async def envoy_kill(root: Path, keys: list[str], thresholds: dict[str, int]) -> Result:
    async with cluster(root, thresholds) as built:
        load = LedgerLoad(built.gateways, built.namespace, built.pool, built.nodes[0].token, keys)
        async with load:
            first = built.start_envoy("a")
            await first.hosting(WAIT)
            await load.wait_until(lambda ld: ld.has_acks(3, envoy="a"), WAIT)
            await built.start_envoy("b").hosting(WAIT)
            killed = first.kill()
            await load.wait_until(lambda ld: ld.has_acks(1, killed, envoy="b"), WAIT)
            failovers = load.failover(keys, killed)
            history = await verdict(built, load, 0)
    return Result("", failovers, thresholds["envoy_lost_threshold"] / 1000, history)


async def leader_kill(root: Path, keys: list[str], thresholds: dict[str, int]) -> Result:
    async with cluster(root, thresholds) as built:
        load = LedgerLoad(built.gateways, built.namespace, built.pool, built.nodes[0].token, keys)
        async with load:
            for name in ("a", "b"):
                await built.start_envoy(name).hosting(WAIT)
            await load.wait_until(lambda ld: ld.has_acks(3), WAIT)
            leader = built.leader()
            killed_wall = time.time()
            killed = built.kill_node(leader)
            await load.wait_until(lambda ld: ld.has_acks(1, killed), WAIT)
            failovers = load.failover(keys, killed)
            history = await verdict(built, load, 1 - leader)
            lease = lease_taken_after(built, 1 - leader, killed_wall)
    return Result("", failovers, lease or 0.0, history)


SCENARIOS = {
    "envoy-default": (envoy_kill, DEFAULT_THRESHOLDS),
    "envoy-fast": (envoy_kill, FAST_THRESHOLDS),
    "leader-default": (leader_kill, DEFAULT_THRESHOLDS),
    "leader-fast": (leader_kill, LEADER_THRESHOLDS),
}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=6, help="ledger actors under load")
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append")
    args = parser.parse_args()
    keys = [f"ledger-{index}" for index in range(args.keys)]
    results: list[Result] = []
    for name in args.only or list(SCENARIOS):
        run, thresholds = SCENARIOS[name]
        with tempfile.TemporaryDirectory(prefix=f"failover-{name}-") as root:
            try:
                result = await run(Path(root), keys, thresholds)
            except TimeoutError as exc:
                print(f"{name}: {exc}", file=sys.stderr)
                result = Result("", [float("inf")], 0.0, f"did not resume within {WAIT:g} s")
        result.name = name
        results.append(result)
        print(f"{name}: done ({result.history})", file=sys.stderr, flush=True)
    print(f"\nfailover after kill -9, {args.keys} ledger actors under load (seconds)\n")
    print(f"{'scenario':<16}{'p50':>8}{'max':>8}{'floor':>8}  history")
    for r in results:
        print(
            f"{r.name:<16}{percentile(r.failovers, 0.5):>8.1f}{max(r.failovers):>8.1f}"
            f"{r.floor:>8.1f}  {r.history}"
        )
    print(
        "\nfloor: envoy-*: the engine's envoy_lost_threshold; leader-*: the kill to the"
        " other node taking the UDB leader lease (0.0: not seen in its log)"
    )


if __name__ == "__main__":
    asyncio.run(main())
