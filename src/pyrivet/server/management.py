"""The management API (JSON only): ``GET``/``PUT``/``POST /actors``, ``DELETE /actors/{id}``.

RivetKit clients use it to resolve and create actors (protocol reference §4.3):

| request                                 | answer                                       |
|-----------------------------------------|----------------------------------------------|
| ``GET /actors?name=N&key=K``            | ``{"actors": [actor]}`` or ``[]``            |
| ``GET /actors[?name=N][&limit&cursor]`` | a page: ``{"actors", "pagination"}``         |
| ``GET /actors?actor_ids=a,b``           | ``{"actors": [...]}`` (unknown ids left out) |
| ``PUT /actors`` ``{name, key, input}``  | ``{"actor": actor, "created": bool}``        |
| ``POST /actors`` ``{name, key, input}`` | ``{"actor": actor}``; 409 if the key is taken |
| ``GET /actors/{id}``                    | ``{"actor": actor}``; 404 if unknown         |
| ``DELETE /actors/{id}``                 | ``{}`` once destroyed; 404 if unknown        |

Keys use the ``/``-escaped serialization (`keys.deserialize_key`); a JSON list of
strings is accepted too. ``input`` is standard base64 of CBOR. ``namespace``,
``runner_name_selector``, ``crash_policy``, ``datacenter`` and ``Authorization`` are
accepted and ignored (one namespace, no auth). Listing reads storage and never wakes
an actor. A page (``limit``: 1 to 1000, default 100) lists actors in creation order;
each actor object also carries ``awake`` (a pyrivet field: in memory now), and
``pagination.cursor`` is passed back as ``cursor`` for the next page (null after the
last).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qs

import msgspec

from .._codec import cbor
from .._protocol.errors import ProtocolError
from .._protocol.listing import DEFAULT_PAGE, MAX_PAGE, decode_cursor, encode_cursor
from .._protocol.query import ActorQuery
from ..errors import ActorNotFoundError, DuplicateKeyError
from ..storage._base import ActorRecord
from ._asgi import BodyTooLarge, HttpReply, Receive, RequestInfo, read_body
from ._state import ServerState
from .errors import check_storable, incoming_too_long, invalid_request
from .http_routes import json_reply, method_not_allowed
from .keys import actor_object, deserialize_key

__all__ = ["actor_route", "actors_route"]


class _CreateBody(msgspec.Struct):
    name: str
    key: str | list[str] | None = None
    input: str | None = None


def _key_of(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(value)
    return deserialize_key(value)


def _input_of(value: str | None) -> Any:
    if value is None:
        return None
    try:
        data = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise invalid_request("input is not valid standard base64") from None
    try:
        value = cbor.decode(data)
    except ProtocolError as exc:
        raise invalid_request(f"input is not valid CBOR: {exc.message}") from None
    check_storable(value, "input")
    return value


async def _record(state: ServerState, actor_id: str) -> ActorRecord:
    record = await state.runtime.storage.get_actor(actor_id)
    if record is None:
        raise ActorNotFoundError(f"actor {actor_id} was not found (it may have been destroyed)")
    return record


async def _list(state: ServerState, request: RequestInfo) -> HttpReply:
    query = parse_qs(request.query_string, keep_blank_values=True)
    ids = [i for value in query.get("actor_ids", []) for i in value.split(",") if i]
    store = state.runtime.storage
    records: list[ActorRecord] = []
    if ids:
        for actor_id in dict.fromkeys(ids):
            record = await store.get_actor(actor_id)
            if record is not None:
                records.append(record)
    elif "name" in query and "key" in query:
        record = await store.find_actor(query["name"][0], deserialize_key(query["key"][0]))
        records = [record] if record is not None else []
    else:
        return await _page(state, query)
    return json_reply({"actors": [actor_object(r) for r in records]})


async def _page(state: ServerState, query: dict[str, list[str]]) -> HttpReply:
    """A page of actors (of ``name`` if given), with ``awake`` and the next cursor."""
    name = query["name"][0] if "name" in query else None
    limit = _limit(query.get("limit", [None])[0])
    after = None
    cursor = query.get("cursor", [""])[0]
    if cursor:
        try:
            after = decode_cursor(cursor)
        except ValueError as exc:
            raise invalid_request(str(exc)) from None
    runtime = state.runtime
    # One more than asked tells whether another page follows.
    records = await runtime.storage.list_actors(name, after=after, limit=limit + 1)
    more = len(records) > limit
    records = records[:limit]
    actors = []
    for record in records:
        actor = actor_object(record)
        actor["awake"] = runtime.is_awake(record.actor_id)
        actors.append(actor)
    next_cursor = encode_cursor(records[-1].created_at_ms, records[-1].actor_id) if more else None
    return json_reply({"actors": actors, "pagination": {"cursor": next_cursor}})


def _limit(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_PAGE
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise invalid_request(f"limit must be a whole number from 1 to {MAX_PAGE}, got {value!r}")
    return int(value)


async def _body(state: ServerState, receive: Receive) -> _CreateBody:
    try:
        data = await read_body(receive, state.max_incoming)
    except BodyTooLarge:
        raise incoming_too_long("the request body", None, state.max_incoming) from None
    try:
        return msgspec.json.decode(data, type=_CreateBody)
    except msgspec.DecodeError as exc:
        raise invalid_request(
            f"the body must be a JSON object with name, key and input: {exc}"
        ) from None


async def actors_route(state: ServerState, request: RequestInfo, receive: Receive) -> HttpReply:
    """``/actors``: list (GET), get-or-create (PUT), create (POST).

    Raises:
        ActorError: bad query or body (400), unknown actor type (404), duplicate key on
            create (409), or a creation hook's error.
    """
    if request.method in ("GET", "HEAD"):
        return await _list(state, request)
    if request.method not in ("PUT", "POST"):
        raise method_not_allowed(request.method, "GET, PUT or POST")
    body = await _body(state, receive)
    key = _key_of(body.key)
    value = _input_of(body.input)
    runtime = state.runtime
    runtime.definition(body.name)
    if request.method == "POST":
        actor_id = await runtime.resolve(ActorQuery("create", body.name, key, value))
        return json_reply({"actor": actor_object(await _record(state, actor_id))})
    # get-or-create, reporting whether this request created the actor: of concurrent
    # creates exactly one succeeds, the others see DuplicateKeyError and look it up.
    created = False
    try:
        actor_id = await runtime.resolve(ActorQuery("get", body.name, key))
    except ActorNotFoundError:
        try:
            actor_id = await runtime.resolve(ActorQuery("create", body.name, key, value))
            created = True
        except DuplicateKeyError:
            actor_id = await runtime.resolve(ActorQuery("get", body.name, key))
    record = await _record(state, actor_id)
    return json_reply({"actor": actor_object(record), "created": created})


async def actor_route(state: ServerState, request: RequestInfo, actor_id: str) -> HttpReply:
    """``/actors/{id}``: ``GET`` describes it, ``DELETE`` destroys it (on_destroy runs).

    Raises:
        ActorNotFoundError: no live actor has this id (404).
    """
    if request.method in ("GET", "HEAD"):
        return json_reply({"actor": actor_object(await _record(state, actor_id))})
    if request.method != "DELETE":
        raise method_not_allowed(request.method, "GET or DELETE")
    await state.runtime.destroy(actor_id)
    state.directory.forget(actor_id)
    return json_reply({})
