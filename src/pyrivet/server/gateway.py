"""The actor gateway's addressing: which actor ``/gateway/{target}/...`` names.

Two URL forms reach the same routes (protocol reference §4.2):

* direct: ``/gateway/{actor_id}[@{token}]/...`` (the token is accepted and ignored);
* query: ``/gateway/{name}/...?rvt-method=get|getOrCreate&rvt-key=a,b&...``. Every
  ``rvt-*`` parameter is validated and removed; the rest of the query string is
  forwarded to the actor (raw ``request/`` handlers see it).

`parse_target` only reads the URL (it never touches an actor), so a request whose URL
is bad is rejected before anything is created. `ActorDirectory.resolve` then finds or
creates the actor.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote_plus

from .._codec import cbor
from .._protocol.errors import ProtocolError
from .._protocol.messages import ActorSpecifier
from .._protocol.query import ActorQuery
from ..errors import ActorError, ActorNotFoundError
from .errors import check_storable, invalid_request
from .keys import header_safe, serialize_key, split_gateway_key
from .routing import ACTOR_HEADER, TARGET_HEADER, Route

if TYPE_CHECKING:
    from .._runtime.runtime import Runtime

__all__ = ["ActorDirectory", "GatewayTarget", "ResolvedActor", "parse_target", "route_target"]

_PREFIX: Final = "rvt-"
_KNOWN: Final = frozenset(
    {
        "rvt-namespace",
        "rvt-method",
        "rvt-key",
        "rvt-input",
        "rvt-runner",
        "rvt-region",
        "rvt-crash-policy",
        "rvt-token",
        "rvt-skip-ready-wait",
    }
)
#: Parameters that only make sense when the gateway may create the actor.
_CREATE_ONLY: Final = ("rvt-input", "rvt-runner", "rvt-region", "rvt-crash-policy")
#: RivetKit generation numbers start at 1; pyrivet actors have one generation.
GENERATION: Final = 1


@dataclass(frozen=True, slots=True)
class GatewayTarget:
    """The actor a gateway URL names: an id (direct form) or a query (query form)."""

    actor_id: str | None
    query: ActorQuery | None
    #: The request's query string without its ``rvt-*`` parameters (still encoded).
    forwarded_query: str


def _split_query(query_string: str) -> tuple[dict[str, str], str]:
    """(rvt-* parameters decoded, the other parameters as an encoded string)."""
    params: dict[str, str] = {}
    kept: list[str] = []
    for piece in query_string.split("&"):
        if not piece:
            continue
        raw_name, _, raw_value = piece.partition("=")
        name = unquote_plus(raw_name)
        if not name.startswith(_PREFIX):
            kept.append(piece)
            continue
        if name not in _KNOWN:
            raise invalid_request(
                f"unknown gateway parameter {name!r}; known: {', '.join(sorted(_KNOWN))}"
            )
        if name in params:
            raise invalid_request(f"gateway parameter {name!r} is given more than once")
        params[name] = unquote_plus(raw_value)
    return params, "&".join(kept)


def _decode_input(value: str, max_size: int) -> object:
    padded = value + "=" * (-len(value) % 4)
    try:
        data = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise invalid_request("rvt-input is not valid base64url") from None
    if len(data) > max_size:
        raise ActorError(
            f"rvt-input is {len(data)} bytes, above the incoming message limit ({max_size})",
            group="message",
            code="incoming_too_long",
        )
    try:
        value = cbor.decode(data)
    except ProtocolError as exc:
        raise invalid_request(f"rvt-input is not valid CBOR: {exc.message}") from None
    check_storable(value, "rvt-input")
    return value


def parse_target(segment: str, query_string: str, *, max_input_size: int) -> GatewayTarget:
    """Read the target segment (percent-decoded) and the query string of a gateway URL.

    Raises:
        ActorError: ``actor/invalid_request`` for a malformed ``rvt-*`` parameter
            (unknown, repeated, missing ``rvt-method``, creation parameters on ``get``,
            undecodable ``rvt-input``); ``message/incoming_too_long`` for an oversize input.
    """
    params, forwarded = _split_query(query_string)
    if not params:
        actor_id = segment.partition("@")[0]
        if not actor_id:
            raise invalid_request("the gateway path names no actor")
        return GatewayTarget(actor_id, None, forwarded)
    method = params.get("rvt-method")
    if method is None:
        raise invalid_request(_missing_method(segment, params))
    if not segment:
        raise invalid_request("the gateway path names no actor")
    key = split_gateway_key(params.get("rvt-key"))
    if method == "get":
        extra = [p for p in _CREATE_ONLY if p in params]
        if extra:
            raise invalid_request(f"rvt-method=get does not take {', '.join(extra)}")
        return GatewayTarget(None, ActorQuery("get", segment, key), forwarded)
    if method == "getOrCreate":
        raw_input = params.get("rvt-input")
        value = _decode_input(raw_input, max_input_size) if raw_input is not None else None
        return GatewayTarget(None, ActorQuery("get_or_create", segment, key, value), forwarded)
    raise invalid_request(f"rvt-method must be get or getOrCreate, got {method!r}")


def _missing_method(segment: str, params: dict[str, str]) -> str:
    given = "&".join(f"{k}={v}" for k, v in params.items())
    return (
        f"the gateway URL is in the query form ({given}) but has no rvt-method; add "
        f"rvt-method=getOrCreate (create the actor if needed) or rvt-method=get, e.g. "
        f"/gateway/{segment}/action/NAME?rvt-method=getOrCreate&rvt-key=KEY"
    )


def route_target(route: Route, query_string: str, *, max_input_size: int) -> GatewayTarget:
    """The target of a gateway ``route``: from the URL (`parse_target`), or, for a route
    addressed by header, the actor id of ``x-rivet-actor`` with the whole query string
    forwarded to the actor.

    Raises:
        ActorError: ``actor/invalid_request``: see `parse_target`; or a header route
            without an actor id.
    """
    assert route.target is not None
    if not route.by_header:
        return parse_target(route.target, query_string, max_input_size=max_input_size)
    if not route.target:
        raise invalid_request(
            f"{TARGET_HEADER}: actor routes by header and needs the actor id in "
            f"{ACTOR_HEADER}: ACTOR_ID (a WebSocket: the subprotocols rivet_target.actor "
            "and rivet_actor.ACTOR_ID); or put the id in the path: /gateway/ACTOR_ID/..."
        )
    return GatewayTarget(route.target, None, query_string)


@dataclass(frozen=True, slots=True)
class ResolvedActor:
    """An actor a request was routed to."""

    actor_id: str
    name: str
    key: tuple[str, ...]

    def specifier(self) -> ActorSpecifier:
        """The ``actor`` field of error bodies and frames."""
        return ActorSpecifier(self.actor_id, GENERATION, serialize_key(self.key))

    def headers(self) -> list[tuple[str, str]]:
        """Informational response headers (``x-rivet-actor*``)."""
        return [
            ("x-rivet-actor", header_safe(self.actor_id)),
            ("x-rivet-actor-generation", str(GENERATION)),
            ("x-rivet-actor-key", header_safe(serialize_key(self.key))),
        ]


class ActorDirectory:
    """Turns gateway targets into actors, creating them for ``getOrCreate``.

    An actor's name and key never change, so they are cached by id (bounded) and a
    direct-form request reads storage only the first time it sees an id.
    """

    def __init__(self, runtime: Runtime, *, cache_size: int = 10_000) -> None:
        self._runtime = runtime
        self._cache: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._cache_size = cache_size

    def _remember(self, actor_id: str, name: str, key: tuple[str, ...]) -> None:
        if len(self._cache) >= self._cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[actor_id] = (name, key)

    def forget(self, actor_id: str) -> None:
        """Drop a destroyed actor from the cache."""
        self._cache.pop(actor_id, None)

    async def resolve(self, target: GatewayTarget, *, durable: bool = True) -> ResolvedActor:
        """The actor ``target`` names; ``getOrCreate`` creates it if needed.

        Args:
            target: from `parse_target`.
            durable: whether a newly created actor must be durable before this returns
                (an action's reply waits for it anyway, so actions pass False).

        Raises:
            ActorNotFoundError: no such actor or actor type.
            ActorError / InternalError: a creation hook failed.
        """
        if target.query is not None:
            query = target.query
            actor_id = await self._runtime.resolve(query, durable=durable)
            return ResolvedActor(actor_id, query.name, query.key)
        assert target.actor_id is not None
        return await self.by_id(target.actor_id)

    async def by_id(self, actor_id: str) -> ResolvedActor:
        """The live actor with this id.

        Raises:
            ActorNotFoundError: no live actor has this id.
        """
        cached = self._cache.get(actor_id)
        if cached is not None:
            return ResolvedActor(actor_id, cached[0], cached[1])
        record = await self._runtime.storage.get_actor(actor_id)
        if record is None:
            if actor_id in self._runtime.registry.definitions:
                raise invalid_request(_name_for_id(actor_id))
            raise ActorNotFoundError(f"actor {actor_id} was not found (it may have been destroyed)")
        self._remember(actor_id, record.name, record.key)
        return ResolvedActor(actor_id, record.name, record.key)


def _name_for_id(name: str) -> str:
    """The error for ``/gateway/{name}/...`` with no ``rvt-*`` parameters: the direct
    form reads the segment as an actor id, and this one is an actor name."""
    return (
        f"{name!r} is an actor name, but a gateway URL without rvt-* parameters is in the "
        f"direct form, which takes an actor id (/gateway/ACTOR_ID/...); to address the "
        f"actor by name and key, use the query form with rvt-method: "
        f"/gateway/{name}/action/NAME?rvt-method=getOrCreate&rvt-key=KEY "
        "(rvt-method=get never creates; rvt-key parts are joined with commas)"
    )
