"""Multi-node: two engine nodes on PostgreSQL + NATS, pyrivet envoy processes in one
pool, ledger actors under load through both gateways, and faults.

Each test builds its own cluster (tests/engine/cluster.py: a database of its own,
a private NATS, two nodes, the envoys) with the lowest thresholds the engine works
with (`FAST_THRESHOLDS`; for a leader kill a lost threshold above the lease takeover,
`LEADER_THRESHOLDS`), runs `LedgerLoad`, injects one fault, waits (bounded, on
acknowledged writes, never on fixed sleeps) for service to resume, stops the load and
runs the history checker over every acknowledged write and every envoy's ownership
log. Skips without PostgreSQL or the engine binary unless ``PYRIVET_REQUIRE_POSTGRES``
or ``PYRIVET_REQUIRE_ENGINE`` is 1.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from .cluster import FAST_THRESHOLDS, LEADER_THRESHOLDS, Cluster, EnvoyProcess, cluster
from .history import check_history, read_ownership
from .load import LedgerLoad

#: Bound of every wait on the cluster (a node or an envoy starting, actors moving). A
#: test waits at most four times (two envoys hosting, the first acks, the move) plus
#: `load.read_final`'s one `CALL_TIMEOUT` and the cluster's start and stop, so a stuck
#: phase fails with its own `TimeoutError` (naming it, with each key's acks) well
#: before pytest-timeout, which is only the backstop.
WAIT = 60.0
pytestmark = [pytest.mark.slow, pytest.mark.asyncio, pytest.mark.timeout(420)]
KEYS = [f"ledger-{index}" for index in range(6)]


def load_for(built: Cluster) -> LedgerLoad:
    return LedgerLoad(built.gateways, built.namespace, built.pool, built.nodes[0].token, KEYS)


async def settle_on(built: Cluster, load: LedgerLoad, name: str) -> EnvoyProcess:
    """Start envoy ``name`` alone first: every key's actor lands on it."""
    first = built.start_envoy(name)
    await first.hosting(WAIT)
    await load.wait_until(lambda ld: ld.has_acks(3, envoy=name), WAIT)
    return first


async def finish(built: Cluster, load: LedgerLoad, gateway: int = 0) -> None:
    """Stop the load, read the final counts and assert the history is sound."""
    await load.stop()
    final = await load.read_final(gateway)
    problems = check_history(load.acks, final, built.ownership())
    assert not problems, "\n".join(problems)


async def test_sigterm_drains_and_actors_move_without_client_errors(tmp_path: Path) -> None:
    async with cluster(tmp_path, FAST_THRESHOLDS) as built, load_for(built) as load:
        first = await settle_on(built, load, "a")
        await built.start_envoy("b").hosting(WAIT)
        stopped_at = time.monotonic_ns()
        assert await asyncio.to_thread(first.terminate, WAIT) == 0
        await load.wait_until(lambda ld: ld.has_acks(2, stopped_at, envoy="b"), WAIT)
        assert "every actor is asleep" in first.child.output()
        assert load.failures_since(stopped_at) == []
        # The drain put every actor to sleep on "a": a sleep line for each wake.
        drained = read_ownership(first.log_path, "a", died_at=None)
        assert drained and all(stretch.end is not None for stretch in drained)
        await finish(built, load)


async def test_kill_9_envoy_actors_resume_on_the_other_with_every_acked_write(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path, FAST_THRESHOLDS) as built, load_for(built) as load:
        first = await settle_on(built, load, "a")
        await built.start_envoy("b").hosting(WAIT)
        killed_at = first.kill()
        await load.wait_until(lambda ld: ld.has_acks(2, killed_at, envoy="b"), WAIT)
        await finish(built, load)


async def test_kill_9_leader_engine_node_service_resumes_through_the_other(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path, LEADER_THRESHOLDS) as built, load_for(built) as load:
        for name in ("a", "b"):
            await built.start_envoy(name).hosting(WAIT)
        await load.wait_until(lambda ld: ld.has_acks(3), WAIT)
        leader = built.leader()
        killed_at = built.kill_node(leader)
        await load.wait_until(lambda ld: ld.has_acks(2, killed_at), WAIT)
        await finish(built, load, gateway=1 - leader)
