"""The inspector's database routes (``database/schema``, ``database/rows``,
``database/execute``): they wake the actor, whose `ActorDb` they read and run on.

* ``GET database/schema``: ``{tables: [{name, type, columns, foreignKeys, records}]}``;
* ``GET database/rows?table=&limit=&offset=``: ``{rows: [...]}`` (limit 1..1000);
* ``POST database/execute`` with ``{sql, args?}`` or ``{sql, properties?}``:
  ``{rows: [...]}`` (reads and writes; use ``RETURNING`` to see written rows). SQLite's
  own errors come back as ``sqlite/*`` errors; nothing changed.
"""

from __future__ import annotations

from typing import Any, Final

from ..._runtime.actor_db_inspect import MAX_ROWS, execute_unit, schema, table_rows
from ..errors import invalid_request
from .call import Call, Handler

__all__ = ["DATABASE_ROUTES"]


async def _schema(call: Call) -> Any:
    return schema(await call.state.runtime.actor_database(call.actor_id))


async def _rows(call: Call) -> Any:
    table = (call.query.get("table") or [""])[0]
    if not table:
        raise invalid_request("give the table: ?table=NAME&limit=100&offset=0")
    limit = min(call.int_param("limit", 100), MAX_ROWS)
    offset = call.int_param("offset", 0)
    db = await call.state.runtime.actor_database(call.actor_id)
    return {"rows": table_rows(db, table, limit, offset)}


async def _execute(call: Call) -> Any:
    sql = call.field("sql")
    args, properties = call.field("args", None), call.field("properties", None)
    if not isinstance(sql, str):
        raise invalid_request("sql must be a string")
    if args is not None and properties is not None:
        raise invalid_request("give args or properties, not both")
    if args is not None and not isinstance(args, list):
        raise invalid_request("args must be a JSON array")
    if properties is not None and not isinstance(properties, dict):
        raise invalid_request("properties must be a JSON object")
    if isinstance(call.body, dict):
        unknown = set(call.body) - {"sql", "args", "properties"}
        if unknown:
            raise invalid_request(
                f"the body must be JSON {{sql, args?}} or {{sql, properties?}}; unknown "
                f"field(s) {sorted(unknown)}"
            )
    params: list[Any] | dict[str, Any] = properties if properties is not None else args or []
    db = await call.state.runtime.actor_database(call.actor_id)
    return {"rows": await execute_unit(db, sql, params)}


DATABASE_ROUTES: Final[dict[str, dict[str, Handler]]] = {
    "database/schema": {"GET": _schema},
    "database/rows": {"GET": _rows},
    "database/execute": {"POST": _execute},
}
