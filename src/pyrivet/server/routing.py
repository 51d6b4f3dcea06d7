"""URL routing: which handler a path goes to (no I/O, no actor is touched).

Top-level routes (the Rivet engine's public surface, protocol reference §1):

| path                       | route          |
|----------------------------|----------------|
| ``/``                      | ``root``       |
| ``/metadata``              | ``metadata``   |
| ``/health``                | ``health``     |
| ``/metrics``               | ``metrics``    |
| ``/actors``                | ``actors``     |
| ``/actors/{id}``           | ``actor``      |
| ``/gateway/{target}/...``  | ``gateway``    |

Under ``/gateway/{target}`` (``sub``): ``action/{name}``, ``queue/{name}``,
``connect``, ``request/...``, ``websocket/...``, ``inspector/...``, ``health``,
``metadata``. Methods are
checked by the handlers, so they can answer ``405`` with a clear message.

Routing by header (`header_route`), as the Rivet engine's gateway does it: a request
whose path is not under ``/gateway/`` but that carries ``x-rivet-target: actor`` and
``x-rivet-actor: {actor_id}`` (a WebSocket: subprotocols ``rivet_target.actor`` and
``rivet_actor.{encodeURIComponent(actor_id)}``) goes to that actor with its whole path
as the actor route: ``/request/a`` to ``on_request`` with path ``/a``, ``/action/x`` to
action ``x``, ``/connect`` to the connect protocol. The path form wins when both are
given; another ``x-rivet-target`` value leaves the request to the top-level routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import unquote

from ._asgi import RequestInfo

__all__ = ["GatewaySub", "Route", "RouteKind", "header_route", "parse_route"]

RouteKind = Literal[
    "root", "metadata", "health", "metrics", "actors", "actor", "gateway", "not_found"
]
GatewaySub = Literal[
    "action",
    "queue",
    "connect",
    "request",
    "websocket",
    "inspector",
    "health",
    "metadata",
    "unknown",
]

_SINGLE: dict[str, GatewaySub] = {"connect": "connect", "health": "health", "metadata": "metadata"}
_NAMED: dict[str, GatewaySub] = {"action": "action", "queue": "queue"}
_RAW: dict[str, GatewaySub] = {
    "request": "request",
    "websocket": "websocket",
    "inspector": "inspector",
}

TARGET_HEADER: Final = "x-rivet-target"
ACTOR_HEADER: Final = "x-rivet-actor"
_TARGET_PROTOCOL: Final = "rivet_target."
_ACTOR_PROTOCOL: Final = "rivet_actor."


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
        by_header: the actor id (``target``) came from ``x-rivet-actor`` (or
            ``rivet_actor.``), not from the path; the query string is the actor's.
    """

    kind: RouteKind
    actor_id: str | None = None
    target: str | None = None
    sub: GatewaySub | None = None
    name: str | None = None
    path: str = "/"
    raw_path: str = "/"
    by_header: bool = False


def _gateway(
    target: str, rest: tuple[str, ...], raw_rest: tuple[str, ...], by_header: bool = False
) -> Route:
    if not rest:
        return Route("gateway", target=target, sub="unknown", by_header=by_header)
    head = rest[0]
    raw = _RAW.get(head)
    if raw is not None:
        return Route(
            "gateway",
            target=target,
            sub=raw,
            path="/" + "/".join(rest[1:]),
            raw_path="/" + "/".join(raw_rest[1:]),
            by_header=by_header,
        )
    tail = rest[1:]
    if tail and tail[-1] == "":
        tail = tail[:-1]
    named = _NAMED.get(head)
    if named is not None and len(tail) == 1 and tail[0]:
        return Route("gateway", target=target, sub=named, name=tail[0], by_header=by_header)
    single = _SINGLE.get(head)
    if single is not None and not tail:
        return Route("gateway", target=target, sub=single, by_header=by_header)
    return Route(
        "gateway", target=target, sub="unknown", path="/" + "/".join(rest), by_header=by_header
    )


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
    if parts == ("metrics",):
        return Route("metrics")
    if parts == ("actors",):
        return Route("actors")
    if len(parts) == 2 and parts[0] == "actors" and parts[1]:
        return Route("actor", actor_id=parts[1])
    return Route("not_found")


def header_route(request: RequestInfo, *, websocket: bool) -> Route | None:
    """The actor route a request addresses by header, or None when it does not.

    Call it only for a path that is not under ``/gateway/`` (the path form wins). A
    missing or empty actor id gives a route with an empty ``target``, which
    `pyrivet.server.gateway.route_target` rejects with a message saying what to send.
    """
    if websocket:
        protocols = request.subprotocols()
        if _find_prefixed(protocols, _TARGET_PROTOCOL) != "actor":
            return None
        encoded = _find_prefixed(protocols, _ACTOR_PROTOCOL)
        actor_id = unquote(encoded) if encoded is not None else ""
    else:
        if request.header(TARGET_HEADER) != "actor":
            return None
        actor_id = request.header(ACTOR_HEADER) or ""
    return _gateway(actor_id, request.segments, request.raw_segments, by_header=True)


def _find_prefixed(protocols: list[str], prefix: str) -> str | None:
    for protocol in protocols:
        if protocol.startswith(prefix):
            return protocol[len(prefix) :]
    return None
