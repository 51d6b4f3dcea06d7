"""The in-process storage driver: every table is a dict, nothing touches the disk.

`MemoryDriver` backs tests, benchmarks and ephemeral runs. All methods run on the
calling event loop and never await anything, so each call is atomic with respect to
the others and reads always see every earlier write. Data lives as long as the driver
object: ``close()`` followed by ``open()`` finds it again, a new driver starts empty.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Awaitable, Sequence
from typing import TypeVar

import msgspec

from ..errors import DuplicateKeyError, StorageError
from ._actor_db import ActorDatabases, MemoryDatabases
from ._base import (
    ActorRecord,
    AlarmRecord,
    CommitRecord,
    HistoryEntry,
    QueueMessageRecord,
    StoredQueue,
    StoredState,
    prefix_end,
    serialize_key,
)

__all__ = ["MemoryDriver"]

_K = TypeVar("_K")


def _seq_of(entry: HistoryEntry) -> int:
    return entry.seq


def _duplicate_key(name: str, key: tuple[str, ...]) -> DuplicateKeyError:
    return DuplicateKeyError(
        f"an actor {name!r} with key {list(key)!r} already exists; "
        "use get_or_create to reuse it or pick another key",
        metadata={"name": name, "key": list(key)},
    )


class MemoryDriver:
    """An `ActorStore` that keeps everything in dicts of the driver object.

    Stored bytes are shared, never copied (bytes are immutable); records are frozen
    structs and are returned as stored. Calling a method before `open` or after
    `close` raises `StorageError`.
    """

    def __init__(self) -> None:
        self._is_open = False
        self._fail_next: Exception | None = None
        # Every actor ever created, destroyed ones included, in creation order.
        self._actors: dict[str, ActorRecord] = {}
        # (name, serialized key) -> actor_id of the live actor holding it.
        self._live: dict[tuple[str, str], str] = {}
        # actor_id -> (highest committed seq, latest snapshot or None).
        self._state: dict[str, tuple[int, bytes | None]] = {}
        # Per actor, in seq order (seqs only grow, so appending keeps it sorted).
        self._events: dict[str, list[HistoryEntry]] = {}
        self._kv: dict[str, dict[bytes, bytes]] = {}
        self._alarms: dict[str, dict[str, AlarmRecord]] = {}
        # actor_id -> (highest id ever stored, messages by id in id order).
        self._queues: dict[str, tuple[int, dict[int, QueueMessageRecord]]] = {}
        # actor_id -> workflow records by key.
        self._workflow: dict[str, dict[str, bytes]] = {}

    # -- test hook ---------------------------------------------------------------

    def fail_next_commit(self, exc: Exception) -> None:
        """Make the next `commit` fail without applying anything (a test hook).

        The next `commit` raises ``exc`` itself if it is a `StorageError`, otherwise a
        `StorageError` whose ``__cause__`` is ``exc``. The commit after that works
        normally again. This simulates a failed write (full disk, lost connection).
        """
        self._fail_next = exc

    # -- lifecycle ----------------------------------------------------------------

    async def open(self) -> None:
        """Make the driver usable; the data kept from an earlier open is still there."""
        self._is_open = True

    async def close(self) -> None:
        """Refuse further calls until the next `open`; idempotent. Keeps the data."""
        self._is_open = False

    def _check_open(self) -> None:
        if not self._is_open:
            raise StorageError("the memory store is not open; call open() first")

    # -- actors -------------------------------------------------------------------

    async def create_actor(self, record: ActorRecord) -> None:
        """Insert a new actor; see `ActorStore.create_actor`.

        Raises:
            DuplicateKeyError: a live actor already has this name and key.
            StorageError: an actor with this ``actor_id`` already exists.
        """
        self._check_open()
        if (record.name, serialize_key(record.key)) in self._live:
            raise _duplicate_key(record.name, record.key)
        self._insert(record)

    async def get_or_create_actor(self, record: ActorRecord) -> tuple[ActorRecord, bool]:
        """Return the live actor with ``record``'s name and key, creating it if missing."""
        self._check_open()
        existing = self._live.get((record.name, serialize_key(record.key)))
        if existing is not None:
            return self._actors[existing], False
        return self._insert(record), True

    def _insert(self, record: ActorRecord) -> ActorRecord:
        if record.actor_id in self._actors:
            raise StorageError(f"an actor with id {record.actor_id!r} already exists")
        if record.destroyed_at_ms is not None:
            record = msgspec.structs.replace(record, destroyed_at_ms=None)
        self._actors[record.actor_id] = record
        self._live[(record.name, serialize_key(record.key))] = record.actor_id
        return record

    async def find_actor(self, name: str, key: tuple[str, ...]) -> ActorRecord | None:
        """The live actor with this name and key, or None."""
        self._check_open()
        actor_id = self._live.get((name, serialize_key(key)))
        return None if actor_id is None else self._actors[actor_id]

    async def get_actor(self, actor_id: str) -> ActorRecord | None:
        """The live actor with this id, or None."""
        self._check_open()
        record = self._actors.get(actor_id)
        if record is None or record.destroyed_at_ms is not None:
            return None
        return record

    async def list_actors(
        self,
        name: str | None = None,
        *,
        after: tuple[int, str] | None = None,
        limit: int | None = None,
    ) -> list[ActorRecord]:
        """Live actors (optionally of one name) by ``(created_at_ms, actor_id)``, paged
        (see `ActorStore.list_actors`)."""
        self._check_open()
        found = [
            r
            for r in self._actors.values()
            if r.destroyed_at_ms is None
            and (name is None or r.name == name)
            and (after is None or (r.created_at_ms, r.actor_id) > after)
        ]
        found.sort(key=lambda r: (r.created_at_ms, r.actor_id))
        return found if limit is None else found[:limit]

    async def count_actors(self) -> dict[str, int]:
        """Live actors per name."""
        self._check_open()
        counts: dict[str, int] = {}
        for r in self._actors.values():
            if r.destroyed_at_ms is None:
                counts[r.name] = counts.get(r.name, 0) + 1
        return counts

    async def destroy_actor(self, actor_id: str, at_ms: int) -> None:
        """Delete the actor's state, history, KV, alarms, queue and workflow records and
        mark it destroyed.

        For an unknown or already destroyed actor only its leftover data is deleted.
        """
        self._check_open()
        record = self._actors.get(actor_id)
        if record is not None and record.destroyed_at_ms is None:
            self._actors[actor_id] = msgspec.structs.replace(record, destroyed_at_ms=at_ms)
            del self._live[(record.name, serialize_key(record.key))]
        self._state.pop(actor_id, None)
        self._events.pop(actor_id, None)
        self._kv.pop(actor_id, None)
        self._alarms.pop(actor_id, None)
        self._queues.pop(actor_id, None)
        self._workflow.pop(actor_id, None)

    # -- state and commits ----------------------------------------------------------

    async def load_state(self, actor_id: str) -> StoredState:
        """The actor's last committed seq (commits that left the state unchanged count)
        and latest snapshot; ``StoredState(0, None, False)`` if none."""
        self._check_open()
        seq, snapshot = self._state.get(actor_id, (0, None))
        record = self._actors.get(actor_id)
        initialized = record is not None and record.initialized and record.destroyed_at_ms is None
        return StoredState(seq=seq, snapshot=snapshot, initialized=initialized)

    def commit(self, batch: Sequence[CommitRecord]) -> Awaitable[None]:
        """Apply ``batch`` atomically, before returning; see `ActorStore.commit`.

        Returns a future that is already done (with the error, if the commit failed), so
        the committer settles the batch without an event-loop round trip.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            self._commit_now(batch)
        except Exception as exc:
            done.set_exception(exc)
        else:
            done.set_result(None)
        return done

    def _commit_now(self, batch: Sequence[CommitRecord]) -> None:
        """Apply ``batch`` atomically.

        Everything is first collected into staging dicts (the only step that can fail,
        e.g. on a malformed record); the stores are updated only after that succeeded.
        History pruning runs after the batch's events were appended.

        Raises:
            StorageError: the failure armed by `fail_next_commit`, or a malformed record.
        """
        self._check_open()
        if self._fail_next is not None:
            exc, self._fail_next = self._fail_next, None
            if isinstance(exc, StorageError):
                raise exc
            raise StorageError(f"commit failed (simulated): {exc}") from exc
        try:
            staged = _Staged(batch)
        except Exception as exc:
            raise StorageError(f"commit rejected, nothing was written: {exc!r}") from exc
        self._check_creates(staged.creates)
        self._apply(staged)

    def _check_creates(self, creates: list[ActorRecord]) -> None:
        """Reject the batch if an actor it creates clashes with a live one (or another)."""
        slots: set[tuple[str, str]] = set()
        for record in creates:
            slot = (record.name, serialize_key(record.key))
            if slot in self._live or slot in slots:
                raise _duplicate_key(record.name, record.key)
            if record.actor_id in self._actors:
                raise StorageError(f"an actor with id {record.actor_id!r} already exists")
            slots.add(slot)

    def _apply(self, staged: _Staged) -> None:
        """Write staged changes into the dicts; only dict operations, so it cannot fail."""
        for created in staged.creates:
            self._insert(created)
        for actor_id, seq in staged.seqs.items():
            old_seq, snapshot = self._state.get(actor_id, (0, None))
            self._state[actor_id] = (max(old_seq, seq), staged.states.get(actor_id, snapshot))
        for actor_id in staged.initialized:
            record = self._actors.get(actor_id)
            if record is not None and not record.initialized:
                self._actors[actor_id] = msgspec.structs.replace(record, initialized=True)
        for actor_id, ranges in staged.kv_ranges.items():
            space = self._kv.get(actor_id)
            if space:
                for start, end in ranges:
                    for key in [k for k in space if start <= k < end]:
                        del space[key]
        for actor_id, kv_ops in staged.kv.items():
            _apply_ops(self._kv.setdefault(actor_id, {}), kv_ops)
        for actor_id, workflow_ops in staged.workflow.items():
            _apply_ops(self._workflow.setdefault(actor_id, {}), workflow_ops)
        for actor_id, alarm_ops in staged.alarms.items():
            alarms = self._alarms.setdefault(actor_id, {})
            for alarm_id, alarm in alarm_ops.items():
                if alarm is None:
                    alarms.pop(alarm_id, None)
                else:
                    alarms[alarm_id] = alarm
        for actor_id, (puts, deletes) in staged.queues.items():
            last_id, messages = self._queues.get(actor_id, (0, {}))
            for message in puts:
                messages[message.id] = message
                last_id = max(last_id, message.id)
            for message_id in deletes:
                messages.pop(message_id, None)
            self._queues[actor_id] = (last_id, messages)
        for event in staged.events:
            self._events.setdefault(event.actor_id, []).append(event)
        for actor_id, before in staged.prunes.items():
            entries = self._events.get(actor_id)
            if not entries or entries[0].seq >= before:
                continue
            if len(entries) == 1 or entries[1].seq >= before:
                # The runtime prunes on every commit past its limit: one entry goes.
                del entries[0]
            else:
                del entries[: bisect.bisect_left(entries, before, key=_seq_of)]

    # -- KV -------------------------------------------------------------------------

    async def kv_get(self, actor_id: str, key: bytes) -> bytes | None:
        """The committed value of ``key``, or None."""
        self._check_open()
        space = self._kv.get(actor_id)
        return None if space is None else space.get(key)

    async def kv_get_batch(self, actor_id: str, keys: Sequence[bytes]) -> list[bytes | None]:
        """The committed values of ``keys`` in the order given, None for a missing one."""
        self._check_open()
        space = self._kv.get(actor_id) or {}
        return [space.get(key) for key in keys]

    async def kv_list(
        self, actor_id: str, prefix: bytes, limit: int | None = None
    ) -> list[tuple[bytes, bytes]]:
        """Entries whose key starts with ``prefix``, in key byte order, at most ``limit``."""
        return await self.kv_list_range(actor_id, prefix, prefix_end(prefix), limit=limit)

    async def kv_list_range(
        self,
        actor_id: str,
        start: bytes,
        end: bytes | None,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """Entries with ``start <= key < end`` (no upper bound if ``end`` is None) in key
        byte order, descending if ``reverse``, at most ``limit``.

        Sorts the matching keys on every call: the memory driver is for tests and small
        runs, not for actors with millions of keys.
        """
        self._check_open()
        space = self._kv.get(actor_id)
        if not space:
            return []
        keys = sorted(
            (k for k in space if start <= k and (end is None or k < end)), reverse=reverse
        )
        if limit is not None:
            keys = keys[: max(limit, 0)]
        return [(k, space[k]) for k in keys]

    # -- queues -----------------------------------------------------------------------

    async def load_queue(self, actor_id: str) -> StoredQueue:
        """The actor's queued messages in id order and the highest id ever stored."""
        self._check_open()
        last_id, messages = self._queues.get(actor_id, (0, {}))
        return StoredQueue(last_id, [messages[i] for i in sorted(messages)])

    # -- workflow records ---------------------------------------------------------------

    async def load_workflow(self, actor_id: str) -> dict[str, bytes]:
        """A copy of the actor's committed workflow records by key; ``{}`` if none."""
        self._check_open()
        return dict(self._workflow.get(actor_id, {}))

    # -- alarms and history -----------------------------------------------------------

    async def list_alarms(self, actor_id: str | None = None) -> list[AlarmRecord]:
        """Alarms of one actor, or of every live actor, by ``(fire_at_ms, alarm_id)``."""
        self._check_open()
        if actor_id is not None:
            found = list(self._alarms.get(actor_id, {}).values())
        else:
            found = [
                alarm
                for owner, alarms in self._alarms.items()
                if self._is_live(owner)
                for alarm in alarms.values()
            ]
        found.sort(key=lambda a: (a.fire_at_ms, a.alarm_id))
        return found

    def _is_live(self, actor_id: str) -> bool:
        record = self._actors.get(actor_id)
        return record is not None and record.destroyed_at_ms is None

    async def read_history(
        self, actor_id: str, after_seq: int = 0, limit: int | None = None
    ) -> list[HistoryEntry]:
        """History entries with ``seq > after_seq`` in seq order, at most ``limit``."""
        self._check_open()
        entries = self._events.get(actor_id)
        if not entries:
            return []
        start = bisect.bisect_right(entries, after_seq, key=_seq_of)
        stop = len(entries) if limit is None else start + max(limit, 0)
        return entries[start:stop]

    def actor_databases(self) -> ActorDatabases:
        """The per-actor SQL databases (``c.db``): in memory, alive as long as this driver."""
        dbs: MemoryDatabases | None = getattr(self, "_actor_dbs", None)
        if dbs is None:
            dbs = self._actor_dbs = MemoryDatabases()
        return dbs


def _apply_ops(space: dict[_K, bytes], ops: dict[_K, bytes | None]) -> None:
    """Put each key's value into ``space``, or remove the key where the value is None."""
    for key, value in ops.items():
        if value is None:
            space.pop(key, None)
        else:
            space[key] = value


class _Staged:
    """One batch, coalesced: the last state and the last op per KV key / alarm id /
    workflow key win.

    A KV range delete is kept per actor (``kv_ranges``, applied before the point ops)
    and removes the point ops of earlier records in its range, so what remains in
    ``kv`` is later than every range that covers it.

    ``seqs`` holds every actor's highest seq in the batch, commits without a new state
    included: `ActorStore.load_state` reports it.
    """

    __slots__ = (
        "alarms",
        "creates",
        "events",
        "initialized",
        "kv",
        "kv_ranges",
        "prunes",
        "queues",
        "seqs",
        "states",
        "workflow",
    )

    def __init__(self, batch: Sequence[CommitRecord]) -> None:
        self.seqs: dict[str, int] = {}
        self.states: dict[str, bytes] = {}
        self.creates: list[ActorRecord] = []
        self.initialized: list[str] = []
        self.kv: dict[str, dict[bytes, bytes | None]] = {}
        self.kv_ranges: dict[str, list[tuple[bytes, bytes]]] = {}
        self.alarms: dict[str, dict[str, AlarmRecord | None]] = {}
        self.events: list[HistoryEntry] = []
        self.prunes: dict[str, int] = {}
        #: actor_id -> (messages to add, ids to delete after adding), in record order.
        self.queues: dict[str, tuple[list[QueueMessageRecord], list[int]]] = {}
        self.workflow: dict[str, dict[str, bytes | None]] = {}
        for rec in batch:
            actor_id = rec.actor_id
            if rec.create is not None:
                self.creates.append(rec.create)
            self.seqs[actor_id] = max(rec.seq, self.seqs.get(actor_id, rec.seq))
            if rec.state is not None:
                self.states[actor_id] = rec.state
            if rec.initialized:
                self.initialized.append(actor_id)
            if rec.kv_puts or rec.kv_deletes or rec.kv_delete_ranges:
                kv = self.kv.setdefault(actor_id, {})
                for start, end in rec.kv_delete_ranges:
                    self.kv_ranges.setdefault(actor_id, []).append((start, end))
                    for key in [k for k in kv if start <= k < end]:
                        del kv[key]
                for key, value in rec.kv_puts:
                    kv[key] = value
                for key in rec.kv_deletes:
                    kv[key] = None
            if rec.alarm_puts or rec.alarm_deletes:
                alarms = self.alarms.setdefault(actor_id, {})
                for alarm in rec.alarm_puts:
                    alarms[alarm.alarm_id] = alarm
                for alarm_id in rec.alarm_deletes:
                    alarms[alarm_id] = None
            if rec.queue_puts or rec.queue_deletes:
                puts, deletes = self.queues.setdefault(actor_id, ([], []))
                puts.extend(rec.queue_puts)
                deletes.extend(rec.queue_deletes)
            if rec.workflow_puts or rec.workflow_deletes:
                workflow = self.workflow.setdefault(actor_id, {})
                for wf_key in rec.workflow_deletes:  # deletes first: a key also put stays
                    workflow[wf_key] = None
                for wf_key, value in rec.workflow_puts:
                    workflow[wf_key] = value
            if rec.event is not None:
                self.events.append(rec.event)
            if rec.prune_history_before is not None:
                prev = self.prunes.get(actor_id, rec.prune_history_before)
                self.prunes[actor_id] = max(prev, rec.prune_history_before)
