"""`Plan`: one actor's records of a commit batch, folded into engine KV entries.

Pure data, no I/O: `EngineStore` builds a `Plan` per actor of a batch, then writes
`Plan.entries` in one engine put (or, when `Plan.needs_intent`, as an intent). The
folding follows the `ActorStore` contract: records apply in order, the last write of a
key wins, a record's KV range deletes apply before its puts and deletes, its workflow
deletes before its workflow puts. Deletes become tombstones (see ``_store_layout``).
"""

from __future__ import annotations

import msgspec

from ..errors import StorageError
from ..storage._base import ActorRecord, CommitRecord
from . import _store_layout as layout

__all__ = ["Plan"]


class Plan:
    """The entries one actor's records of a batch write.

    Attributes:
        actor_id: whose records these are.
        record: the actor record to write (a creation or the initialized flag), or the
            one known before if nothing changes it.
        floor: the history floor this batch sets (entries below it are pruned), or None.
        entries: after `finish`, the engine entries to put, in stored form.
        tombstones: after `finish`, the keys whose entry is a tombstone.
    """

    __slots__ = (
        "_record_changed",
        "_staged",
        "actor_id",
        "entries",
        "floor",
        "queue_last",
        "ranges",
        "record",
        "seq",
        "state",
        "tombstones",
    )

    def __init__(self, actor_id: str, record: ActorRecord | None) -> None:
        self.actor_id = actor_id
        self.record = record
        self._record_changed = False
        self.seq = 0
        self.state: bytes | None = None
        self.floor: int | None = None
        self.queue_last: int | None = None
        #: Engine key -> data, or None for a delete; in the order first written.
        self._staged: dict[bytes, bytes | None] = {}
        self.ranges: list[tuple[bytes, bytes]] = []
        self.entries: list[tuple[bytes, bytes]] = []
        self.tombstones: list[bytes] = []

    def add(self, rec: CommitRecord) -> None:
        """Fold one record in (records of the actor in batch order).

        Raises:
            StorageError: the record sets the initialized flag of an actor whose record
                is unknown (neither created in this batch nor read before).
        """
        staged = self._staged
        self.seq = max(self.seq, rec.seq)
        if rec.create is not None:
            self.record = rec.create
            self._record_changed = True
        if rec.initialized and not (self.record is not None and self.record.initialized):
            if self.record is None:
                raise StorageError(
                    f"actor {self.actor_id}: its record is not known to this envoy; "
                    "cannot mark it initialized"
                )
            self.record = msgspec.structs.replace(self.record, initialized=True)
            self._record_changed = True
        if rec.state is not None:
            self.state = rec.state
        for start, end in rec.kv_delete_ranges:
            low, high = layout.KV + start, layout.KV + end
            for key in [k for k in staged if low <= k < high]:
                del staged[key]
            self.ranges.append((low, high))
        for key, value in rec.kv_puts:
            staged[layout.KV + key] = value
        for key in rec.kv_deletes:
            staged[layout.KV + key] = None
        for alarm in rec.alarm_puts:
            staged[layout.ALARM + alarm.alarm_id.encode()] = layout.encode_record(alarm)
        for alarm_id in rec.alarm_deletes:
            staged[layout.ALARM + alarm_id.encode()] = None
        for message in rec.queue_puts:
            staged[layout.QUEUE + layout.int8(message.id)] = layout.encode_record(message)
            self.queue_last = max(self.queue_last or 0, message.id)
        for message_id in rec.queue_deletes:
            staged[layout.QUEUE + layout.int8(message_id)] = None
        for wf_key in rec.workflow_deletes:
            staged[layout.WORKFLOW + wf_key.encode()] = None
        for wf_key, value in rec.workflow_puts:
            staged[layout.WORKFLOW + wf_key.encode()] = value
        if rec.event is not None:
            staged[layout.HISTORY + layout.int8(rec.event.seq)] = layout.encode_record(rec.event)
        if rec.prune_history_before is not None:
            self.floor = max(self.floor or 0, rec.prune_history_before)

    def finish(self) -> None:
        """Build `entries` and `tombstones`.

        Raises:
            StorageError: a key is too long for the engine (nothing was sent).
        """
        values: dict[bytes, bytes | None] = {layout.SEQ_KEY: layout.int8(self.seq)}
        if self.state is not None:
            values[layout.STATE_KEY] = self.state
        if self._record_changed and self.record is not None:
            values[layout.ACTOR_KEY] = layout.encode_record(self.record)
        if self.floor is not None:
            values[layout.FLOOR_KEY] = layout.int8(self.floor)
        if self.queue_last is not None:
            values[layout.QUEUE_LAST_KEY] = layout.int8(self.queue_last)
        values.update(self._staged)
        entries: list[tuple[bytes, bytes]] = []
        for key, data in values.items():
            layout.check_key(key)
            entries.extend(layout.encode_value(key, data))
            if data is None:
                self.tombstones.append(key)
        self.entries = entries

    def written_keys(self) -> set[bytes]:
        return {key for key, _ in self.entries}

    def needs_intent(self) -> bool:
        """Whether the write cannot be one engine put: range deletes, or over the
        engine's entry or size limit."""
        return bool(
            self.ranges
            or len(self.entries) > layout.MAX_ENTRIES_PER_PUT
            or layout.put_size(self.entries) > layout.MAX_PUT_BYTES
        )

    def intent(self) -> layout.Intent:
        return layout.Intent(self.seq, self.ranges, self.entries, self.tombstones)
