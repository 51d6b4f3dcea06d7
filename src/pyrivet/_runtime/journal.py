"""`Journal`: one actor's durability pipeline, from a change to its release.

Every awake actor has one journal (``ActorInstance.journal``). It is the only owner of:

* the seq and the snapshot of the latest *submitted* commit (what change detection
  compares with);
* the commits not durable yet (`InFlight`: their latest ticket, and the latest durable
  seq and snapshot a failure rolls back to);
* the pending writes (`PendingWrites`): KV operations, schedule changes and
  contributions of other components not submitted yet, the events emitted since the
  last commit, and the gated outputs of submitted commits.

The flow, all on the event loop and never awaiting:

1. Actor code stages writes (`stage_kv`, `stage_alarm_put`, `emit`, `contribute`, ...).
2. `checkpoint` (end of an action in strict mode, `soon` for changes outside actions,
   the relaxed save timer) encodes the state, builds one `CommitRecord` of the state
   and everything staged, and submits it to the committer with this journal as its
   `CommitListener`.
3. The committer calls `committed` (release the gated events, mirror the alarms,
   forget what is durable) or `failed` (roll back to the last durable state and drop
   everything pending) directly, before the ticket resolves.

Another component adds its own records to the next commit with `contribute`: a
`Contribution` writes into the record when the commit is built and hears whether it
became durable. The workflow host's flush, the hottest such writer, passes its records
to `checkpoint` instead (``workflow=``) and reads their outcome from the commit's ticket.

Memory: the journal is always present, so it is kept to six slots (the owner, seq,
snapshot, the hold count, and two pointers that are None while nothing is pending): 80
bytes per awake actor. The hold count is here, not in `PendingWrites`, so that a
workflow step that stages nothing (its state and history ride in the commit it forces)
makes no `PendingWrites`. `InFlight` exists only while a commit is not durable and
`PendingWrites` only while something is staged or gated, so an idle actor carries
neither.

What the journal needs of its actor is the `JournalOwner` Protocol (implemented by
`ActorInstance`): the journal never imports the instance.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NoReturn, Protocol

from .._codec.values import encode_unchecked
from .._util.spares import Spares
from ..actor._definition import ActorDefinition
from ..errors import ActorStoppingError, EncodingError
from ..storage._base import ActorRecord, AlarmRecord, CommitRecord, HistoryEntry
from .committer import CommitListener, CommitTicket
from .lifecycle import Lifecycle
from .services import Services
from .watcher import Watcher
from .writes import TOMBSTONE, Contribution, Gated, Outgoing, PendingWrites

__all__ = ["InFlight", "Journal", "JournalOwner", "WorkflowWrites", "prune_history_before"]

log = logging.getLogger("pyrivet.actor")

#: Workflow records a commit carries: ``(puts as (key, value), deleted keys)``.
WorkflowWrites = tuple[tuple[tuple[str, bytes], ...], tuple[str, ...]]


def prune_history_before(seq: int, history_limit: int | None) -> int | None:
    """The ``CommitRecord.prune_history_before`` of commit ``seq``: None to prune nothing.

    Every commit past the limit carries the bound, so the log never holds more than
    ``history_limit`` entries; drivers make that cheap (the SQLite log stores the bound
    on the log row it writes anyway, see ``storage/_sqlite_compaction.py``).
    """
    if history_limit is not None and seq > history_limit:
        return seq - history_limit + 1
    return None


class JournalOwner(Protocol):
    """What a journal needs of its actor."""

    __slots__ = ()

    actor_id: str
    definition: ActorDefinition[Any]
    svc: Services
    state: Any
    #: The live inspector watching the actor; None while nobody watches.
    watcher: Watcher | None

    @property
    def name(self) -> str: ...

    def accepts_saves(self) -> bool:
        """Whether a deferred checkpoint may still run (running or stopping)."""
        ...

    @property
    def log_fields(self) -> dict[str, Any]:
        """``extra`` for log records about this actor: actor, actor_key, actor_id."""
        ...

    def lifecycle(self) -> Lifecycle:
        """The lifecycle part (created on demand): holds the relaxed save timer."""
        ...

    def deliver(self, outgoing: Outgoing) -> None:
        """Hand a released event to its recipients."""
        ...

    def state_changed(self, snapshot: bytes) -> None:
        """A commit carrying a new snapshot was submitted: run ``on_state_change``
        (called only when the definition has that hook)."""
        ...


#: `InFlight` objects given back (`InFlight.recycle`).
_SPARES: Spares[InFlight] = Spares(64)


class InFlight:
    """A journal's commits that are not durable yet."""

    __slots__ = ("durable_seq", "durable_state", "ticket")

    def __init__(self, durable_seq: int, durable_state: bytes | None) -> None:
        #: The latest durable commit: what a failed commit rolls back to.
        self.durable_seq = durable_seq
        self.durable_state = durable_state
        #: The ticket of the latest submitted commit (the output gate waits for it).
        self.ticket: CommitTicket | None = None

    @staticmethod
    def take(durable_seq: int, durable_state: bytes | None) -> InFlight:
        """A spare instance set to these values, else a new one: an actor that commits
        and waits (a workflow step) makes and drops one per commit, alive across a loop
        turn, which is work for the collector."""
        inflight = _SPARES.take()
        if inflight is None:
            return InFlight(durable_seq, durable_state)
        inflight.durable_seq = durable_seq
        inflight.durable_state = durable_state
        return inflight

    def recycle(self) -> None:
        """Give back this instance, referenced by nobody else."""
        self.durable_state = None
        self.ticket = None
        _SPARES.give_back(self)


class Journal(CommitListener):
    """One actor's durability pipeline; see the module docstring."""

    __slots__ = ("_inflight", "_owner", "_writes", "held", "saved_state", "seq")

    def __init__(self, owner: JournalOwner) -> None:
        self._owner = owner
        #: The seq of the latest submitted commit.
        self.seq = 0
        #: The snapshot of the latest submitted commit.
        self.saved_state: bytes | None = None
        #: How many holds are on (a workflow step body runs): checkpoints wait. Here,
        #: not in `PendingWrites`, so a step that stages nothing makes none.
        self.held = 0
        self._inflight: InFlight | None = None
        self._writes: PendingWrites | None = None

    def restore(self, seq: int, snapshot: bytes | None) -> None:
        """Start from a durable ``(seq, snapshot)`` read from storage (a wake)."""
        self.seq = seq
        self.saved_state = snapshot

    # -- reading -------------------------------------------------------------------

    @property
    def owner(self) -> JournalOwner:
        return self._owner

    @property
    def last_commit(self) -> CommitTicket | None:
        """The ticket of the latest submitted commit while any commit is not durable."""
        inflight = self._inflight
        return None if inflight is None else inflight.ticket

    @property
    def durable_seq(self) -> int:
        """The seq of the latest durable commit."""
        inflight = self._inflight
        return self.seq if inflight is None else inflight.durable_seq

    @property
    def durable_state(self) -> bytes | None:
        """The snapshot of the latest durable commit (what a rollback restores)."""
        inflight = self._inflight
        return self.saved_state if inflight is None else inflight.durable_state

    @property
    def idle(self) -> bool:
        """Nothing is held, staged, gated or in flight."""
        return self._inflight is None and self._writes is None and not self.held

    @property
    def pending(self) -> PendingWrites | None:
        """The pending writes, or None when nothing is staged or gated (read only)."""
        return self._writes

    def gate_ticket(self) -> CommitTicket | None:
        """What the output gate waits for: the latest commit while it is not durable, in
        strict mode (or the commit that will end a hold); None when replies may go out now."""
        inflight = self._inflight
        if inflight is None:
            writes = self._writes
            return None if writes is None else writes.deferred
        last = inflight.ticket
        if last is None or last.done() or self._owner.definition.options.durability != "strict":
            return None
        return last

    def kv_lookup(self, key: bytes) -> tuple[bool, Any]:
        """(found, value) from the not-yet-durable KV writes; value None if deleted."""
        writes = self._writes
        return (False, None) if writes is None else writes.kv_lookup(key)

    # -- staging -------------------------------------------------------------------

    def _staging(self) -> PendingWrites:
        writes = self._writes
        if writes is None:
            writes = self._writes = PendingWrites.take()
        return writes

    def stage_kv(self, key: bytes, value: bytes | None) -> None:
        """Put (``value`` bytes) or delete (None) a KV key in the next commit."""
        writes = self._staging()
        writes.kv_ops.append((key, value))
        writes.kv_overlay[key] = (None, TOMBSTONE if value is None else value)
        self.soon()

    def stage_kv_delete_range(self, start: bytes, end: bytes) -> None:
        """Delete every KV key in ``[start, end)`` (``start < end``) in the next commit."""
        self._staging().stage_kv_delete_range(start, end)
        self.soon()

    def stage_alarm_put(self, alarm: AlarmRecord, *, schedule: bool = True) -> None:
        """Store (or replace) a schedule in the next commit.

        ``schedule=False``: the caller checkpoints right after this call (the workflow
        host's flush, an actor's creation), so no save is queued for the next loop
        iteration (a callback the checkpoint would only cancel: two per workflow).
        """
        writes = self._staging()
        writes.alarm_deletes.discard(alarm.alarm_id)
        writes.alarm_puts[alarm.alarm_id] = alarm
        if schedule:
            self.soon()

    def stage_alarm_delete(self, alarm_id: str, *, schedule: bool = True) -> None:
        """Delete a schedule in the next commit (``schedule``: as `stage_alarm_put`)."""
        writes = self._staging()
        writes.alarm_puts.pop(alarm_id, None)
        writes.alarm_deletes.add(alarm_id)
        if schedule:
            self.soon()

    def hold(self) -> None:
        """Hold checkpoints: a workflow step body is about to run.

        Until `release`, the working state may hold half a step; committing it (at the
        end of an action that interleaved, or a save) could make a crash keep half a step
        whose re-run then applies it again. Checkpoints asked for meanwhile are deferred
        (their callers wait for the commit made at `release`); the workflow's flush
        commits with ``force=True``.
        """
        self.held += 1

    def release(self, *, discard: bool = False) -> None:
        """End a `hold`; commit what was deferred.

        ``discard``: the step was interrupted before its flush (the actor is stopping):
        its half-done changes, and those of work that ran during the hold and was
        waiting for this commit, are rolled back to the last submitted state instead.
        """
        if not self.held:
            return
        self.held -= 1
        writes = self._writes
        if self.held or writes is None:
            return
        deferred, writes.deferred = writes.deferred, None
        if discard:
            reason = ActorStoppingError(
                f"actor {self._owner.name!r} stopped during a workflow step; the changes "
                "made meanwhile were not saved"
            )
            self.rollback(to_durable=False, reason=reason)
            if deferred is not None:
                deferred.resolve(reason)
            return
        if deferred is None:
            self._drop_writes_if_empty()
            return
        try:
            ticket = self.checkpoint("save") or self.last_commit
        except EncodingError as exc:
            deferred.resolve(exc)
            return
        if ticket is None:
            deferred.resolve()  # everything the deferred work changed is durable already
        else:  # called at once if that commit already settled
            ticket.add_done_callback(lambda done: deferred.resolve(done.exception()))
        self._drop_writes_if_empty()

    def contribute(self, contribution: Contribution, *, schedule: bool = True) -> None:
        """Add another component's writes to this actor's next commit.

        ``contribution.write`` runs when that commit is built (at the end of the current
        action in strict mode, else at the next save), ``contribution.settled`` once it
        is durable or failed. The commit is made even if nothing else changed: at the
        next loop iteration, or (``schedule=False``) by the caller's own `checkpoint`
        right after this call.
        """
        self._staging().contributions.append(contribution)
        if schedule:
            self.soon()

    def emit(self, outgoing: Outgoing) -> None:
        """Send an event: at once in relaxed mode; in strict mode behind the commit that
        covers the changes made so far (the output gate).

        That commit is made at the next loop iteration (`soon`), or, during a
        synchronous action of this actor (`Services.sync_actor`), by the action's own
        checkpoint at its end, which comes first (a callback it would only cancel).
        """
        owner = self._owner
        if owner.definition.options.durability != "strict":
            owner.deliver(outgoing)
            return
        self._staging().outbox.append(outgoing)
        if owner.svc.sync_actor is not owner:
            self.soon()

    def soon(self) -> None:
        """Checkpoint at the next loop iteration (for changes made outside actions)."""
        writes = self._staging()
        if writes.soon is None:
            writes.soon = self._owner.svc.committer.running_loop().call_soon(self._soon)

    def _soon(self) -> None:
        writes = self._writes
        if writes is not None:
            writes.soon = None
        if not self._owner.accepts_saves():
            return
        try:
            self.end_of_work("save")
        except EncodingError as exc:
            log.error(
                "actor %s (%s): %s",
                self._owner.name,
                self._owner.actor_id,
                exc.message,
                extra=self._owner.log_fields,
            )
        self._drop_writes_if_empty()

    def end_of_work(
        self, kind: str, name: str | None = None, args: bytes | None = None, by: str | None = None
    ) -> None:
        """A unit of work ended: checkpoint it (strict) or schedule a save (relaxed).

        Raises:
            EncodingError: strict mode, and the state cannot be saved (it is rolled back).
        """
        if self._owner.definition.options.durability == "strict":
            self.checkpoint(kind, name=name, args=args, by=by)
        else:
            self.request_save()

    def request_save(self) -> None:
        """Relaxed durability: save at most once per ``state_save_interval``."""
        owner = self._owner
        life = owner.lifecycle()
        if life.save_timer is not None:
            return
        clock = owner.svc.clock
        interval = owner.definition.options.state_save_interval
        if life.last_save == float("-inf"):
            # The first save after a start waits a full interval (the start was a save).
            delay = interval
        else:
            delay = max(0.0, life.last_save + interval - clock.monotonic())

        def fire() -> None:
            life.save_timer = None
            life.last_save = clock.monotonic()
            try:
                self.checkpoint("save")
            except EncodingError as exc:
                log.error(
                    "actor %s (%s): %s",
                    owner.name,
                    owner.actor_id,
                    exc.message,
                    extra=owner.log_fields,
                )

        life.save_timer = clock.call_later(delay, fire)

    # -- building and submitting a commit ------------------------------------------

    def _state_too_large(self, size: int) -> NoReturn:
        """Roll back a state of ``size`` bytes, above ``max_state_size``, and raise
        `EncodingError` saying so."""
        d = self._owner.definition
        error = EncodingError(
            f"actor {d.name!r}: the state is {size} bytes, above max_state_size "
            f"({d.options.max_state_size}); the change was rolled back. Keep large data "
            "in c.kv or raise ActorOptions.max_state_size"
        )
        self.rollback(to_durable=False, reason=error)
        raise error

    def checkpoint(
        self,
        kind: str,
        *,
        name: str | None = None,
        args: bytes | None = None,
        by: str | None = None,
        create: ActorRecord | None = None,
        force: bool = False,
        workflow: WorkflowWrites | None = None,
        lazy: bool = False,
    ) -> CommitTicket | None:
        """Submit the actor's changes since the last checkpoint; None if there were none.

        During a `hold` nothing is submitted (unless ``force``: the workflow's own flush)
        and the ticket returned resolves with the commit made when the hold ends.
        ``workflow``: workflow records ``(puts, deletes)`` this commit carries (the
        workflow host's flush; its ticket tells their outcome, so they need no
        `Contribution`). ``lazy`` (always with ``workflow``): the caller calls
        `Committer.flush_owed` right after, whether this raised or not (see
        `Committer.submit`).

        Raises:
            EncodingError: the state cannot be encoded or is too large; the in-memory
                state is rolled back to the last submitted snapshot.
        """
        writes = self._writes
        if writes is not None and writes.soon is not None:
            writes.soon.cancel()
            writes.soon = None
        if self.held and not force:
            writes = self._staging()
            if writes.deferred is None:
                writes.deferred = CommitTicket(self)
            return writes.deferred
        owner = self._owner
        d = owner.definition
        snapshot: bytes | None = None
        if d.has_state:
            try:
                encoded = d.state_codec.encode(owner.state, "the state")
            except EncodingError as exc:
                self.rollback(to_durable=False, reason=exc)
                raise
            if len(encoded) > d.options.max_state_size:
                self._state_too_large(len(encoded))
            snapshot = encoded
        changed = snapshot is not None and snapshot != self.saved_state
        has_ops = (writes is not None and writes.has_unsubmitted()) or workflow is not None
        if not changed and not has_ops and create is None:
            if writes is not None and writes.outbox:
                self._gate_events_behind_last_commit(writes)
            return None

        inflight = self._inflight
        if inflight is None:
            # Everything submitted so far is durable: that is the point to roll back to.
            # (`InFlight.take` written out: once per commit of an actor that waits.)
            try:  # one `pop`: runtimes on other threads share the spares
                inflight = _SPARES.items.pop()
            except IndexError:
                inflight = InFlight(self.seq, self.saved_state)
            else:
                inflight.durable_seq = self.seq
                inflight.durable_state = self.saved_state
            self._inflight = inflight
        self.seq += 1
        seq = self.seq
        # Positional: a msgspec Struct matches keyword arguments by name.
        record = CommitRecord(owner.actor_id, seq, create, snapshot if changed else None,
                              create is not None)  # fmt: skip
        if changed:
            self.saved_state = snapshot
        ops: list[Any] = []
        gated: Gated | None = None
        if writes is not None:
            gated = _move_staged(writes, record, ops, seq)
        if workflow is not None:
            puts, deletes = workflow
            if deletes or record.workflow_puts:
                _add_workflow_writes(record, ops, workflow)
            else:  # a step's flush: its puts alone (`_add_workflow_writes`, written out)
                record.workflow_puts = puts
                for key, _ in puts:
                    ops.append(("workflow.put", key))
        record.event = HistoryEntry(
            owner.actor_id,
            seq,
            int(owner.svc.clock.now() * 1000),  # `Services.now_ms`, written out
            kind,
            name,
            by,
            args,
            record.state,
            encode_unchecked(ops) if ops else None,  # plain tuples: cannot fail
        )
        limit = owner.definition.options.history_limit
        if limit is not None and seq > limit:  # `prune_history_before`, inline
            record.prune_history_before = seq - limit + 1
        if owner.definition.has_db:
            # The actor's SQL database commits first (see actor_db.py); raises if it cannot.
            owner.svc.dbs.before_submit(owner.actor_id, record, self.durable_seq)
        # A workflow flush and a strict action call `Committer.flush_owed` next.
        ticket = owner.svc.committer.submit(record, self, lazy=lazy or workflow is not None)
        inflight.ticket = ticket
        if gated is not None:
            # `gated` is only made when `writes` exists.
            assert writes is not None
            writes.gated.append(gated)
        if changed and "on_state_change" in owner.definition.hooks:
            assert snapshot is not None
            owner.state_changed(snapshot)
        return ticket

    def _gate_events_behind_last_commit(self, writes: PendingWrites) -> None:
        """Events with no change of their own still wait for earlier changes to be durable."""
        events, writes.outbox = writes.outbox, []
        last = self.last_commit
        if last is None or last.done():
            for event in events:
                self._owner.deliver(event)
            self._drop_writes_if_empty()
            return
        writes.gated.append(Gated(self.seq, events, (), ()))

    # -- the committer's side (CommitListener) -------------------------------------

    def committed(self, record: CommitRecord) -> None:
        """``record`` is durable: advance, mirror its alarms, release its gated outputs,
        tell a live inspector (if one watches)."""
        owner = self._owner
        if record.alarm_puts or record.alarm_deletes:
            owner.svc.alarms.apply(record)
        if owner.watcher is not None:
            owner.watcher.committed(record)
        inflight = self._inflight
        if inflight is not None:
            if record.seq == self.seq:
                # Everything submitted is durable: an idle actor keeps no ticket (its
                # waiters hold their own references) and no second snapshot.
                self._inflight = None
                # `InFlight.recycle` written out, as `take` is in `checkpoint`.
                inflight.durable_state = inflight.ticket = None
                spares = _SPARES.items
                if len(spares) < _SPARES.limit:
                    spares.append(inflight)
            else:
                inflight.durable_seq = record.seq
                if record.state is not None:
                    inflight.durable_state = record.state
        writes = self._writes
        if writes is None:
            return
        writes.forget_durable(record.seq)
        while writes.gated and writes.gated[0].seq <= record.seq:
            gated = writes.gated.popleft()
            for event in gated.events:
                self._owner.deliver(event)
            if gated.contributions:
                _settle(gated.contributions, None)
        self._drop_writes_if_empty()

    def failed(self, record: CommitRecord, exc: BaseException) -> None:
        """The write of ``record`` failed: roll back to the last durable state."""
        owner = self._owner
        log.error(
            "actor %s (%s): commit %d failed: %s",
            owner.name,
            owner.actor_id,
            record.seq,
            exc,
            extra=owner.log_fields,
        )
        self.rollback(to_durable=True, reason=exc)

    def rollback(self, *, to_durable: bool, reason: BaseException) -> None:
        """Undo changes that cannot be saved.

        ``to_durable=False`` (the state could not be encoded): restore the last
        *submitted* snapshot and drop the writes not submitted yet; commits in flight stay.
        ``to_durable=True`` (a commit failed; later ones of this actor failed with it):
        restore the last *durable* snapshot and drop everything pending and gated.
        Dropped contributions hear ``reason``.
        """
        owner = self._owner
        d = owner.definition
        snapshot = self.durable_state if to_durable else self.saved_state
        if snapshot is not None:
            owner.state = d.state_codec.decode(snapshot)
        elif d.initial_state is not None and self.durable_seq == 0:
            owner.state = d.state_codec.decode(d.initial_state)
        writes = self._writes
        if to_durable:
            self.seq = self.durable_seq
            self.saved_state = self.durable_state
            self._inflight = None
            if writes is not None:
                dropped = list(writes.contributions)
                for gated in writes.gated:
                    dropped.extend(gated.contributions or ())
                old = writes
                writes = self._writes = PendingWrites()
                writes.soon = old.soon
                writes.deferred = old.deferred
                _settle(dropped, reason)
        elif writes is not None:
            dropped = writes.contributions
            writes.drop_unsubmitted_kv()
            writes.alarm_puts = {}
            writes.alarm_deletes = set()
            writes.outbox = []
            writes.contributions = []
            _settle(dropped, reason)
        self._drop_writes_if_empty()

    def _drop_writes_if_empty(self) -> None:
        writes = self._writes
        if writes is not None and writes.is_empty():
            self._writes = None
            writes.recycle()


def _move_staged(
    writes: PendingWrites, record: CommitRecord, ops: list[Any], seq: int
) -> Gated | None:
    """Move the staged writes into ``record`` (describing each in ``ops``); return the
    outputs to release once it is durable, or None if there are none."""
    if writes.kv_ops or writes.kv_range_ops:
        writes.move_kv(record, ops, seq)
    # Empty tuples, not lists, when there is nothing: a commit's `Gated` lives until the
    # commit is durable, and every container alive then is work for the collector.
    alarm_puts: Sequence[AlarmRecord] = ()
    alarm_deletes: Sequence[str] = ()
    if writes.alarm_puts:
        record.alarm_puts = alarm_puts = list(writes.alarm_puts.values())
        ops.extend(("alarm.put", a.alarm_id, a.fire_at_ms, a.action) for a in alarm_puts)
        writes.alarm_puts = {}
    if writes.alarm_deletes:
        record.alarm_deletes = alarm_deletes = sorted(writes.alarm_deletes)
        ops.extend(("alarm.delete", alarm_id) for alarm_id in alarm_deletes)
        writes.alarm_deletes = set()
    contributions: list[Contribution] | None = None
    if writes.contributions:
        contributions, writes.contributions = writes.contributions, []
        for contribution in contributions:
            try:
                contribution.write(record, ops)
            except Exception:
                log.exception("commit contribution %r failed to write", contribution)
    events: Sequence[Outgoing] = ()
    if writes.outbox:
        events, writes.outbox = writes.outbox, []
    if events or alarm_puts or alarm_deletes or contributions:
        return Gated(seq, events, alarm_puts, alarm_deletes, contributions)
    return None


def _add_workflow_writes(record: CommitRecord, ops: list[Any], workflow: WorkflowWrites) -> None:
    """Add workflow records to ``record`` (after anything a contribution put there)."""
    puts, deletes = workflow
    if puts:
        record.workflow_puts = record.workflow_puts + puts if record.workflow_puts else puts
        for key, _ in puts:
            ops.append(("workflow.put", key))
    if deletes:
        record.workflow_deletes = (*record.workflow_deletes, *deletes)
        ops.extend([("workflow.delete", key) for key in deletes])


def _settle(contributions: list[Contribution], error: BaseException | None) -> None:
    for contribution in contributions:
        try:
            contribution.settled(error)
        except Exception:
            log.exception("commit contribution %r failed to settle", contribution)
