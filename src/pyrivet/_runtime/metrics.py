"""`RuntimeMetrics`: the counters one runtime keeps for ``/metrics`` (no Prometheus here).

The runtime updates plain Python counters on its own paths; whoever exports them (the
server's ``/metrics`` route, see ``pyrivet.server.metrics``) reads this object when it
is scraped and turns it into Prometheus families. Nothing here imports an exporter.

Cost on the hot path: a finished action adds one to a `collections.defaultdict` entry
keyed by its `ActionSpec` (hashed by identity); nothing else. Latency histograms (actions
and commit batches) need a clock read per action, so they are recorded only once
``timing`` is on: the exporter turns it on at its first scrape (`enable_timing`). A
runtime nobody scrapes pays for one dict increment per action.

Everything here runs on the runtime's event loop; readers take snapshots there too.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from time import perf_counter
from typing import Any, Final

from ..actor._definition import ActionSpec, ActorDefinition

__all__ = [
    "ACTION_BUCKETS",
    "BATCH_BUCKETS",
    "COMMIT_BUCKETS",
    "Histogram",
    "RuntimeMetrics",
    "action_names",
    "bump",
    "perf_counter",
]

#: Upper bounds (seconds) of the action latency buckets.
ACTION_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
#: Upper bounds (seconds) of the commit write-time buckets.
COMMIT_BUCKETS: Final = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
#: Upper bounds (records) of the commit batch-size buckets.
BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Histogram:
    """Bucket counts and a sum, Prometheus style (``counts[i]``: observations not above
    ``bounds[i]`` and above the previous bound; the last slot is +Inf)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


class RuntimeMetrics:
    """The counters of one runtime (see the module docstring for what costs what)."""

    __slots__ = (
        "action_errors",
        "action_latency",
        "actions_ok",
        "commit_batches",
        "commit_failures",
        "commit_seconds",
        "commit_sizes",
        "conns_closed",
        "conns_opened",
        "creates",
        "destroys",
        "events",
        "sleeps",
        "timing",
        "wakes",
        "workflow_retries",
        "workflow_steps",
    )

    def __init__(self) -> None:
        #: Whether latencies are measured (turned on by the first scrape).
        self.timing = False
        #: Actions that returned, by spec (the registry's definitions map the spec
        #: back to its actor type and action; see `action_names`).
        self.actions_ok: defaultdict[ActionSpec, int] = defaultdict(int)
        #: Actions that failed, by (spec, outcome); outcome is ``user_error``,
        #: ``actor_error``, ``internal_error``, ``timeout`` or ``commit_error``.
        self.action_errors: dict[tuple[ActionSpec, str], int] = {}
        #: Latency from start to reply (durable), by spec; only while ``timing``.
        self.action_latency: dict[ActionSpec, Histogram] = {}
        #: Batches written by the committer, records per batch and write time.
        self.commit_batches = 0
        self.commit_failures = 0
        self.commit_sizes = Histogram(BATCH_BUCKETS)
        self.commit_seconds = Histogram(COMMIT_BUCKETS)
        #: Lifecycle counts by actor type.
        self.creates: dict[str, int] = {}
        self.wakes: dict[str, int] = {}
        self.sleeps: dict[str, int] = {}
        self.destroys: dict[str, int] = {}
        #: Connections opened and closed, events emitted, by actor type.
        self.conns_opened: dict[str, int] = {}
        self.conns_closed: dict[str, int] = {}
        self.events: dict[str, int] = {}
        #: Workflow step attempts and retries (attempts after the first), by actor type.
        self.workflow_steps: dict[str, int] = {}
        self.workflow_retries: dict[str, int] = {}

    def enable_timing(self) -> None:
        """Start measuring latencies (the exporter calls it when first scraped)."""
        self.timing = True

    def action_failed(self, spec: ActionSpec, outcome: str, started: float) -> None:
        """Count a failed action (``started``: `perf_counter` at its start, or 0.0)."""
        key = (spec, outcome)
        self.action_errors[key] = self.action_errors.get(key, 0) + 1
        if started:
            self.observe_action(spec, started)

    def observe_action(self, spec: ActionSpec, started: float) -> None:
        """Record an action's latency (from ``started``, a `perf_counter` reading)."""
        elapsed = perf_counter() - started
        histogram = self.action_latency.get(spec)
        if histogram is None:
            histogram = self.action_latency[spec] = Histogram(ACTION_BUCKETS)
        # `Histogram.observe` written out: this runs once per action while scraped.
        histogram.counts[bisect_left(histogram.bounds, elapsed)] += 1
        histogram.total += elapsed

    def batch_written(self, size: int, started: float) -> None:
        """Count a written commit batch of ``size`` records (``started`` as above)."""
        self.commit_batches += 1
        # `Histogram.observe` written out: this runs once per batch.
        sizes = self.commit_sizes
        sizes.counts[bisect_left(sizes.bounds, size)] += 1
        sizes.total += size
        if started:
            self.commit_seconds.observe(perf_counter() - started)


def action_names(
    definitions: Iterable[ActorDefinition[Any]],
) -> dict[ActionSpec, tuple[str, str]]:
    """``spec -> (actor type, action)`` for the keys of the action counters."""
    return {
        spec: (definition.name, spec.name)
        for definition in definitions
        for spec in definition.actions.values()
    }


def bump(counts: dict[str, int], name: str) -> None:
    """Add one to ``counts[name]``."""
    counts[name] = counts.get(name, 0) + 1
