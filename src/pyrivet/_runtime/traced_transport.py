"""`TracedTransport`: the transport of ``c.client()`` while tracing is on.

Each action an actor calls on another actor (or itself) through ``c.client()`` runs
inside a ``call {actor}.{action}`` client span; the callee's ``action`` span is its
child, since the call runs in the caller's task. The runtime uses the plain
`LocalTransport` when tracing is off, so untraced calls pay nothing.
"""

from __future__ import annotations

from typing import Any

from .._protocol.query import ActorQuery
from .local_transport import LocalRuntime, LocalTransport
from .tracing import Tracer

__all__ = ["TracedTransport"]


class TracedTransport(LocalTransport):
    """A `LocalTransport` that wraps each action call in a client span."""

    def __init__(self, runtime: LocalRuntime, tracer: Tracer) -> None:
        super().__init__(runtime)
        self._tracer = tracer

    async def call(
        self, query: ActorQuery, actor_id: str | None, name: str, args: list[Any], params: Any
    ) -> tuple[str, Any]:
        attributes = {"pyrivet.actor.name": query.name, "pyrivet.action": name}
        with self._tracer.span(f"call {query.name}.{name}", attributes, client=True):
            return await super().call(query, actor_id, name, args, params)
