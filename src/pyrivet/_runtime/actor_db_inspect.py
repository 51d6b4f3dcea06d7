"""What the inspector reads and runs on an actor's SQL database (``/inspector/database``).

Everything runs on the event loop against the awake actor's `ActorDb`, like ``c.db``.
Tables named ``sqlite_*`` and pyrivet's own ``_pyrivet_*`` are hidden. A statement the
inspector runs is a unit of work of its own: its writes commit (with the actor's
history entry ``inspector``/``database.execute``) before the reply, like an action's.
"""

from __future__ import annotations

from typing import Any

from ..actor._database import Row
from ..errors import DatabaseError
from .actor_db import ActorDb

__all__ = ["MAX_ROWS", "execute_unit", "schema", "table_rows"]

#: The most rows one page of ``table_rows`` returns.
MAX_ROWS = 1000


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables(db: ActorDb) -> list[tuple[str, str]]:
    conn = db.usable()
    return conn.execute(
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_pyrivet\\_%' ESCAPE '\\' "
        "ORDER BY name"
    ).fetchall()


def schema(db: ActorDb) -> dict[str, Any]:
    """Tables and views: columns, foreign keys and row counts."""
    conn = db.usable()
    out = []
    for name, kind in _tables(db):
        quoted = _quote(name)
        columns = [
            {"name": c[1], "type": c[2], "notNull": bool(c[3]), "default": c[4], "pk": c[5]}
            for c in conn.execute(f"PRAGMA table_xinfo({quoted})")
        ]
        foreign_keys = [
            {"from": f[3], "table": f[2], "to": f[4]}
            for f in conn.execute(f"PRAGMA foreign_key_list({quoted})")
        ]
        count = conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]
        out.append(
            {
                "name": name,
                "type": kind,
                "columns": columns,
                "foreignKeys": foreign_keys,
                "records": count,
            }
        )
    return {"tables": out}


def table_rows(db: ActorDb, table: str, limit: int, offset: int) -> list[Row]:
    """One page of ``table``'s rows (in rowid order for tables).

    Raises:
        DatabaseError: no such (visible) table, or a limit/offset out of range.
    """
    if not 1 <= limit <= MAX_ROWS or offset < 0:
        raise DatabaseError(
            f"limit must be 1..{MAX_ROWS} and offset 0 or more (got {limit}, {offset})",
            code="invalid_argument",
        )
    if table not in {name for name, _ in _tables(db)}:
        raise DatabaseError(f"no table or view named {table!r}", code="no_such_table")
    cursor = db.usable().execute(f"SELECT * FROM {_quote(table)} LIMIT ? OFFSET ?", (limit, offset))
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


async def execute_unit(db: ActorDb, sql: str, params: list[Any] | dict[str, Any]) -> list[Row]:
    """Run ``sql`` as a unit of work: its writes are durable when this returns.

    Raises:
        DatabaseError: SQLite refused it (nothing changed), or it could not be saved.
    """
    host = db.host
    host.busy += 1
    try:
        if isinstance(params, dict):
            rows = await db.execute(sql, params) if params else await db.execute(sql)
        else:
            rows = await db.execute(sql, *params)
    finally:
        host.busy -= 1
        host.journal.end_of_work("inspector", name="database.execute")
        host.became_idle()
    await host.output_gate()
    return rows
