"""`ActorTypes`: what a runtime reads of its `Registry`.

A Protocol so that the runtime does not import the registry (the registry builds
runtimes, so it imports the runtime).
"""

from __future__ import annotations

from typing import Any, Protocol

from ..actor._definition import ActorDefinition

__all__ = ["ActorTypes"]


class ActorTypes(Protocol):
    """The actor types of an application and its message limits (see `Registry`)."""

    __slots__ = ()

    #: Definitions by actor type name.
    definitions: dict[str, ActorDefinition[Any]]
    #: Largest message a client may send, in bytes.
    max_incoming_message_size: int
    #: Largest message (reply or event) sent to a client, in bytes.
    max_outgoing_message_size: int
