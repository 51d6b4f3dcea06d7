"""OpenTelemetry spans: actions, hooks, commits and actor-to-actor calls, exported with
the SDK's in-memory exporter; a ``traceparent`` from an HTTP request is continued."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from websockets.asyncio.client import connect

from pyrivet import Client, MemoryDriver, Registry, UserError, actor
from pyrivet._protocol.messages import ActionResponse, Init
from pyrivet._runtime.tracing import continue_trace, end_trace, make_tracer

from ._support import call, query_url, recv_msg, subprotocols
from .conftest import Start

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exported = InMemorySpanExporter()
    yield exported
    exported.clear()


def provider_for(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def traced_registry() -> Registry:
    front = actor("front", state={"calls": 0})
    back = actor("back", state={"n": 0})

    @front.on_wake
    def woke(c: Any) -> None:
        return None

    @front.action
    async def relay(c: Any, amount: int) -> int:
        c.state["calls"] += 1
        return int(await c.client().get_or_create("back", ["b"]).add(amount))

    @front.action
    def refuse(c: Any) -> None:
        raise UserError("no", code="refused")

    @back.action
    def add(c: Any, amount: int) -> int:
        c.state["n"] += amount
        return int(c.state["n"])

    return Registry([front, back])


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def test_spans_around_actions_hooks_commits_and_calls(
    exporter: InMemorySpanExporter,
) -> None:
    runtime = traced_registry().runtime(
        storage=MemoryDriver(), tracer_provider=provider_for(exporter)
    )
    async with runtime:
        assert runtime.tracing
        front = Client(runtime).get_or_create("front", ["f"])
        assert await front.relay(2) == 2
        with pytest.raises(UserError):
            await front.refuse()
    spans = exporter.get_finished_spans()
    [relay] = by_name(spans, "action front.relay")
    [call] = by_name(spans, "call back.add")
    [add] = by_name(spans, "action back.add")
    assert call.kind is SpanKind.CLIENT
    assert call.parent is not None and call.parent.span_id == relay.context.span_id
    assert add.parent is not None and add.parent.span_id == call.context.span_id
    assert add.context.trace_id == relay.context.trace_id
    assert relay.attributes is not None
    assert relay.attributes["pyrivet.actor.name"] == "front"
    assert tuple(relay.attributes["pyrivet.actor.key"]) == ("f",)  # type: ignore[arg-type]
    assert relay.attributes["pyrivet.action"] == "relay"
    assert by_name(spans, "hook front.on_wake")
    commits = by_name(spans, "commit")
    assert commits and all(
        c.attributes is not None and c.attributes["pyrivet.commit.records"] >= 1  # type: ignore[operator]
        for c in commits
    )
    [refused] = by_name(spans, "action front.refuse")
    assert refused.status.status_code is StatusCode.ERROR
    assert any(e.name == "exception" for e in refused.events)


async def test_a_traceparent_header_is_continued(
    exporter: InMemorySpanExporter, start_server: Start
) -> None:
    served = await start_server(
        traced_registry(), runtime_options={"tracer_provider": provider_for(exporter)}
    )
    reply = await served.http.post(
        "/gateway/back/action/add?rvt-method=getOrCreate&rvt-key=x",
        json={"args": [3]},
        headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
    )
    assert reply.status_code == 200, reply.text
    [add] = by_name(exporter.get_finished_spans(), "action back.add")
    assert f"{add.context.trace_id:032x}" == TRACE_ID
    assert add.parent is not None and f"{add.parent.span_id:016x}" == PARENT_ID
    # A request without the header starts a trace of its own.
    exporter.clear()
    await served.http.post(
        "/gateway/back/action/add?rvt-method=getOrCreate&rvt-key=x", json={"args": [1]}
    )
    [fresh] = by_name(exporter.get_finished_spans(), "action back.add")
    assert f"{fresh.context.trace_id:032x}" != TRACE_ID


async def test_no_provider_means_no_tracing() -> None:
    # No global provider is configured in this test process.
    assert make_tracer() is None
    assert continue_trace(None) is None
    end_trace(None)
    async with traced_registry().runtime(storage=MemoryDriver()) as runtime:
        assert not runtime.tracing
        assert await Client(runtime).get_or_create("back", ["b"]).add(1) == 1


async def test_a_websocket_traceparent_parents_its_actions(
    exporter: InMemorySpanExporter, start_server: Start
) -> None:
    served = await start_server(
        traced_registry(), runtime_options={"tracer_provider": provider_for(exporter)}
    )
    url = query_url("back", "/connect", key="ws")
    async with connect(
        served.ws_url + url,
        subprotocols=subprotocols("json"),
        additional_headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
    ) as ws:
        assert isinstance(await recv_msg(ws, "json"), Init)
        await call(ws, "json", 1, "add", 4)
        reply = await recv_msg(ws, "json")
        assert isinstance(reply, ActionResponse) and reply.output == 4
    [add] = by_name(exporter.get_finished_spans(), "action back.add")
    assert f"{add.context.trace_id:032x}" == TRACE_ID
