"""The inspector's database routes, ``/gateway/{target}/inspector/database/...``.

* ``GET …/inspector/database/schema``: ``{tables: [{name, type, columns, foreignKeys,
  records}]}``;
* ``GET …/inspector/database/rows?table=&limit=&offset=``: ``{rows: [...]}`` (limit
  1..1000, default 100);
* ``POST …/inspector/database/execute`` with ``{sql, args?}`` or ``{sql, properties?}``:
  ``{rows: [...]}`` (reads and writes; use ``RETURNING`` to see written rows).

Every route needs ``Authorization: Bearer <token>`` with the token the server was
given (``inspector_token=`` or the ``PYRIVET_INSPECTOR_TOKEN`` environment variable).
Without a configured token the inspector is off: every route answers 403
``inspector/disabled`` saying how to turn it on; a missing or wrong token answers 401
``inspector/unauthorized``. The check runs before the actor is resolved, so a refused
request never wakes or creates one. Bodies and answers are JSON.
"""

from __future__ import annotations

import hmac
from typing import Any, Final
from urllib.parse import parse_qs

import msgspec

from .._runtime.actor_db_inspect import MAX_ROWS, execute_unit, schema, table_rows
from ..errors import ActorError
from ._asgi import BodyTooLarge, HttpReply, Receive, RequestInfo, read_body
from ._state import ServerState
from .errors import incoming_too_long, invalid_request
from .gateway import GatewayTarget
from .routing import Route

__all__ = ["TOKEN_ENV", "inspector_http"]

#: The environment variable ``pyrivet serve`` and `create_app` read the token from.
TOKEN_ENV: Final = "PYRIVET_INSPECTOR_TOKEN"


class ExecuteRequest(msgspec.Struct, forbid_unknown_fields=True):
    sql: str
    args: list[Any] | None = None
    properties: dict[str, Any] | None = None


def _check_token(state: ServerState, request: RequestInfo) -> None:
    expected = state.options.inspector_token
    if not expected:
        raise ActorError(
            "the inspector is off on this server: start it with an inspector token "
            f"(serve(..., inspector_token=...) or the {TOKEN_ENV} environment variable) "
            "and send it as `Authorization: Bearer <token>`",
            group="inspector",
            code="disabled",
        )
    given = request.header("authorization") or ""
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.encode()
    ):
        raise ActorError(
            "missing or wrong inspector token; send `Authorization: Bearer <token>`",
            group="inspector",
            code="unauthorized",
        )


def _reply(value: Any) -> HttpReply:
    return HttpReply.of(200, msgspec.json.encode(value), "application/json")


def _int_param(query: dict[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if not values:
        return default
    try:
        return int(values[0])
    except ValueError:
        raise invalid_request(f"{name} must be a whole number, got {values[0]!r}") from None


async def inspector_http(
    state: ServerState,
    request: RequestInfo,
    route: Route,
    target: GatewayTarget,
    receive: Receive,
) -> HttpReply:
    """Serve ``…/inspector/...`` (only the database routes exist so far).

    Raises:
        ActorError: refused token, unknown route, wrong method, bad body, or the
            database's own error (``sqlite/*``).
    """
    _check_token(state, request)
    path = route.path.rstrip("/")
    allowed = {"/database/schema": "GET", "/database/rows": "GET", "/database/execute": "POST"}
    method = allowed.get(path)
    if method is None:
        raise ActorError(
            f"no inspector route {path!r}; see database/schema, database/rows, database/execute",
            code="route_not_found",
        )
    if request.method != method:
        raise ActorError(
            f"method {request.method} is not allowed here; use {method}",
            code="method_not_allowed",
            metadata={"allowed": method},
        )
    execute: ExecuteRequest | None = None
    if path == "/database/execute":
        try:
            body = await read_body(receive, state.max_incoming)
        except BodyTooLarge:
            raise incoming_too_long("the request body", None, state.max_incoming) from None
        try:
            execute = msgspec.json.decode(body, type=ExecuteRequest)
        except msgspec.DecodeError as exc:
            raise invalid_request(
                f"the body must be JSON {{sql, args?}} or {{sql, properties?}}: {exc}"
            ) from None
        if execute.args is not None and execute.properties is not None:
            raise invalid_request("give args or properties, not both")
    query = parse_qs(request.query_string)
    actor = await state.directory.resolve(target)
    db = await state.runtime.actor_database(actor.actor_id)
    if path == "/database/schema":
        reply = _reply(schema(db))
    elif path == "/database/rows":
        table = (query.get("table") or [""])[0]
        if not table:
            raise invalid_request("give the table: ?table=NAME&limit=100&offset=0")
        limit = _int_param(query, "limit", 100)
        offset = _int_param(query, "offset", 0)
        reply = _reply({"rows": table_rows(db, table, min(limit, MAX_ROWS), offset)})
    else:
        assert execute is not None
        params: list[Any] | dict[str, Any] = (
            execute.properties if execute.properties is not None else execute.args or []
        )
        reply = _reply({"rows": await execute_unit(db, execute.sql, params)})
    reply.headers.extend(actor.headers())
    return reply
