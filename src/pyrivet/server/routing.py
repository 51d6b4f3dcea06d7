"""URL routing: which handler a path goes to (no I/O, no actor is touched).

Top-level routes (the Rivet engine's public surface, protocol reference §1):

| path                       | route          |
|----------------------------|----------------|
| ``/``                      | ``root``       |
| ``/metadata``              | ``metadata``   |
| ``/health``                | ``health``     |
| ``/actors``                | ``actors``     |
| ``/actors/{id}``           | ``actor``      |
| ``/gateway/{target}/...``  | ``gateway``    |

Under ``/gateway/{target}`` (``sub``): ``action/{name}``, ``queue/{name}``,
``connect``, ``request/...``, ``websocket/...``, ``health``, ``metadata``. Methods are
checked by the handlers, so they can answer ``405`` with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["GatewaySub", "Route", "RouteKind", "parse_route"]

RouteKind = Literal["root", "metadata", "health", "actors", "actor", "gateway", "not_found"]
GatewaySub = Literal[
    "action", "queue", "connect", "request", "websocket", "health", "metadata", "unknown"
]

_SINGLE: dict[str, GatewaySub] = {"connect": "connect", "health": "health", "metadata": "metadata"}
_NAMED: dict[str, GatewaySub] = {"action": "action", "queue": "queue"}
_RAW: dict[str, GatewaySub] = {"request": "request", "websocket": "websocket"}


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes.

    Attributes:
        kind: the top-level route.
        actor_id: for ``actor`` (``/actors/{id}``).
        target: for ``gateway``: the percent-decoded ``{target}`` segment.
        sub: for ``gateway``: the actor route.
        name: the action or queue name.
        path: for ``request``/``websocket``: the path after the route, decoded, starting
            with ``/`` (``/request/a/b`` -> ``/a/b``; ``/request`` -> ``/``).
        raw_path: the same, still percent-encoded.
    """

    kind: RouteKind
    actor_id: str | None = None
    target: str | None = None
    sub: GatewaySub | None = None
    name: str | None = None
    path: str = "/"
    raw_path: str = "/"


def _gateway(target: str, rest: tuple[str, ...], raw_rest: tuple[str, ...]) -> Route:
    if not rest:
        return Route("gateway", target=target, sub="unknown")
    head = rest[0]
    raw = _RAW.get(head)
    if raw is not None:
        return Route(
            "gateway",
            target=target,
            sub=raw,
            path="/" + "/".join(rest[1:]),
            raw_path="/" + "/".join(raw_rest[1:]),
        )
    tail = rest[1:]
    if tail and tail[-1] == "":
        tail = tail[:-1]
    named = _NAMED.get(head)
    if named is not None and len(tail) == 1 and tail[0]:
        return Route("gateway", target=target, sub=named, name=tail[0])
    single = _SINGLE.get(head)
    if single is not None and not tail:
        return Route("gateway", target=target, sub=single)
    return Route("gateway", target=target, sub="unknown", path="/" + "/".join(rest))


def parse_route(segments: tuple[str, ...], raw_segments: tuple[str, ...]) -> Route:
    """Route decoded path ``segments`` (``raw_segments``: the same, still encoded)."""
    if len(segments) >= 2 and segments[0] == "gateway":
        return _gateway(segments[1], segments[2:], raw_segments[2:])
    parts = segments[:-1] if segments and segments[-1] == "" else segments
    if not parts:
        return Route("root")
    if parts == ("metadata",):
        return Route("metadata")
    if parts == ("health",):
        return Route("health")
    if parts == ("actors",):
        return Route("actors")
    if len(parts) == 2 and parts[0] == "actors" and parts[1]:
        return Route("actor", actor_id=parts[1])
    return Route("not_found")
