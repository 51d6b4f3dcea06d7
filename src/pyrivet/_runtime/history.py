"""`HistoryRecord`: a decoded history entry, as the runtime API returns it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._codec.values import decode
from ..actor._definition import ActorDefinition
from ..storage._base import HistoryEntry

__all__ = ["HistoryRecord", "to_record"]


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One committed change of an actor."""

    seq: int
    #: Commit time, epoch seconds.
    at: float
    #: "create", "action", "schedule", "save", "sleep" or "destroy".
    kind: str
    #: The action (or scheduled action) that ran, if any.
    name: str | None
    #: Who caused it: a connection id, "schedule:<id>", or None.
    by: str | None
    args: list[Any] | None
    #: Whether this commit changed the state; ``state`` is the state after it if so.
    state_changed: bool
    state: Any
    #: KV and schedule operations, e.g. ("kv.put", key, value) or ("alarm.delete", id).
    ops: list[Any]


def to_record(entry: HistoryEntry, definition: ActorDefinition[Any] | None) -> HistoryRecord:
    """Decode ``entry``; the state is decoded into the definition's state type if known."""
    state: Any = None
    if entry.state is not None:
        state = definition.state_codec.decode(entry.state) if definition else decode(entry.state)
    return HistoryRecord(
        seq=entry.seq,
        at=entry.at_ms / 1000,
        kind=entry.kind,
        name=entry.name,
        by=entry.by,
        args=decode(entry.args) if entry.args is not None else None,
        state_changed=entry.state is not None,
        state=state,
        ops=[tuple(op) for op in decode(entry.ops)] if entry.ops is not None else [],
    )
