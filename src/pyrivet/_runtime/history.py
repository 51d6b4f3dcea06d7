"""`HistoryRecord`: a decoded history entry, as the runtime API returns it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._codec.values import decode
from .._codec.versioned import decode_stored, unwrap
from ..actor._definition import ActorDefinition
from ..storage._base import HistoryEntry

__all__ = ["HistoryRecord", "state_at", "to_record"]


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One committed change of an actor."""

    seq: int
    #: Commit time, epoch seconds.
    at: float
    #: "create", "action", "schedule", "save", "sleep", "destroy" or "migrate" (a woken
    #: actor's stored state brought to its type's ``state_version``; ``args`` is
    #: ``[from_version, to_version]``).
    kind: str
    #: The action (or scheduled action) that ran, if any.
    name: str | None
    #: Who caused it: a connection id, "schedule:<id>", or None.
    by: str | None
    args: list[Any] | None
    #: Whether this commit changed the state; ``state`` is the state after it if so:
    #: of the state type when it fits today's (``state_version``), else the plain data
    #: stored (an entry from before a migration).
    state_changed: bool
    state: Any
    #: KV and schedule operations, e.g. ("kv.put", key, value) or ("alarm.delete", id).
    ops: list[Any]
    #: The state version ``state`` was stored at (None when the state did not change).
    state_version: int | None = None


def to_record(entry: HistoryEntry, definition: ActorDefinition[Any] | None) -> HistoryRecord:
    """Decode ``entry``; the state is decoded into the definition's state type if known
    and the entry's state has the definition's version and fits it."""
    state: Any = None
    version: int | None = None
    if entry.state is not None:
        if definition is not None:
            version, state = decode_stored(definition.state_codec, entry.state)
        else:
            version, payload = unwrap(entry.state)
            state = decode(payload)
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
        state_version=version,
    )


def state_at(records: list[HistoryRecord], seq: int, actor_id: str) -> Any:
    """The state as of entry ``seq``: the state of the last entry at or before it that
    carries one (``records`` oldest first).

    Raises:
        LookupError: no entry at or before ``seq`` carries a state (or ``seq`` is below
            the retained history).
    """
    found = False
    state: Any = None
    for record in records:
        if record.seq > seq:
            break
        if record.state_changed:
            found, state = True, record.state
    if not found:
        raise LookupError(f"no state of actor {actor_id} at or before seq {seq} is retained")
    return state
