"""`Call`: one inspector request with its actor resolved, as route handlers get it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .._state import ServerState
from ..errors import invalid_request
from ..gateway import ResolvedActor

__all__ = ["Call", "Handler"]


@dataclass(slots=True)
class Call:
    """One inspector request, its actor resolved."""

    state: ServerState
    actor: ResolvedActor
    query: dict[str, list[str]]
    body: Any
    #: The path after the route's name (``action/{name}``: ``name``).
    rest: str

    @property
    def actor_id(self) -> str:
        return self.actor.actor_id

    def int_param(self, name: str, default: int | None = None) -> int:
        values = self.query.get(name)
        if not values:
            if default is None:
                raise invalid_request(f"give ?{name}=N (a whole number)")
            return default
        try:
            return int(values[0])
        except ValueError:
            raise invalid_request(f"{name} must be a whole number, got {values[0]!r}") from None

    def field(self, name: str, default: Any = ...) -> Any:
        if not isinstance(self.body, dict) or name not in self.body:
            if default is ...:
                raise invalid_request(f"the body must be a JSON object with {name!r}")
            return default
        return self.body[name]


Handler = Callable[[Call], Awaitable[Any]]
