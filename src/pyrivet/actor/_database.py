"""`Database`: what ``c.db`` offers, the actor's own SQL database (see docs/sql.md).

A Protocol, implemented by ``pyrivet._runtime.actor_db``. Statements run on the actor's
event loop, between the awaits of the action that issued them; what one action writes
becomes durable with that action's unit of work, together with its state.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

__all__ = ["Database", "Row"]

#: One result row: column name -> value (None, int, float, str or bytes).
Row = dict[str, Any]


class Database(Protocol):
    """The actor's SQL database (SQLite), isolated from every other actor."""

    __slots__ = ()

    async def execute(self, sql: str, *args: Any, **named: Any) -> list[Row]:
        """Run ``sql`` and return the rows of its last statement (``[]`` if none).

        Parameters are positional (``?`` with ``*args``) or named (``:name`` with
        ``**named``, or one mapping as the only argument). ``sql`` may hold several
        statements separated by ``;`` (then without parameters); they run as one: if
        one fails, none of them changed anything.

        Raises:
            DatabaseError: SQLite refused the statement (syntax, constraint, type); the
                message is SQLite's. Nothing was changed. Also ``sqlite/closed`` once
                the actor stopped, ``sqlite/transaction_expired``, ``sqlite/forbidden``
                (BEGIN/COMMIT/ATTACH: use `transaction`).
        """
        ...

    def transaction(self, *, timeout: float = 60.0) -> AbstractAsyncContextManager[Database]:
        """``async with c.db.transaction():``: the statements inside commit together on
        a normal exit and are rolled back if the block raises.

        While it is open, statements of other actions on this actor wait for it (in
        order). If it is still open after ``timeout`` seconds it is rolled back, others
        proceed, and its next statement (or its exit) raises ``sqlite/transaction_expired``.
        """
        ...
