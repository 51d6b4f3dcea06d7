"""`EngineStore`: the `ActorStore` of envoy mode, over the engine's per-actor KV.

Every actor's state, ``c.kv``, schedules, history, queue and workflow records live in
the Rivet Engine's KV of that actor (the key layout is in ``_store_layout``), so a
restarted envoy, or another envoy the engine moves the actor to, reads it all back.
Runs on the event loop of the `Envoy` it is bound to (`bind`); every read and write
is a KV request through that envoy's socket, resent after a reconnect until answered.

Commits (`commit`):

* The records of a batch are grouped by actor; each actor's records become **one
  KvPut** (one engine transaction, so atomic): state, seq, history entries, KV, alarms,
  queue and workflow writes. A delete is written as a tombstone in that same put, so a
  crash never leaves data from two points of an actor's life; tombstones are deleted
  with the actor's next commit (readers skip them meanwhile).
* The puts of all actors are sent before any answer is awaited (group commit over the
  wire); the commit resolves once the engine acknowledged every one of them.
* A KV error reply fails the commit with `StorageError` naming the actor and the
  engine's message; actors whose put succeeded keep it (a put is idempotent, so the
  committer's one-by-one retry writes it again harmlessly).
* A commit with KV range deletes, or too large for one put (128 entries, ~900 KB), is
  first written as an `Intent` and then applied step by step; the intent is deleted
  last, and a reader of the actor replays any intent it finds first. The commit
  resolves after all of it was applied.

Directory: the engine owns actor ids and placement. The store knows the actors the
engine started on this envoy (`adopt` / `release`, called by `EnvoyHost`): `get_actor`,
`find_actor`, `list_actors` and `count_actors` answer for those; creating an actor the
engine did not start here raises `StorageError` saying to go through the engine.

The actors' SQL databases (``c.db``) are not in the engine: with ``local_db_dir`` they
are files on this envoy's disk (an actor moved to another envoy starts with an empty
one; a warning says so at open), without it ``c.db`` fails with a clear error.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Final

from ..errors import DatabaseError, StorageError
from ..storage._actor_db import ActorDatabases, FileDatabases
from ..storage._base import (
    ActorRecord,
    ActorStore,
    AlarmRecord,
    CommitRecord,
    HistoryEntry,
    QueueMessageRecord,
    StoredQueue,
    StoredState,
    prefix_end,
    serialize_key,
)
from . import _store_layout as layout
from ._envoy import Envoy, EnvoyState
from ._kv import EngineKV
from ._store_plan import Plan
from ._store_reads import engine_call, read_range, read_values

__all__ = ["EngineStore"]

log = logging.getLogger(__name__)

#: History entries pruned in memory before the pruned range is deleted in the engine.
_HISTORY_GC_EVERY: Final = 64


class EngineStore(ActorStore):
    """An `ActorStore` whose data lives in the Rivet Engine (see the module doc).

    Build it, hand it to the runtime, and `bind` it to the envoy before the first
    actor starts (`EnvoyHost` does both ends). Calls before `open`, after `close`, or
    without a bound envoy raise `StorageError`.
    """

    def __init__(self, *, local_db_dir: str | os.PathLike[str] | None = None) -> None:
        self._envoy: Envoy | None = None
        self._kv: EngineKV | None = None
        self._open = False
        self._local_db_dir = None if local_db_dir is None else Path(local_db_dir)
        self._dbs: FileDatabases | None = None
        #: Actors the engine started on this envoy and has not stopped, each with the
        #: number of its adoption (a release forgets only the adoption it belongs to).
        self._hosted: dict[str, int] = {}
        self._adoptions = 0
        #: The stored record of each hosted actor, once read or written.
        self._records: dict[str, ActorRecord] = {}
        #: Actors whose pending intents were replayed since they were adopted.
        self._recovered: dict[str, asyncio.Future[None]] = {}
        #: Per actor: the committed history floor, and the floor up to which old
        #: entries were deleted in the engine.
        self._floor: dict[str, int] = {}
        self._floor_deleted: dict[str, int] = {}
        #: Per actor: the state read by `get_actor`, for the `load_state` right after.
        self._prefetched: dict[str, StoredState] = {}
        #: Per actor: keys holding tombstones, deleted with its next commit.
        self._garbage: dict[str, set[bytes]] = {}

    # -- wiring ------------------------------------------------------------------------

    def bind(self, envoy: Envoy) -> None:
        """Use ``envoy``'s connection for every KV request."""
        self._envoy = envoy
        self._kv = EngineKV(envoy)

    def adopt(self, actor_id: str) -> None:
        """The engine started ``actor_id`` on this envoy: its data may be read and
        written here (the engine refuses KV requests for actors of other envoys)."""
        self._adoptions += 1
        self._hosted[actor_id] = self._adoptions

    async def release(self, actor_id: str) -> None:
        """The engine stopped ``actor_id`` here: delete its leftover tombstones and
        forget it. Errors are logged (what is left is garbage readers skip). If the
        engine started the actor here again meanwhile, the new start is kept."""
        adoption = self._hosted.get(actor_id)
        garbage = self._gc_requests(actor_id)
        if garbage and self._usable():
            results = await asyncio.gather(*garbage, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    log.warning("cleanup of actor %s's deleted keys failed: %s", actor_id, result)
        if self._hosted.get(actor_id) == adoption:
            self._forget(actor_id)

    def _forget(self, actor_id: str) -> None:
        self._hosted.pop(actor_id, None)
        self._records.pop(actor_id, None)
        self._recovered.pop(actor_id, None)
        self._floor.pop(actor_id, None)
        self._floor_deleted.pop(actor_id, None)
        self._garbage.pop(actor_id, None)
        self._prefetched.pop(actor_id, None)

    def _usable(self) -> bool:
        envoy = self._envoy
        return envoy is not None and envoy.state not in (EnvoyState.CLOSED, EnvoyState.FAILED)

    def _check_open(self) -> None:
        if not self._open:
            raise StorageError("the engine store is not open; call open() first")

    def _client(self) -> EngineKV:
        self._check_open()
        if self._kv is None or not self._usable():
            raise StorageError(
                "the engine store has no connection to the Rivet Engine (the envoy is "
                "not bound, closed or gave up); nothing was read or written"
            )
        return self._kv

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False
        if self._dbs is not None:
            self._dbs.close_all()

    def actor_databases(self) -> ActorDatabases:
        """The actors' SQL databases: files under ``local_db_dir`` on this envoy.

        Raises:
            DatabaseError: no ``local_db_dir`` was given (``c.db`` cannot live in the
                engine yet, and keeping it on one envoy must be chosen knowingly).
        """
        if self._local_db_dir is None:
            raise DatabaseError(
                "c.db is not available in envoy mode with the engine's storage: the SQL "
                "database cannot live in the Rivet Engine yet. Start the envoy with "
                "--local-actor-db to keep it on this envoy's disk (an actor moved to "
                "another envoy then starts with an empty database), or with "
                "--local-storage",
                code="unsupported",
            )
        if self._dbs is None:
            log.warning(
                "envoy mode: c.db databases are kept on this envoy's disk (%s), not in "
                "the Rivet Engine; an actor the engine moves to another envoy starts "
                "there with an empty database",
                self._local_db_dir,
            )
            self._dbs = FileDatabases(self._local_db_dir, "FULL")
        return self._dbs

    # -- the directory --------------------------------------------------------------

    def _not_hosted(self, what: str, name: str, key: tuple[str, ...]) -> StorageError:
        return StorageError(
            f"cannot {what} actor {name!r} with key {list(key)!r} here: in envoy mode the "
            "Rivet Engine creates actors and places them on envoys; create or reach it "
            "through the engine's gateway (a client pointed at the engine)"
        )

    async def create_actor(self, record: ActorRecord) -> None:
        """Write the record of an actor the engine started here.

        Raises:
            StorageError: the engine did not start ``record.actor_id`` on this envoy.
            DuplicateKeyError is never raised: the engine keeps keys unique.
        """
        if record.actor_id not in self._hosted:
            raise self._not_hosted("create", record.name, record.key)
        await self._await_commit([CommitRecord(record.actor_id, 0, create=record)])

    async def get_or_create_actor(self, record: ActorRecord) -> tuple[ActorRecord, bool]:
        existing = await self.find_actor(record.name, record.key)
        if existing is not None:
            return existing, False
        await self.create_actor(record)
        return record, True

    async def _await_commit(self, batch: Sequence[CommitRecord]) -> None:
        await self.commit(batch)

    async def find_actor(self, name: str, key: tuple[str, ...]) -> ActorRecord | None:
        """The actor with this name and key among those hosted here, or None (the
        engine may have it on another envoy)."""
        self._check_open()
        wanted = serialize_key(key)
        for record in self._records.values():
            if record.name == name and serialize_key(record.key) == wanted:
                return record
        return None

    async def get_actor(self, actor_id: str) -> ActorRecord | None:
        """The record of an actor hosted here, read from the engine; None if the engine
        did not start it here or it has no record yet (its first start).

        Reads the actor's state in the same request and keeps it for the `load_state`
        that follows on a wake (one engine round trip less per wake).
        """
        kv = self._client()
        if actor_id not in self._hosted:
            return None
        record = self._records.get(actor_id)
        if record is not None:
            return record
        self._prefetched[actor_id] = await self._read_state(kv, actor_id)
        return self._records.get(actor_id)

    async def list_actors(
        self,
        name: str | None = None,
        *,
        after: tuple[int, str] | None = None,
        limit: int | None = None,
    ) -> list[ActorRecord]:
        """The actors hosted here (not every actor of the engine), paged like
        `ActorStore.list_actors`."""
        self._check_open()
        found = sorted(
            (
                r
                for r in self._records.values()
                if (name is None or r.name == name)
                and (after is None or (r.created_at_ms, r.actor_id) > after)
            ),
            key=lambda r: (r.created_at_ms, r.actor_id),
        )
        return found if limit is None else found[: max(limit, 0)]

    async def count_actors(self) -> dict[str, int]:
        """Actors hosted here, per name."""
        self._check_open()
        counts: dict[str, int] = {}
        for record in self._records.values():
            counts[record.name] = counts.get(record.name, 0) + 1
        return counts

    async def destroy_actor(self, actor_id: str, at_ms: int) -> None:
        """Delete every key of the actor in the engine (``KvDrop``)."""
        kv = self._client()
        if actor_id in self._hosted:
            await engine_call(actor_id, kv.drop(actor_id))
        self._forget(actor_id)

    # -- commits --------------------------------------------------------------------

    def commit(self, batch: Sequence[CommitRecord]) -> Awaitable[None]:
        """Write ``batch``: one engine put per actor, all sent before any is awaited
        (see the module doc). Resolves when the engine acknowledged every write.

        Raises (through the returned future):
            StorageError: the engine refused a write (its message included), the store
                has no connection, or a record creates an actor not started here.
        """
        return asyncio.ensure_future(self._commit(list(batch)))

    async def _commit(self, batch: list[CommitRecord]) -> None:
        kv = self._client()
        plans: dict[str, Plan] = {}
        for record in batch:
            actor_id = record.actor_id
            if record.create is not None and actor_id not in self._hosted:
                raise self._not_hosted("create", record.create.name, record.create.key)
            if actor_id not in self._hosted:
                raise StorageError(
                    f"actor {actor_id} is not hosted by this envoy (the engine stopped it "
                    "here or never started it); nothing was written"
                )
            plan = plans.get(actor_id)
            if plan is None:
                plan = plans[actor_id] = Plan(actor_id, self._records.get(actor_id))
            plan.add(record)
        for plan in plans.values():
            plan.finish()
        writes = [self._write(kv, plan) for plan in plans.values()]
        results = await asyncio.gather(*writes, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            for error in errors:
                if not isinstance(error, Exception):
                    raise error
            raise errors[0]

    async def _write(self, kv: EngineKV, plan: Plan) -> None:
        """Write one actor's share of a batch; update the caches once it is durable.

        The garbage of the actor's earlier commits (tombstones, pruned history) is
        deleted alongside: none of it is a key this write puts, and its failure loses
        nothing (readers skip it), so it is only logged.
        """
        actor_id = plan.actor_id
        self._prefetched.pop(actor_id, None)
        await self._recover(actor_id)
        garbage = self._garbage.get(actor_id)
        if garbage:
            garbage.difference_update(plan.written_keys())
        cleanup = self._gc_requests(actor_id)
        if plan.needs_intent():
            write = self._write_intent(kv, plan)
        else:
            write = engine_call(actor_id, kv.put(actor_id, plan.entries))
        results = await asyncio.gather(write, *cleanup, return_exceptions=True)
        outcome = results[0]
        if isinstance(outcome, BaseException):
            if plan.needs_intent():
                # Part of it may be in the engine: the next read of the actor replays
                # the intent if its header landed.
                self._recovered.pop(actor_id, None)
            raise outcome
        self._committed(plan)
        for result in results[1:]:
            if isinstance(result, BaseException):
                log.warning("cleanup of actor %s's old keys failed: %s", actor_id, result)

    def _committed(self, plan: Plan) -> None:
        actor_id = plan.actor_id
        if plan.record is not None and actor_id in self._hosted:
            self._records[actor_id] = plan.record
        if plan.tombstones and not plan.needs_intent():  # an intent deletes its own
            self._garbage.setdefault(actor_id, set()).update(plan.tombstones)
        if plan.floor is not None:
            self._floor[actor_id] = max(plan.floor, self._floor.get(actor_id, 0))

    def _gc_requests(self, actor_id: str) -> list[Awaitable[None]]:
        """Requests deleting the actor's tombstones and pruned history (taken from the
        pending garbage: sent once)."""
        kv = self._kv
        if kv is None:
            return []
        requests: list[Awaitable[None]] = []
        garbage = self._garbage.pop(actor_id, None)
        if garbage:
            keys = sorted(garbage)
            for start in range(0, len(keys), layout.MAX_ENTRIES_PER_PUT):
                requests.append(
                    kv.delete(actor_id, keys[start : start + layout.MAX_ENTRIES_PER_PUT])
                )
        floor = self._floor.get(actor_id, 0)
        deleted = self._floor_deleted.get(actor_id, 0)
        if floor - deleted >= _HISTORY_GC_EVERY:
            self._floor_deleted[actor_id] = floor
            start_key = layout.HISTORY + layout.int8(deleted)
            requests.append(
                kv.delete_range(actor_id, start_key, layout.HISTORY + layout.int8(floor))
            )
        return requests

    # -- intents: commits too large for one put ----------------------------------------

    async def _write_intent(self, kv: EngineKV, plan: Plan) -> None:
        actor_id = plan.actor_id
        intent = plan.intent()
        data = layout.encode_record(intent)
        seq_key = layout.int8(intent.seq)
        parts = layout.encode_value(layout.INTENT + seq_key, data)
        # The header (first entry) goes last, alone: an intent without it is ignored.
        header, rest = parts[0], parts[1:]
        await asyncio.gather(
            *(engine_call(actor_id, kv.put(actor_id, group)) for group in layout.batches(rest))
        )
        await engine_call(actor_id, kv.put(actor_id, [header]))
        await self._apply_intent(kv, actor_id, intent)

    async def _apply_intent(self, kv: EngineKV, actor_id: str, intent: layout.Intent) -> None:
        """Apply ``intent`` (again): ranges emptied, entries put, tombstones deleted, then
        the intent itself deleted. Every step is idempotent."""
        await asyncio.gather(
            *(engine_call(actor_id, kv.delete_range(actor_id, s, e)) for s, e in intent.ranges)
        )
        await asyncio.gather(
            *(
                engine_call(actor_id, kv.put(actor_id, group))
                for group in layout.batches(intent.puts)
            )
        )
        deletes = intent.deletes
        step = layout.MAX_ENTRIES_PER_PUT
        await asyncio.gather(
            *(
                engine_call(actor_id, kv.delete(actor_id, deletes[i : i + step]))
                for i in range(0, len(deletes), step)
            )
        )
        header = layout.INTENT + layout.int8(intent.seq)
        await engine_call(actor_id, kv.delete(actor_id, [header]))
        parts = layout.PART + header + b"\x00"
        end = prefix_end(parts)
        assert end is not None
        await engine_call(actor_id, kv.delete_range(actor_id, parts, end))

    async def _recover(self, actor_id: str) -> None:
        """Replay the actor's intents left by a crash, once per adoption."""
        pending = self._recovered.get(actor_id)
        if pending is None:
            pending = self._recovered[actor_id] = asyncio.ensure_future(self._replay(actor_id))
        try:
            await asyncio.shield(pending)
        except BaseException:
            if self._recovered.get(actor_id) is pending:
                del self._recovered[actor_id]  # try again next time
            raise

    async def _replay(self, actor_id: str) -> None:
        kv = self._client()
        end = prefix_end(layout.INTENT)
        assert end is not None
        found = await read_range(kv, actor_id, layout.INTENT, end)
        for key, data in found:
            log.warning("actor %s: replaying a commit interrupted by a crash", actor_id)
            intent = layout.decode_record(layout.Intent, data)
            if layout.int8(intent.seq) != key[len(layout.INTENT) :]:
                raise StorageError(f"actor {actor_id}: the intent at {key!r} is damaged")
            await self._apply_intent(kv, actor_id, intent)

    # -- reads ----------------------------------------------------------------------

    async def load_state(self, actor_id: str) -> StoredState:
        kv = self._client()
        if actor_id not in self._hosted:
            return StoredState(0, None, False)
        prefetched = self._prefetched.pop(actor_id, None)
        if prefetched is not None:
            return prefetched
        return await self._read_state(kv, actor_id)

    async def _read_state(self, kv: EngineKV, actor_id: str) -> StoredState:
        """Read the actor's record, seq, snapshot and history floor (one request) and
        cache the record and floor."""
        await self._recover(actor_id)
        values = await read_values(
            kv, actor_id, [layout.ACTOR_KEY, layout.SEQ_KEY, layout.STATE_KEY, layout.FLOOR_KEY]
        )
        record_data, seq_data, snapshot, floor_data = values
        record = None if record_data is None else layout.decode_record(ActorRecord, record_data)
        if record is not None and actor_id in self._hosted:
            self._records[actor_id] = record
        if floor_data is not None:
            self._floor[actor_id] = layout.parse_int8(floor_data)
        seq = 0 if seq_data is None else layout.parse_int8(seq_data)
        initialized = record is not None and record.initialized
        return StoredState(seq, snapshot, initialized)

    async def kv_get(self, actor_id: str, key: bytes) -> bytes | None:
        return (await self.kv_get_batch(actor_id, [key]))[0]

    async def kv_get_batch(self, actor_id: str, keys: Sequence[bytes]) -> list[bytes | None]:
        kv = self._client()
        if not keys or actor_id not in self._hosted:
            return [None] * len(keys)
        await self._recover(actor_id)
        return await read_values(kv, actor_id, [layout.KV + key for key in keys])

    async def kv_list(
        self, actor_id: str, prefix: bytes, limit: int | None = None
    ) -> list[tuple[bytes, bytes]]:
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
        kv = self._client()
        if actor_id not in self._hosted or (limit is not None and limit <= 0):
            return []
        await self._recover(actor_id)
        upper = layout.space_end(layout.KV) if end is None else layout.KV + end
        found = await read_range(
            kv, actor_id, layout.KV + start, upper, reverse=reverse, limit=limit
        )
        return [(key[1:], value) for key, value in found]

    async def load_queue(self, actor_id: str) -> StoredQueue:
        kv = self._client()
        if actor_id not in self._hosted:
            return StoredQueue(0, [])
        await self._recover(actor_id)
        last, found = await asyncio.gather(
            read_values(kv, actor_id, [layout.QUEUE_LAST_KEY]),
            read_range(kv, actor_id, layout.QUEUE, layout.space_end(layout.QUEUE)),
        )
        messages = [layout.decode_record(QueueMessageRecord, data) for _, data in found]
        last_id = 0 if last[0] is None else layout.parse_int8(last[0])
        return StoredQueue(max([last_id, *(m.id for m in messages)]), messages)

    async def load_workflow(self, actor_id: str) -> dict[str, bytes]:
        kv = self._client()
        if actor_id not in self._hosted:
            return {}
        await self._recover(actor_id)
        found = await read_range(kv, actor_id, layout.WORKFLOW, layout.space_end(layout.WORKFLOW))
        return {key[1:].decode(): value for key, value in found}

    async def list_alarms(self, actor_id: str | None = None) -> list[AlarmRecord]:
        """Alarms of one hosted actor, or of every actor hosted here."""
        self._check_open()
        owners = sorted(self._hosted) if actor_id is None else [actor_id]
        owners = [owner for owner in owners if owner in self._hosted]
        if not owners:
            return []
        kv = self._client()
        for owner in owners:
            await self._recover(owner)
        lists = await asyncio.gather(
            *(read_range(kv, o, layout.ALARM, layout.space_end(layout.ALARM)) for o in owners)
        )
        alarms = [layout.decode_record(AlarmRecord, data) for found in lists for _, data in found]
        alarms.sort(key=lambda a: (a.fire_at_ms, a.alarm_id))
        return alarms

    async def read_history(
        self, actor_id: str, after_seq: int = 0, limit: int | None = None
    ) -> list[HistoryEntry]:
        kv = self._client()
        if actor_id not in self._hosted or (limit is not None and limit <= 0):
            return []
        await self._recover(actor_id)
        floor = self._floor.get(actor_id)
        if floor is None:
            floor_data = (await read_values(kv, actor_id, [layout.FLOOR_KEY]))[0]
            floor = 0 if floor_data is None else layout.parse_int8(floor_data)
            self._floor[actor_id] = floor
        start = layout.HISTORY + layout.int8(max(after_seq + 1, floor))
        found = await read_range(kv, actor_id, start, layout.space_end(layout.HISTORY), limit=limit)
        return [layout.decode_record(HistoryEntry, data) for _, data in found]
