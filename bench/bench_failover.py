"""Failover time of pyrivet's and RivetKit's envoys on a two-node Rivet Engine 2.3.19 cluster.

    . .venv/bin/activate
    python bench/bench_failover.py                 # 4 scenarios x 2 envoys, ~5-10 min
    python bench/bench_failover.py --repeat 3      # each row 3 times, pooled
    python bench/bench_failover.py --keys 12 --only envoy-fast --runtime pyrivet

Each scenario builds a cluster of its own with tests/engine/cluster.py (a PostgreSQL
database of its own at ``PYRIVET_POSTGRES_DSN``, default
``postgresql://root@127.0.0.1:5432``; a private nats-server; two engine nodes; envoy
processes through a TCP balancer in front of the nodes) and drives ledger actors with
tests/engine/load.py: one caller per actor through the two gateways, each call waiting
for its answer. Every scenario runs with each envoy runtime (``--runtime``), one after
the other on the same engine binary: ``pyrivet`` (``pyrivet serve --engine``) and
``rivetkit`` (RivetKit 2.3.19's own Node envoy hosting the same ledger,
bench/js/rivetkit_ledger_envoy.mjs, with RivetKit's defaults).

* ``envoy``: every actor on envoy "a", a second envoy "b" idle; kill -9 "a". Figure:
  seconds from the kill (the process reaped) to the first write "b" acknowledged for
  each actor "a" held at the kill (p50 and max over the actors; answers "a" sent
  just before its death arrive after it and do not count). Floor: the engine's lost
  threshold (it only moves an envoy's actors once the envoy's last recorded ping is
  older than that). Per key, stderr shows who answered before and after the kill.
* ``leader``: both envoys hosting, kill -9 the engine node holding the UDB leader
  lease. Figure: seconds from the kill to each actor's first acknowledged write after
  it. Floor: when the other node logged taking the lease (nothing commits before),
  measured in the same run.

``-default`` uses the engine's default thresholds, ``-fast`` the lowest the test suite
uses (`FAST_THRESHOLDS`; for a leader kill `LEADER_THRESHOLDS`, the same with a 30 s
lost threshold, which must outlast the lease takeover: see docs/engine.md). The
history checker's verdict is printed beside each run (every acknowledged write kept,
no actor on two envoys at once), with the number of acknowledged writes that did not
last (`history.lost_acks`: RivetKit saves state at most once a second, after the
reply). The figures are wall-clock times on a shared machine: compare runs on a quiet
one; the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import statistics
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
    PYRIVET,
    RIVETKIT,
    Cluster,
    EnvoyRuntime,
    cluster,
)
from engine.history import check_history, lost_acks
from engine.load import LedgerLoad

WAIT = 180.0


RUNTIMES: dict[str, EnvoyRuntime] = {"pyrivet": PYRIVET, "rivetkit": RIVETKIT}


@dataclass
class Verdict:
    """The history checker's verdict on one run and the acked writes that did not last."""

    history: str
    lost: int | None


@dataclass
class Result:
    """One run: seconds to each measured actor's first ack after the kill, the floor,
    the verdict, and (envoy kills) how many actors the killed envoy held."""

    failovers: list[float]
    floor: float
    verdict: Verdict
    held: int | None = None


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def verdict(built: Cluster, load: LedgerLoad, gateway: int) -> Verdict:
    await load.stop()
    final = await load.read_final(gateway)
    problems = check_history(load.acks, final, built.ownership())
    for problem in problems[:5]:
        print(f"  history: {problem}", file=sys.stderr)
    history = "sound" if not problems else f"{len(problems)} problems: {problems[0]}"
    return Verdict(history, lost_acks(load.acks, final))


def report_moves(load: LedgerLoad, keys: list[str], killed: int) -> None:
    """Per key on stderr: the envoy of its last ack before the kill and of its acks
    answered after it, with the seconds from the kill to the first of each."""
    for key in keys:
        before = [ack for ack in load.acks[key] if ack.at <= killed]
        firsts: dict[str, float] = {}
        for ack in load.acks[key]:
            if ack.at > killed:
                firsts.setdefault(ack.envoy, (ack.at - killed) / 1e9)
        after = ", ".join(f"{envoy} after {at:.1f} s" for envoy, at in firsts.items())
        print(f"  {key}: {before[-1].envoy if before else None} -> {after}", file=sys.stderr)


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


async def envoy_kill(
    root: Path, keys: list[str], thresholds: dict[str, int], runtime: EnvoyRuntime
) -> Result:
    async with cluster(root, thresholds, runtime) as built:
        load = LedgerLoad(built.gateways, built.namespace, built.pool, built.nodes[0].token, keys)
        async with load:
            first = built.start_envoy("a")
            await first.hosting(WAIT)
            await load.wait_until(lambda ld: ld.has_acks(3, envoy="a"), WAIT)
            await built.start_envoy("b").hosting(WAIT)
            # Measured: the actors "a" held at the kill (the engine may have moved
            # some to "b" before, e.g. when "a" missed pings on a loaded machine).
            held = [key for key in keys if load.owner(key) == "a"]
            killed = first.kill()
            await load.wait_until(lambda ld: ld.has_acks(1, killed, envoy="b"), WAIT)
            report_moves(load, keys, killed)
            failovers = load.failover(held, killed, envoy="b")
            judged = await verdict(built, load, 0)
    return Result(failovers, thresholds["envoy_lost_threshold"] / 1000, judged, len(held))


async def leader_kill(
    root: Path, keys: list[str], thresholds: dict[str, int], runtime: EnvoyRuntime
) -> Result:
    async with cluster(root, thresholds, runtime) as built:
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
            judged = await verdict(built, load, 1 - leader)
            lease = lease_taken_after(built, 1 - leader, killed_wall)
    return Result(failovers, lease or 0.0, judged)


SCENARIOS = {
    "envoy-default": (envoy_kill, DEFAULT_THRESHOLDS),
    "envoy-fast": (envoy_kill, FAST_THRESHOLDS),
    "leader-default": (leader_kill, DEFAULT_THRESHOLDS),
    "leader-fast": (leader_kill, LEADER_THRESHOLDS),
}


def pooled(runs: list[Result]) -> tuple[list[float], list[float], float, str, str, str]:
    """The runs of one row: every failover, each over its run's floor, the median
    floor, the acked writes lost, the actors measured and the histories."""
    failovers = [f for r in runs for f in r.failovers]
    over = [f - r.floor for r in runs for f in r.failovers]
    floor = statistics.median(r.floor for r in runs)
    losses = [r.verdict.lost for r in runs]
    lost = "-" if None in losses else str(sum(v for v in losses if v is not None))
    helds = [r.held for r in runs]
    held = "-" if None in helds else "+".join(str(h) for h in helds)
    histories = [r.verdict.history for r in runs]
    history = "sound" if all(h == "sound" for h in histories) else "; ".join(histories)
    return failovers, over, floor, lost, held, history


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=6, help="ledger actors under load")
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--runtime", choices=sorted(RUNTIMES), action="append")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each row, pooled")
    args = parser.parse_args()
    keys = [f"ledger-{index}" for index in range(args.keys)]
    rows: dict[tuple[str, str], list[Result]] = {}
    started = datetime.datetime.now(datetime.UTC)
    loads: list[float] = []
    # Each scenario with each runtime in turn, so both see the machine alike.
    for _ in range(args.repeat):
        for name in args.only or list(SCENARIOS):
            for runtime_name in args.runtime or list(RUNTIMES):
                result = await run_one(name, runtime_name, keys)
                loads.append(os.getloadavg()[0])
                rows.setdefault((name, runtime_name), []).append(result)
    print(
        f"\nfailover after kill -9, {args.keys} ledger actors under load (seconds), "
        f"{args.repeat} run(s) per row; {started:%Y-%m-%d %H:%M} UTC, load average "
        f"(1 min) after each run {min(loads):.2f}-{max(loads):.2f}\n"
    )
    print(
        "| scenario | envoy | p50 | max | floor | p50 over floor | actors measured "
        "| acked writes lost | history |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, runtime_name), runs in rows.items():
        failovers, over, floor, lost, held, history = pooled(runs)
        cells = (
            [f"{percentile(failovers, 0.5):.1f}", f"{max(failovers):.1f}"]
            if failovers
            else ["-", "-"]
        )
        cells += [f"{floor:.1f}", f"{percentile(over, 0.5):.1f}" if over else "-"]
        print(f"| {name} | {runtime_name} | {' | '.join(cells)} | {held} | {lost} | {history} |")
    print(
        "\nfloor: envoy-*: the engine's envoy_lost_threshold; leader-*: the kill to the"
        " other node taking the UDB leader lease (0.0: not seen in its log); p50 over floor:"
        " of each failover minus its run's floor.\n"
        "actors measured: envoy-*: the actors the killed envoy held (per run); leader-*:"
        " all. acked writes lost: history.lost_acks."
    )


async def run_one(name: str, runtime_name: str, keys: list[str]) -> Result:
    """One scenario with one runtime in a cluster of its own; a run that did not
    resume (or whose envoy never hosted) gives an infinite failover."""
    run, thresholds = SCENARIOS[name]
    print(f"{name} / {runtime_name}: running", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix=f"failover-{name}-") as root:
        try:
            result = await run(Path(root), keys, thresholds, RUNTIMES[runtime_name])
        except (TimeoutError, AssertionError) as exc:
            # TimeoutError: no resume; AssertionError: an envoy never hosted.
            print(f"{name} / {runtime_name}: {exc}", file=sys.stderr)
            why = f"did not resume within {WAIT:g} s or did not start"
            result = Result([float("inf")], 0.0, Verdict(why, None))
    print(f"{name} / {runtime_name}: done ({result.verdict.history})", file=sys.stderr)
    return result


if __name__ == "__main__":
    asyncio.run(main())
