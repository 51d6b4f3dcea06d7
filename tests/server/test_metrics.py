"""``GET /metrics``: Prometheus text after real actions, connections, queues and workflows."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pyrivet import Queue, Registry, UserError, actor
from pyrivet.client import Client
from pyrivet.server import metrics as metrics_module
from pyrivet.workflow import workflow

from .conftest import Served, Start


def metrics_registry() -> Registry:
    counter = actor("counter", state={"count": 0})

    @counter.action
    def increment(c: Any, amount: int = 1) -> int:
        if amount < 0:
            raise UserError("amount must be positive", code="negative_amount")
        c.state["count"] += amount
        c.broadcast("count", c.state["count"])
        return int(c.state["count"])

    @counter.action
    def crash(c: Any) -> None:
        raise RuntimeError("boom")

    inbox = actor("inbox", state={}, queues={"jobs": Queue()})

    @inbox.action
    def ping(c: Any) -> str:
        return "pong"

    attempts = {"n": 0}

    def flaky(c: Any) -> str:
        attempts["n"] += 1
        if attempts["n"] < 2:
            raise RuntimeError("first attempt fails")
        return "done"

    flow = actor("flow", state={})

    @flow.run
    @workflow
    async def run(ctx: Any) -> str:
        return str(await ctx.step("flaky", flaky, retry_backoff_base=0.0))

    @flow.action
    def noop(c: Any) -> None:
        return None

    return Registry([counter, inbox, flow])


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(served: Served) -> Samples:
    reply = await served.http.get("/metrics")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_real_work(start_server: Start) -> None:
    served = await start_server(metrics_registry())
    assert served.runtime is not None
    first = await scrape(served)  # turns latency timing on
    assert (
        value(first, "pyrivet_actions_total", actor="counter", action="increment", outcome="ok")
        == 0
    )
    async with Client(served.url) as client:
        room = client.get_or_create("counter", ["room"])
        async with room.connect() as conn:
            conn.on("count", lambda n: None)
            for _ in range(3):
                await room.increment(1)
            during = await scrape(served)
            assert value(during, "pyrivet_connections", actor="counter") == 1
        with pytest.raises(UserError):
            await room.increment(-1)
        with pytest.raises(Exception, match="internal"):
            await room.crash()
        inbox = client.get_or_create("inbox", ["a"])
        await inbox.send("jobs", {"n": 1})
        await inbox.send("jobs", {"n": 2})
        await client.get_or_create("flow", ["w"]).noop()
    samples = await scrape(served)
    ok = value(samples, "pyrivet_actions_total", actor="counter", action="increment", outcome="ok")
    assert ok == 3
    assert (
        value(
            samples,
            "pyrivet_actions_total",
            actor="counter",
            action="increment",
            outcome="user_error",
        )
        == 1
    )
    assert (
        value(
            samples,
            "pyrivet_actions_total",
            actor="counter",
            action="crash",
            outcome="internal_error",
        )
        == 1
    )
    count = value(
        samples, "pyrivet_action_duration_seconds_count", actor="counter", action="increment"
    )
    assert count == 4  # three ok and one user error, all after the first scrape
    assert (
        value(samples, "pyrivet_action_duration_seconds_sum", actor="counter", action="increment")
        > 0
    )
    assert value(samples, "pyrivet_actors_awake", actor="counter") == 1
    assert value(samples, "pyrivet_actors_sleeping", actor="counter") == 0
    assert value(samples, "pyrivet_connections_opened_total", actor="counter") >= 1
    assert value(samples, "pyrivet_connections_closed_total", actor="counter") >= 1
    assert value(samples, "pyrivet_events_total", actor="counter") == 3
    assert value(samples, "pyrivet_queue_depth", actor="inbox") == 2
    assert value(samples, "pyrivet_actor_creates_total", actor="counter") == 1
    assert value(samples, "pyrivet_commit_batches_total") >= 1
    assert value(samples, "pyrivet_commit_batch_records_count") == value(
        samples, "pyrivet_commit_batches_total"
    )
    assert value(samples, "pyrivet_commit_duration_seconds_bucket", le="+Inf") >= 1
    assert value(samples, "pyrivet_workflow_steps_total", actor="flow") >= 2
    assert value(samples, "pyrivet_workflow_retries_total", actor="flow") >= 1

    # Sleep and wake are counted, and a sleeping actor shows as sleeping.
    actor_id = (await served.http.get("/actors", params={"name": "counter"})).json()["actors"][0][
        "actor_id"
    ]
    await served.runtime.sleep(actor_id)
    asleep = await scrape(served)
    assert value(asleep, "pyrivet_actors_sleeping", actor="counter") == 1
    assert value(asleep, "pyrivet_actors_awake", actor="counter") == 0
    assert value(asleep, "pyrivet_actor_sleeps_total", actor="counter") == 1
    async with Client(served.url) as client:
        assert await client.get_or_create("counter", ["room"]).increment(1) == 4
    woken = await scrape(served)
    assert value(woken, "pyrivet_actor_wakes_total", actor="counter") == 1


async def test_metrics_without_prometheus_says_what_to_install(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics_module, "_PROMETHEUS", False)
    reply = await served.http.get("/metrics")
    assert reply.status_code == 501
    body = reply.json()
    assert body["code"] == "metrics_unavailable"
    assert "pip install 'pyrivet[metrics]'" in body["message"]
    # The server keeps serving.
    assert (await served.http.get("/health")).status_code == 200


async def test_metrics_refuses_other_methods(served: Served) -> None:
    reply = await served.http.post("/metrics")
    assert reply.status_code == 405
