"""``GET /metrics``: the runtime's counters in Prometheus text format.

Needs ``prometheus-client`` (the ``metrics`` extra, ``pip install 'pyrivet[metrics]'``);
without it the route answers 501 ``server/metrics_unavailable`` saying what to install.
Each scrape reads the runtime's `RuntimeMetrics` (counters the runtime keeps on its own
paths), what is awake now (`Runtime.gauges`) and how many actors storage holds (one
``count_actors`` query), and renders them with a throw-away collector registry; nothing
runs between scrapes. The first scrape turns on latency timing (see
``pyrivet._runtime.metrics``): histograms count actions and batches from then on.

Families (``actor`` is the actor type's name):

| name | type | labels |
|---|---|---|
| ``pyrivet_actors_awake`` / ``pyrivet_actors_sleeping`` | gauge | actor |
| ``pyrivet_actions_total`` | counter | actor, action, outcome |
| ``pyrivet_action_duration_seconds`` | histogram | actor, action |
| ``pyrivet_commit_batches_total`` / ``pyrivet_commit_failures_total`` | counter | |
| ``pyrivet_commit_batch_records`` | histogram | |
| ``pyrivet_commit_duration_seconds`` | histogram | |
| ``pyrivet_connections`` | gauge | actor |
| ``pyrivet_connections_opened_total`` / ``..._closed_total`` | counter | actor |
| ``pyrivet_events_total`` | counter | actor |
| ``pyrivet_queue_depth`` | gauge | actor |
| ``pyrivet_workflow_steps_total`` / ``pyrivet_workflow_retries_total`` | counter | actor |
| ``pyrivet_actor_{creates,wakes,sleeps,destroys}_total`` | counter | actor |
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._runtime.metrics import Histogram, RuntimeMetrics, action_names
from ..actor._definition import ActionSpec
from ..errors import ActorError
from ._asgi import HttpReply, RequestInfo
from ._state import ServerState
from .http_routes import method_not_allowed

try:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

    _PROMETHEUS = True
except ImportError:  # the `metrics` extra is not installed
    _PROMETHEUS = False

if TYPE_CHECKING:
    from .._runtime.runtime import Runtime

__all__ = ["metrics_route"]

_OUTCOMES_OK = "ok"


def unavailable() -> ActorError:
    return ActorError(
        "/metrics needs prometheus-client; install it with pip install 'pyrivet[metrics]' "
        "and restart the server",
        group="server",
        code="metrics_unavailable",
    )


async def metrics_route(state: ServerState, request: RequestInfo) -> HttpReply:
    """``GET /metrics``.

    Raises:
        ActorError: ``server/metrics_unavailable`` (501) without prometheus-client;
            ``actor/method_not_allowed`` for another method.
    """
    if request.method not in ("GET", "HEAD"):
        raise method_not_allowed(request.method, "GET")
    if not _PROMETHEUS:
        raise unavailable()
    runtime = state.runtime
    stored = await runtime.storage.count_actors()
    collector = _Snapshot(runtime, stored)
    runtime.metrics.enable_timing()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return HttpReply.of(200, generate_latest(registry), CONTENT_TYPE_LATEST)


class _Snapshot:
    """A one-scrape collector over a runtime's counters."""

    def __init__(self, runtime: Runtime, stored: Mapping[str, int]) -> None:
        self._metrics: RuntimeMetrics = runtime.metrics
        self._gauges = runtime.gauges()
        self._stored = stored
        #: (actor type, action) of each counter key.
        self._names = action_names(runtime.registry.definitions.values())

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        awake = self._gauges["awake"]
        names = sorted(set(awake) | set(self._stored))
        yield _gauge("pyrivet_actors_awake", "Actors in memory now.", awake, names)
        sleeping = {n: max(0, self._stored.get(n, 0) - awake.get(n, 0)) for n in names}
        yield _gauge("pyrivet_actors_sleeping", "Stored actors not in memory.", sleeping, names)
        yield self._actions(m)
        yield self._action_latency(m)
        batches = CounterMetricFamily("pyrivet_commit_batches", "Group-commit batches written.")
        batches.add_metric([], m.commit_batches)
        yield batches
        failures = CounterMetricFamily(
            "pyrivet_commit_failures", "Group-commit batches whose write failed."
        )
        failures.add_metric([], m.commit_failures)
        yield failures
        yield _histogram(
            "pyrivet_commit_batch_records", "Commit records per written batch.", m.commit_sizes
        )
        yield _histogram(
            "pyrivet_commit_duration_seconds",
            "Time from handing a batch to storage until it is durable (fsync included).",
            m.commit_seconds,
        )
        conns = self._gauges["connections"]
        yield _gauge("pyrivet_connections", "Open connections.", conns, sorted(conns))
        yield _counter("pyrivet_connections_opened", "Connections opened.", m.conns_opened)
        yield _counter("pyrivet_connections_closed", "Connections closed.", m.conns_closed)
        yield _counter("pyrivet_events", "Events emitted by actors.", m.events)
        depth = self._gauges["queue_depth"]
        yield _gauge("pyrivet_queue_depth", "Messages in awake actors' queues.", depth, depth)
        yield _counter("pyrivet_workflow_steps", "Workflow step attempts.", m.workflow_steps)
        yield _counter(
            "pyrivet_workflow_retries",
            "Workflow step attempts after the first.",
            m.workflow_retries,
        )
        yield _counter("pyrivet_actor_creates", "Actors created.", m.creates)
        yield _counter("pyrivet_actor_wakes", "Actors woken from storage.", m.wakes)
        yield _counter("pyrivet_actor_sleeps", "Actors put to sleep.", m.sleeps)
        yield _counter("pyrivet_actor_destroys", "Actors destroyed.", m.destroys)

    def describe(self) -> list[Metric]:
        return []

    def _actions(self, m: RuntimeMetrics) -> Metric:
        family = CounterMetricFamily(
            "pyrivet_actions",
            "Actions finished, by outcome (ok, user_error, actor_error, internal_error, "
            "timeout, commit_error).",
            labels=["actor", "action", "outcome"],
        )
        for key, count in list(m.actions_ok.items()):
            family.add_metric([*self._name(key), _OUTCOMES_OK], count)
        for (key, outcome), count in list(m.action_errors.items()):
            family.add_metric([*self._name(key), outcome], count)
        return family

    def _action_latency(self, m: RuntimeMetrics) -> Metric:
        family = HistogramMetricFamily(
            "pyrivet_action_duration_seconds",
            "Action latency, from its start to its durable reply (measured from the first "
            "scrape on).",
            labels=["actor", "action"],
        )
        for key, histogram in list(m.action_latency.items()):
            family.add_metric(list(self._name(key)), _buckets(histogram), sum_value=histogram.total)
        return family

    def _name(self, key: ActionSpec) -> tuple[str, str]:
        return self._names.get(key, ("?", "?"))


def _gauge(name: str, doc: str, values: Mapping[str, int], names: Sequence[str] | Any) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=["actor"])
    for actor in names:
        family.add_metric([actor], values.get(actor, 0))
    return family


def _counter(name: str, doc: str, values: Mapping[str, int]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=["actor"])
    for actor, count in sorted(values.items()):
        family.add_metric([actor], count)
    return family


def _histogram(name: str, doc: str, histogram: Histogram) -> Metric:
    family = HistogramMetricFamily(name, doc)
    family.add_metric([], _buckets(histogram), sum_value=histogram.total)
    return family


def _buckets(histogram: Histogram) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs, +Inf last, from per-bucket counts."""
    out: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip(histogram.bounds, histogram.counts, strict=False):
        running += count
        out.append((repr(float(bound)), running))
    out.append(("+Inf", running + histogram.counts[-1]))
    return out
