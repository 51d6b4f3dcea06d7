"""`Registry`: the set of actor types an application serves."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from .._util.clock import Clock
from ..actor._definition import ActorDefinition
from ..errors import DefinitionError
from ..storage._base import ActorStore
from .catalog import ActorTypes
from .runtime import Runtime

__all__ = ["Registry"]


class Registry(ActorTypes):
    """The actor types of an application and its message limits.

    ```python
    registry = Registry([counter, chat_room])
    async with registry.runtime() as runtime: ...
    ```

    Raises:
        DefinitionError: two definitions share a name, or an item is not a definition.
    """

    def __init__(
        self,
        actors: Iterable[ActorDefinition[Any]],
        *,
        max_incoming_message_size: int = 65_536,
        max_outgoing_message_size: int = 1_048_576,
    ) -> None:
        self.definitions: dict[str, ActorDefinition[Any]] = {}
        for definition in actors:
            if not isinstance(definition, ActorDefinition):
                raise DefinitionError(
                    f"Registry takes actor definitions made with actor(), got {definition!r}"
                )
            if definition.name in self.definitions:
                raise DefinitionError(
                    f"two actor types are named {definition.name!r}; names must be unique "
                    "within a registry"
                )
            self.definitions[definition.name] = definition
        if max_incoming_message_size <= 0 or max_outgoing_message_size <= 0:
            raise DefinitionError("message size limits must be positive")
        self.max_incoming_message_size = max_incoming_message_size
        self.max_outgoing_message_size = max_outgoing_message_size

    def runtime(
        self,
        *,
        storage: ActorStore | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
        region: str = "local",
        tracer_provider: Any = None,
    ) -> Runtime:
        """A `Runtime` for these actors (use it with ``async with``).

        Args:
            storage: a driver; by default an embedded SQLite database in ``data_dir``.
            data_dir: where the default SQLite driver keeps its files (``./.pyrivet``).
            clock: where time comes from (`MockClock` in tests).
            region: reported to actors as ``c.region``.
            tracer_provider: an OpenTelemetry tracer provider for pyrivet's spans
                (default: the global one, if configured; see docs/observability.md).
        """
        return Runtime(
            self,
            storage=storage,
            data_dir=data_dir,
            clock=clock,
            region=region,
            tracer_provider=tracer_provider,
        )

    def __repr__(self) -> str:
        return f"<Registry {sorted(self.definitions)}>"
