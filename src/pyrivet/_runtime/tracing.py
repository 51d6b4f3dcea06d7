"""OpenTelemetry spans around actions, hooks, commits and actor-to-actor calls.

Optional: this needs ``opentelemetry-api`` (the ``tracing`` extra) and a tracer provider
(the OpenTelemetry SDK, or any other implementation of the API). `make_tracer` returns
None when the package is missing or no provider is configured; the runtime then keeps
``Services.tracer`` at None and each traced place costs one ``is not None`` test. The
global provider is looked up once, when the runtime starts: configure it before that
(or pass ``tracer_provider=`` to the runtime).

Spans (all with ``pyrivet.actor.name``, ``pyrivet.actor.key`` and ``pyrivet.actor.id``
where an actor is concerned):

- ``action {actor}.{action}`` (internal): an action, from its start to its durable reply;
- ``hook {actor}.{hook}`` (internal): a lifecycle or connection hook;
- ``commit`` (internal): one group-commit batch, with ``pyrivet.commit.records``;
- ``call {actor}.{action}`` (client): an action called through ``c.client()``
  (``traced_transport.py``).

A span records the exception that ended it (its status is then ERROR). Spans are
children of the span current in the calling task: the server makes the span of an
incoming ``traceparent`` current (`continue_trace`) before it calls the runtime, and
actions run in the caller's task, so a trace continues from the client through actions
and the actor-to-actor calls they make.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from .._version import __version__

try:
    from opentelemetry import context as otel_context, trace as otel_trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    _OTEL = True
except ImportError:  # the `tracing` extra is not installed
    otel_trace = None  # type: ignore[assignment]
    otel_context = None  # type: ignore[assignment]
    TraceContextTextMapPropagator = None  # type: ignore[assignment,misc]
    _OTEL = False

__all__ = [
    "Tracer",
    "actor_attributes",
    "continue_trace",
    "end_trace",
    "make_tracer",
    "otel_error_status",
]


class Tracer:
    """Makes pyrivet's spans with one OpenTelemetry tracer."""

    __slots__ = ("_tracer",)

    def __init__(self, provider: Any) -> None:
        self._tracer = provider.get_tracer("pyrivet", __version__)

    def span(
        self, name: str, attributes: Mapping[str, Any], *, client: bool = False
    ) -> contextlib.AbstractContextManager[Any]:
        """A current span named ``name`` for a ``with`` block."""
        kind = otel_trace.SpanKind.CLIENT if client else otel_trace.SpanKind.INTERNAL
        span: contextlib.AbstractContextManager[Any] = self._tracer.start_as_current_span(
            name, kind=kind, attributes=dict(attributes)
        )
        return span

    def start(self, name: str, attributes: Mapping[str, Any]) -> Any:
        """A started span that is not made current (the caller ends it)."""
        return self._tracer.start_span(name, attributes=dict(attributes))


def actor_attributes(name: str, key: tuple[str, ...], actor_id: str) -> dict[str, Any]:
    """The span attributes naming an actor."""
    return {
        "pyrivet.actor.name": name,
        "pyrivet.actor.key": list(key),
        "pyrivet.actor.id": actor_id,
    }


def otel_error_status() -> Any:
    """The ERROR status for a span ended by hand (tracing is on, so the API is there)."""
    return otel_trace.Status(otel_trace.StatusCode.ERROR)


def make_tracer(provider: Any = None) -> Tracer | None:
    """A `Tracer` over ``provider`` (default: the global one), or None when tracing is
    off: opentelemetry-api is not installed, or no provider was configured."""
    if not _OTEL:
        return None
    if provider is None:
        provider = otel_trace.get_tracer_provider()
        if isinstance(provider, otel_trace.ProxyTracerProvider | otel_trace.NoOpTracerProvider):
            return None
    return Tracer(provider)


def continue_trace(traceparent: str | None, tracestate: str | None = None) -> object | None:
    """Make the remote span of a W3C ``traceparent`` header current in this task.

    Returns a token for `end_trace`, or None when there is nothing to continue (no
    header, no OpenTelemetry). A malformed header is ignored (a new trace starts).
    """
    if traceparent is None or not _OTEL:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate is not None:
        carrier["tracestate"] = tracestate
    ctx = TraceContextTextMapPropagator().extract(carrier)
    return otel_context.attach(ctx)


def end_trace(token: object | None) -> None:
    """Undo `continue_trace` (None: nothing to undo)."""
    if token is not None:
        otel_context.detach(token)  # type: ignore[arg-type]
