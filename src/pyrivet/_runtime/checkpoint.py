"""Checkpoints: turning an actor's changes into a commit record, and what follows it.

A checkpoint encodes the state, compares it with the last submitted snapshot (so an
action that changed nothing writes nothing), gathers pending KV and schedule changes
and the events emitted so far, and submits one `CommitRecord` to the committer.

The events and alarm changes of that record are *gated*: released only when the
committer reports the record durable (`committed`). If the write fails (`failed`), the
instance rolls back to its last durable state and every gated output is dropped.

All functions run on the event loop and never await.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .._codec.values import encode
from ..errors import EncodingError
from ..storage._base import ActorRecord, CommitRecord, HistoryEntry
from .writes import TOMBSTONE, Gated, PendingWrites

if TYPE_CHECKING:
    from .committer import CommitTicket
    from .instance import ActorInstance

__all__ = ["InFlight", "checkpoint", "checkpoint_soon", "committed", "failed", "request_save"]

log = logging.getLogger("pyrivet.actor")


class InFlight:
    """An instance's commits that are not durable yet (``ActorInstance.inflight``)."""

    __slots__ = ("durable_seq", "durable_state", "ticket")

    def __init__(self, durable_seq: int, durable_state: bytes | None) -> None:
        #: The latest durable commit: what a failed commit rolls back to.
        self.durable_seq = durable_seq
        self.durable_state = durable_state
        #: The ticket of the latest submitted commit (the output gate waits for it).
        self.ticket: CommitTicket | None = None


def _encode_state(inst: ActorInstance) -> bytes | None:
    d = inst.definition
    if not d.has_state:
        return None
    try:
        snapshot = d.state_codec.encode(inst.state, "the state")
    except EncodingError:
        rollback(inst, to_durable=False)
        raise
    if len(snapshot) > d.options.max_state_size:
        rollback(inst, to_durable=False)
        raise EncodingError(
            f"actor {d.name!r}: the state is {len(snapshot)} bytes, above max_state_size "
            f"({d.options.max_state_size}); the change was rolled back. Keep large data in "
            "c.kv or raise ActorOptions.max_state_size"
        )
    return snapshot


def checkpoint(
    inst: ActorInstance,
    kind: str,
    *,
    name: str | None = None,
    args: bytes | None = None,
    by: str | None = None,
    create: ActorRecord | None = None,
) -> CommitTicket | None:
    """Submit the actor's changes since the last checkpoint; None if there were none.

    Raises:
        EncodingError: the state cannot be encoded or is too large; the in-memory state
            is rolled back to the last durable snapshot.
    """
    writes = inst.writes
    if writes is not None and writes.soon is not None:
        writes.soon.cancel()
        writes.soon = None
    snapshot = _encode_state(inst)
    changed = snapshot is not None and snapshot != inst.saved_state
    has_ops = writes is not None and writes.has_unsubmitted()
    if not changed and not has_ops and create is None:
        if writes is not None and writes.outbox:
            _gate_events_behind_last_commit(inst, writes)
        return None

    inflight = inst.inflight
    if inflight is None:
        # Everything submitted so far is durable: that is the point to roll back to.
        inflight = inst.inflight = InFlight(inst.seq, inst.saved_state)
    inst.seq += 1
    seq = inst.seq
    record = CommitRecord(inst.actor_id, seq, create=create, initialized=create is not None)
    if changed:
        record.state = snapshot
        inst.saved_state = snapshot
    ops: list[Any] = []
    events: list[Any] = []
    alarm_puts: list[Any] = []
    alarm_deletes: list[str] = []
    if writes is not None:
        if writes.kv_ops:
            for key, value in writes.kv_ops:
                if value is None:
                    record.kv_deletes.append(key)
                    ops.append(("kv.delete", key))
                else:
                    record.kv_puts.append((key, value))
                    ops.append(("kv.put", key, value))
            writes.kv_ops = []
            writes.mark_submitted(seq)
        if writes.alarm_puts:
            alarm_puts = list(writes.alarm_puts.values())
            record.alarm_puts = alarm_puts
            ops.extend(("alarm.put", a.alarm_id, a.fire_at_ms, a.action) for a in alarm_puts)
            writes.alarm_puts = {}
        if writes.alarm_deletes:
            alarm_deletes = sorted(writes.alarm_deletes)
            record.alarm_deletes = alarm_deletes
            ops.extend(("alarm.delete", alarm_id) for alarm_id in alarm_deletes)
            writes.alarm_deletes = set()
        events, writes.outbox = writes.outbox, []
    record.event = HistoryEntry(
        inst.actor_id,
        seq,
        inst.svc.now_ms(),
        kind,
        name,
        by,
        args,
        record.state,
        encode(ops) if ops else None,
    )
    limit = inst.definition.options.history_limit
    if limit is not None and seq > limit:
        record.prune_history_before = seq - limit + 1
    future = inst.svc.committer.submit(record)
    inflight.ticket = future
    if events or alarm_puts or alarm_deletes:
        if writes is None:
            writes = inst.writes = PendingWrites()
        writes.gated.append(Gated(seq, events, alarm_puts, alarm_deletes))
    if changed:
        hook = inst.definition.hooks.get("on_state_change")
        if hook is not None:
            _call_on_state_change(inst, hook, snapshot)
    return future


def _gate_events_behind_last_commit(inst: ActorInstance, writes: PendingWrites) -> None:
    """Events with no change of their own still wait for earlier changes to be durable."""
    events, writes.outbox = writes.outbox, []
    last = inst.last_commit
    if last is None or last.done():
        from .connections import deliver

        for event in events:
            deliver(inst, event)
        _drop_writes_if_empty(inst)
        return
    writes.gated.append(Gated(inst.seq, events, [], []))


def _call_on_state_change(inst: ActorInstance, hook: Any, snapshot: bytes | None) -> None:
    try:
        result = hook(inst.context(), inst.state)
        if asyncio.iscoroutine(result):
            result.close()
            log.error(
                "actor %s: on_state_change must be a plain function; its coroutine was not run",
                inst.name,
            )
    except Exception:
        log.exception("actor %s (%s): on_state_change failed", inst.name, inst.actor_id)
    if snapshot is not None and inst.definition.state_codec.encode(inst.state) != snapshot:
        log.error(
            "actor %s (%s): on_state_change changed the state; that change was "
            "reverted (update state in actions, not in on_state_change)",
            inst.name,
            inst.actor_id,
        )
        inst.state = inst.definition.state_codec.decode(snapshot)


def checkpoint_soon(inst: ActorInstance) -> None:
    """Checkpoint at the next loop iteration (for changes made outside actions)."""
    writes = inst.writes
    if writes is None:
        writes = inst.writes = PendingWrites()
    if writes.soon is None:
        writes.soon = asyncio.get_running_loop().call_soon(_soon, inst)


def _soon(inst: ActorInstance) -> None:
    writes = inst.writes
    if writes is not None:
        writes.soon = None
    if inst.status.value not in ("running", "stopping"):
        return
    try:
        if inst.definition.options.durability == "strict":
            checkpoint(inst, "save")
        else:
            request_save(inst)
    except EncodingError as exc:
        log.error("actor %s (%s): %s", inst.name, inst.actor_id, exc.message)
    _drop_writes_if_empty(inst)


def request_save(inst: ActorInstance) -> None:
    """Relaxed durability: save at most once per ``state_save_interval``."""
    life = inst.lifecycle()
    if life.save_timer is not None:
        return
    clock = inst.svc.clock
    interval = inst.definition.options.state_save_interval
    if life.last_save == float("-inf"):
        # The first save after a start waits a full interval (the start was a save).
        delay = interval
    else:
        delay = max(0.0, life.last_save + interval - clock.monotonic())

    def fire() -> None:
        life.save_timer = None
        life.last_save = clock.monotonic()
        try:
            checkpoint(inst, "save")
        except EncodingError as exc:
            log.error("actor %s (%s): %s", inst.name, inst.actor_id, exc.message)

    life.save_timer = clock.call_later(delay, fire)


def committed(inst: ActorInstance, record: CommitRecord) -> None:
    """The committer made ``record`` durable: advance, then release its gated outputs."""
    inflight = inst.inflight
    if inflight is not None:
        if record.seq == inst.seq:
            # Everything submitted is durable: an idle actor keeps no ticket (its
            # waiters hold their own references) and no second snapshot.
            inst.inflight = None
        else:
            inflight.durable_seq = record.seq
            if record.state is not None:
                inflight.durable_state = record.state
    writes = inst.writes
    if writes is None:
        return
    writes.forget_durable(record.seq)
    if writes.gated:
        from .connections import deliver

        while writes.gated and writes.gated[0].seq <= record.seq:
            gated = writes.gated.popleft()
            for event in gated.events:
                deliver(inst, event)
    _drop_writes_if_empty(inst)


def failed(inst: ActorInstance, record: CommitRecord, exc: BaseException) -> None:
    """The write of ``record`` failed: roll back to the last durable state."""
    log.error("actor %s (%s): commit %d failed: %s", inst.name, inst.actor_id, record.seq, exc)
    rollback(inst, to_durable=True)


def rollback(inst: ActorInstance, *, to_durable: bool) -> None:
    """Undo changes that cannot be saved.

    ``to_durable=False`` (the state could not be encoded): restore the last *submitted*
    snapshot and drop the writes not submitted yet; commits in flight stay.
    ``to_durable=True`` (a commit failed; later ones of this actor failed with it):
    restore the last *durable* snapshot and drop everything pending and gated.
    """
    d = inst.definition
    snapshot = inst.durable_state if to_durable else inst.saved_state
    if snapshot is not None:
        inst.state = d.state_codec.decode(snapshot)
    elif d.initial_state is not None and inst.durable_seq == 0:
        inst.state = d.state_codec.decode(d.initial_state)
    writes = inst.writes
    if to_durable:
        inst.seq = inst.durable_seq
        inst.saved_state = inst.durable_state
        inst.inflight = None
        if writes is not None:
            soon = writes.soon
            writes = inst.writes = PendingWrites()
            writes.soon = soon
    elif writes is not None:
        writes.kv_ops = []
        writes.kv_overlay = {k: v for k, v in writes.kv_overlay.items() if v[0] is not None}
        writes.alarm_puts = {}
        writes.alarm_deletes = set()
        writes.outbox = []
    _drop_writes_if_empty(inst)


def _drop_writes_if_empty(inst: ActorInstance) -> None:
    if inst.writes is not None and inst.writes.is_empty():
        inst.writes = None


def kv_overlay_get(inst: ActorInstance, key: bytes) -> tuple[bool, Any]:
    """(found, value) from the not-yet-durable KV writes; value None if deleted."""
    writes = inst.writes
    if writes is None:
        return (False, None)
    entry = writes.kv_overlay.get(key)
    if entry is None:
        return (False, None)
    value = entry[1]
    return (True, None if value is TOMBSTONE else value)
