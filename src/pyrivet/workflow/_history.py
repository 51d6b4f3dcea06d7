"""A workflow's history in memory: the loaded records, indexed, plus unflushed writes.

`History` is owned by one `WorkflowEngine` and used only from its event loop. Writes
go to ``pending`` first (key -> bytes or None); `take_writes` hands them to the host's
flush. Entries are indexed by location and by parent scope (to tell which recorded
entries the code has not reached yet).

`read_history` turns stored records into the read-only `WorkflowHistory` the inspector
shows, without an engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._codec import values
from ..errors import WorkflowError
from ._records import (
    META_KEY,
    EntryKind,
    EntryRecord,
    EntryStatus,
    Location,
    MetaRecord,
    WorkflowState,
    decode_entry,
    decode_meta,
    encode_record,
    entry_key,
    is_entry_key,
)

__all__ = ["EntryView", "History", "WorkflowHistory", "read_history"]


@dataclass(frozen=True, slots=True)
class EntryView:
    """One history entry as the read API shows it (values decoded to plain data)."""

    key: str
    location: Location
    name: str
    kind: EntryKind
    status: EntryStatus
    attempts: int
    last_attempt_at: float | None
    output: Any
    error: str | None
    error_kind: str | None
    deadline: float | None
    iteration: int
    state: Any


@dataclass(frozen=True, slots=True)
class WorkflowHistory:
    """A workflow's state and its history entries in the order they were created."""

    state: WorkflowState
    output: Any
    error: str | None
    entries: list[EntryView]


def _decode_optional(data: bytes | None) -> Any:
    return None if data is None else values.decode(data)


def view_of(record: EntryRecord) -> EntryView:
    return EntryView(
        key=entry_key(record.location),
        location=record.location,
        name=record.name,
        kind=record.kind,
        status=record.status,
        attempts=record.attempts,
        last_attempt_at=record.last_attempt_at,
        output=_decode_optional(record.output),
        error=record.error,
        error_kind=record.error_kind,
        deadline=record.deadline,
        iteration=record.iteration,
        state=_decode_optional(record.state),
    )


def history_of(meta: MetaRecord, entries: Iterable[EntryRecord]) -> WorkflowHistory:
    return WorkflowHistory(
        state=meta.state,
        output=_decode_optional(meta.output),
        error=meta.error,
        entries=[view_of(r) for r in sorted(entries, key=lambda r: r.seq)],
    )


def parse(records: Mapping[str, bytes]) -> tuple[MetaRecord, list[EntryRecord]]:
    """Decode stored records; unknown keys are an error (they are not ours)."""
    meta = MetaRecord()
    entries = []
    for key, data in records.items():
        if key == META_KEY:
            meta = decode_meta(data)
        elif is_entry_key(key):
            entries.append(decode_entry(key, data))
        else:
            raise WorkflowError(f"unexpected key {key!r} in a workflow's stored history")
    return meta, entries


def read_history(records: Mapping[str, bytes]) -> WorkflowHistory:
    """The read-only view of a workflow's stored records (no engine needed)."""
    meta, entries = parse(records)
    return history_of(meta, entries)


class History:
    """The loaded history of one workflow run, with writes not yet flushed."""

    __slots__ = ("by_location", "by_parent", "meta", "meta_dirty", "next_seq", "pending")

    def __init__(self, records: Mapping[str, bytes]) -> None:
        meta, entries = parse(records)
        self.meta = meta
        self.meta_dirty = False
        self.by_location: dict[Location, EntryRecord] = {}
        self.by_parent: dict[Location, dict[str | int, EntryRecord]] = {}
        self.pending: dict[str, bytes | None] = {}
        self.next_seq = 0
        for record in entries:
            self._index(record)
            self.next_seq = max(self.next_seq, record.seq + 1)

    def _index(self, record: EntryRecord) -> None:
        location = record.location
        self.by_location[location] = record
        parent = location[:-1]
        siblings = self.by_parent.get(parent)
        if siblings is None:
            siblings = self.by_parent[parent] = {}
        siblings[location[-1]] = record

    def new_entry(self, kind: EntryKind, location: Location) -> EntryRecord:
        """A fresh entry, indexed (not written: `write` it when it must be stored)."""
        record = EntryRecord(kind=kind, location=location, seq=self.next_seq)
        self.next_seq += 1
        self._index(record)
        return record

    def write(self, record: EntryRecord) -> None:
        """Queue ``record`` for the next flush."""
        self.pending[entry_key(record.location)] = encode_record(record)

    def delete(self, record: EntryRecord) -> None:
        """Drop ``record`` from the index and queue its deletion."""
        location = record.location
        del self.by_location[location]
        siblings = self.by_parent[location[:-1]]
        del siblings[location[-1]]
        if not siblings:
            del self.by_parent[location[:-1]]
        self.pending[entry_key(location)] = None

    def set_state(self, state: WorkflowState) -> None:
        if self.meta.state != state:
            self.meta.state = state
            self.meta_dirty = True

    def take_with(self, record: EntryRecord) -> dict[str, bytes | None]:
        """`write` ``record``, then `take_writes`, in one call (a completed step)."""
        pending = self.pending
        pending[entry_key(record.location)] = encode_record(record)
        if self.meta_dirty:
            pending[META_KEY] = encode_record(self.meta)
            self.meta_dirty = False
        self.pending = {}
        return pending

    def take_writes(self) -> dict[str, bytes | None]:
        """The queued writes (the meta record too if it changed); the queue empties."""
        if self.meta_dirty:
            self.pending[META_KEY] = encode_record(self.meta)
            self.meta_dirty = False
        writes, self.pending = self.pending, {}
        return writes

    def descendants(self, location: Location) -> list[EntryRecord]:
        """Every entry strictly inside ``location`` (loop iterations, branches, blocks)."""
        size = len(location)
        return [
            r for loc, r in self.by_location.items() if len(loc) > size and loc[:size] == location
        ]

    def view(self) -> WorkflowHistory:
        return history_of(self.meta, self.by_location.values())
