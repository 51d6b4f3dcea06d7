"""The storage contract every driver (memory, SQLite, Postgres) fulfils.

The runtime talks to storage only through `ActorStore`. One logical schema, keyed by
``actor_id``, backs every driver:

* ``actors``: one row per actor ever created (name, key, input, created/destroyed time).
  ``(name, key)`` is unique among live (not destroyed) actors.
* ``actor_state``: the latest committed snapshot and its ``seq``.
* ``actor_events``: the history: one `HistoryEntry` per commit, ordered by ``seq``.
* ``actor_kv``: the per-actor key/value space, ordered by key bytes.
* ``actor_alarms``: durable schedules (`AlarmRecord`).
* ``actor_queue``: queued messages (`QueueMessageRecord`), ordered by id, and per actor
  the highest message id ever stored (ids never repeat, even after the queue emptied).
* ``actor_workflow``: the actor's workflow history records, opaque bytes by string key.

Everything stored is bytes produced by ``pyrivet._codec`` or plain scalars; no driver
ever pickles.

Contract (checked by ``tests/contract`` against every driver):

* **Atomicity.** `ActorStore.commit` applies a whole batch or nothing. If it raises, no
  record of the batch is visible afterwards and the previous committed data is intact.
* **Ordering.** Records in a batch are applied in list order; a later record for the
  same actor wins (its state snapshot replaces the earlier one, KV ops apply in order).
  Within one record the KV range deletes apply first, then the puts, then the deletes.
  ``seq`` values of one actor's records are strictly increasing across commits.
* **Durability.** When `commit` returns, the batch survives a process crash (and, for
  drivers opened in strict mode, an OS crash, unless every record of the batch is
  ``synced_elsewhere``: then a later commit's sync covers it).
* **Read-your-writes.** Every read issued after a `commit` returned sees it.
* **Uniqueness.** `create_actor` / `get_or_create_actor` are atomic with respect to
  each other: of many concurrent calls for one ``(name, key)`` exactly one creates.
* **Destroy.** `destroy_actor` deletes the actor's state, KV, alarms, queue, workflow records
  and history in one step and marks the actor destroyed; its key becomes free and lookups by
  id return None.

Drivers are used from one event loop. Their methods are coroutines; a driver may run
its I/O on a thread but must resolve results on the loop that called it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Protocol

import msgspec

__all__ = [
    "ActorRecord",
    "ActorStore",
    "AlarmRecord",
    "CommitRecord",
    "HistoryEntry",
    "QueueMessageRecord",
    "StoredQueue",
    "StoredState",
    "prefix_end",
    "serialize_key",
]


def serialize_key(key: tuple[str, ...]) -> str:
    """The canonical string form of a key, used for uniqueness and lookups.

    Parts are joined by ``/``; ``\\`` and ``/`` inside a part are escaped with ``\\``; an
    empty part is ``\\0``; the empty key is ``/`` (RivetKit's serialization).
    """
    if not key:
        return "/"
    parts = []
    for part in key:
        if part == "":
            parts.append("\\0")
        else:
            parts.append(part.replace("\\", "\\\\").replace("/", "\\/"))
    return "/".join(parts)


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key above every key that starts with ``prefix``; None if there is
    none (``prefix`` is empty or all ``0xff``). ``[prefix, prefix_end(prefix))`` is the
    range of keys with that prefix."""
    stem = prefix.rstrip(b"\xff")
    return stem[:-1] + bytes((stem[-1] + 1,)) if stem else None


class ActorRecord(msgspec.Struct, frozen=True):
    """One actor as stored in ``actors``."""

    actor_id: str
    name: str
    key: tuple[str, ...]
    created_at_ms: int
    #: The encoded input given at creation (``None`` if none was given).
    input: bytes | None = None
    #: True once the first commit (create_state + on_create) has landed.
    initialized: bool = False
    destroyed_at_ms: int | None = None


class StoredState(msgspec.Struct, frozen=True):
    """The latest committed state of an actor."""

    #: The seq of the actor's latest commit (0 before any commit); commits that left the
    #: state unchanged count too, so a woken actor continues after it.
    seq: int
    #: The encoded state, or None if the actor was never initialized.
    snapshot: bytes | None
    initialized: bool


class AlarmRecord(msgspec.Struct, frozen=True):
    """A durable schedule of one actor: a one-off (``kind="once"``) or a cron job."""

    actor_id: str
    alarm_id: str
    #: When it fires next, epoch milliseconds.
    fire_at_ms: int
    kind: str
    action: str
    #: The encoded argument list.
    args: bytes
    created_at_ms: int
    #: The cron expression for ``kind="cron"``.
    cron: str | None = None
    timezone: str | None = None


class QueueMessageRecord(msgspec.Struct, frozen=True):
    """One message in an actor's queue (``actor_queue``)."""

    #: Per actor, from 1, strictly increasing; never reused.
    id: int
    name: str
    #: The encoded body.
    body: bytes
    created_at_ms: int


class StoredQueue(msgspec.Struct, frozen=True):
    """An actor's committed queue: its messages by id and the highest id ever stored."""

    last_id: int
    messages: list[QueueMessageRecord]


class HistoryEntry(msgspec.Struct, frozen=True, gc=False):
    """One committed change in an actor's history (``actor_events``).

    Not tracked by the garbage collector (``gc=False``): its fields are strings, ints
    and bytes, so it can be part of no reference cycle; one is made per commit.
    """

    actor_id: str
    seq: int
    at_ms: int
    #: What committed: "create", "action", "schedule", "save", "sleep", "destroy", ...
    kind: str
    #: The action or hook name, when there is one.
    name: str | None = None
    #: Who caused it: a connection id, "schedule:<id>", or None.
    by: str | None = None
    #: The encoded arguments of the action, when there is one.
    args: bytes | None = None
    #: The encoded state after this commit, or None if this commit left state unchanged.
    state: bytes | None = None
    #: The encoded list of KV and alarm operations of this commit, or None.
    ops: bytes | None = None


class CommitRecord(msgspec.Struct, gc=False):
    """Everything one unit of work (an action, a hook, a save) writes, applied atomically.

    Not tracked by the garbage collector (``gc=False``): it holds plain records,
    tuples and lists of them, never an object that refers back to it, so it can be part
    of no reference cycle; one is made per commit and lives until the commit settled
    (across a loop iteration for a workflow step), and an untracked object costs the
    collector nothing.
    """

    actor_id: str
    #: The actor's seq after this commit; strictly increasing per actor.
    seq: int
    #: The actor row to insert in this commit (its first start: creation and initial
    #: state land together). A live duplicate ``(name, key)`` fails the batch with
    #: DuplicateKeyError.
    create: ActorRecord | None = None
    #: The new snapshot, or None to leave ``actor_state`` as it is.
    state: bytes | None = None
    #: Set on the commit that completes the actor's first start.
    initialized: bool = False
    #: The KV and alarm fields default to empty tuples, not lists: most commits carry
    #: none, and four new lists per commit were work for the allocator and the
    #: collector (a workflow step's commit is alive across a loop iteration). A writer
    #: replaces a field (``record.kv_puts = [*record.kv_puts, put]``), never appends.
    kv_puts: Sequence[tuple[bytes, bytes]] = ()
    kv_deletes: Sequence[bytes] = ()
    #: Half-open key ranges ``[start, end)`` to empty, applied before this record's
    #: ``kv_puts`` and ``kv_deletes`` (a put in a deleted range is a later write).
    kv_delete_ranges: tuple[tuple[bytes, bytes], ...] = ()
    alarm_puts: Sequence[AlarmRecord] = ()
    alarm_deletes: Sequence[str] = ()
    #: Messages to add to the actor's queue (their ids are new). Tuples, so that the
    #: commit of an actor without queues allocates nothing for them.
    queue_puts: tuple[QueueMessageRecord, ...] = ()
    #: Ids of the actor's queued messages to delete (received or completed).
    queue_deletes: tuple[int, ...] = ()
    #: Workflow history records to store or replace, ``(key, value)``; keys are unique
    #: within the actor. Tuples, like the queue fields.
    workflow_puts: tuple[tuple[str, bytes], ...] = ()
    #: Keys of the actor's workflow records to delete. Within one record the deletes
    #: apply before the puts: a key both deleted and put ends up put.
    workflow_deletes: tuple[str, ...] = ()
    #: The history entry to append (its seq equals ``seq``), or None.
    event: HistoryEntry | None = None
    #: Delete history entries of this actor with ``seq < prune_history_before``.
    prune_history_before: int | None = None
    #: The whole record is already durable in a log the runtime replays after a crash
    #: (an actor database's redo log, ``storage/_actor_db.py``): a driver may write it
    #: without syncing (it must still survive a process crash and keep commit order).
    synced_elsewhere: bool = False

    def writes_beyond_log(self) -> bool:
        """Whether the record writes more than its state, history entry, prune bound and
        workflow records: an actor row, the initialized flag, KV, alarms or queue
        messages. A driver that journals records as log rows (the SQLite driver, whose
        log row carries the workflow records too) may write a record without these as
        one row alone. (A new kind of write belongs in this test too.)"""
        return bool(
            self.create is not None
            or self.initialized
            or self.kv_puts
            or self.kv_deletes
            or self.kv_delete_ranges
            or self.alarm_puts
            or self.alarm_deletes
            or self.queue_puts
            or self.queue_deletes
        )


class ActorStore(Protocol):
    """The storage driver interface. See the module docstring for the contract."""

    async def open(self) -> None:
        """Open or create the database, applying schema migrations.

        Raises:
            DataDirLockedError: another process has this database open.
            StorageError: the database cannot be opened.
        """
        ...

    async def close(self) -> None:
        """Flush and release everything; idempotent."""
        ...

    async def create_actor(self, record: ActorRecord) -> None:
        """Insert a new actor.

        Raises:
            DuplicateKeyError: a live actor already has ``(record.name, record.key)``.
        """
        ...

    async def get_or_create_actor(self, record: ActorRecord) -> tuple[ActorRecord, bool]:
        """Return the live actor with ``(record.name, record.key)``, inserting ``record``
        if there is none. The bool says whether this call created it."""
        ...

    async def find_actor(self, name: str, key: tuple[str, ...]) -> ActorRecord | None:
        """The live actor with this name and key, or None."""
        ...

    async def get_actor(self, actor_id: str) -> ActorRecord | None:
        """The live actor with this id, or None (also for destroyed actors)."""
        ...

    async def list_actors(
        self,
        name: str | None = None,
        *,
        after: tuple[int, str] | None = None,
        limit: int | None = None,
    ) -> list[ActorRecord]:
        """Live actors, optionally of one name, by ``(created_at_ms, actor_id)``.

        Paged: ``after`` is the ``(created_at_ms, actor_id)`` of the last actor of the
        previous page (only actors after it are returned), ``limit`` the most returned
        (None: all). Pages stay consistent while actors are created or destroyed: an
        actor is listed at most once, and every actor live throughout is listed.
        """
        ...

    async def count_actors(self) -> dict[str, int]:
        """How many live actors there are of each name (names with none are left out)."""
        ...

    async def load_state(self, actor_id: str) -> StoredState:
        """The latest committed state; ``StoredState(0, None, False)`` if none."""
        ...

    def commit(self, batch: Sequence[CommitRecord]) -> Awaitable[None]:
        """Apply ``batch`` atomically and durably (see the contract).

        A coroutine function fits; a driver may also start the write at once and return
        a future (the committer calls this on the event loop and awaits the result).

        Raises:
            StorageError: the write failed (e.g. the disk is full); nothing was applied.
        """
        ...

    async def destroy_actor(self, actor_id: str, at_ms: int) -> None:
        """Delete the actor's data (workflow records included) and mark it destroyed
        (see the contract)."""
        ...

    async def kv_get(self, actor_id: str, key: bytes) -> bytes | None:
        """The committed value of ``key``, or None."""
        ...

    async def kv_get_batch(self, actor_id: str, keys: Sequence[bytes]) -> list[bytes | None]:
        """The committed values of ``keys``, in the order given (None for a missing key)."""
        ...

    async def kv_list(
        self, actor_id: str, prefix: bytes, limit: int | None = None
    ) -> list[tuple[bytes, bytes]]:
        """Committed entries whose key starts with ``prefix``, in key byte order."""
        ...

    async def kv_list_range(
        self,
        actor_id: str,
        start: bytes,
        end: bytes | None,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """Committed entries with ``start <= key < end`` (``end`` None: no upper bound),
        in key byte order, or descending if ``reverse``; at most ``limit`` of them (the
        first ones in that order)."""
        ...

    async def load_queue(self, actor_id: str) -> StoredQueue:
        """The actor's committed queue: messages by id, and the highest id ever
        committed (0 if none), which deletes do not lower."""
        ...

    async def load_workflow(self, actor_id: str) -> dict[str, bytes]:
        """Every committed workflow record of the actor, by key; ``{}`` if it has none
        (also for an unknown or destroyed actor). The dict is the caller's to change.

        Raises:
            StorageError: the store is not open, or the read failed.
        """
        ...

    async def list_alarms(self, actor_id: str | None = None) -> list[AlarmRecord]:
        """Alarms of one actor, or of every live actor, ordered by ``(fire_at_ms, alarm_id)``."""
        ...

    async def read_history(
        self, actor_id: str, after_seq: int = 0, limit: int | None = None
    ) -> list[HistoryEntry]:
        """History entries with ``seq > after_seq``, in seq order."""
        ...
