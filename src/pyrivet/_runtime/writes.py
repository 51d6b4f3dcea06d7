"""Writes an actor made that are not durable yet, and outputs held behind them.

`PendingWrites` exists only while an actor has something pending (it is dropped when
everything is durable, so an idle actor carries none of this):

* KV operations and schedule changes made since the last checkpoint;
* the KV overlay, so the actor reads its own writes before they are durable;
* the outbox: events emitted since the last checkpoint;
* contributions: writes other components (workflow history) add to the next commit;
* gated outputs: events, alarm changes and contributions of submitted commits, released
  in seq order once the commit that covers them is durable (the output gate);
* a hold: while a workflow step body runs, the actor's working state may hold half a
  step, so checkpoints wait (`Journal.hold`); ``deferred`` is the ticket handed to work
  that ended meanwhile, resolved by the commit made when the hold ends.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from ..storage._base import AlarmRecord, CommitRecord
from .committer import CommitTicket

__all__ = ["TOMBSTONE", "Contribution", "Gated", "Outgoing", "PendingWrites"]

#: Overlay value meaning "deleted, not durable yet".
TOMBSTONE: Any = object()

#: An event waiting for release: (target connection or None for a broadcast, name, payload).
Outgoing = tuple[Any, str, bytes]


class Contribution(Protocol):
    """Writes another component adds to an actor's next commit (see `Journal.contribute`).

    Workflow history is the first user: its records must land in the same transaction
    as the state change of the step that produced them. Both methods run on the event
    loop and must not await or raise (an exception is logged and ignored).
    """

    __slots__ = ()

    def write(self, record: CommitRecord, ops: list[Any]) -> None:
        """Add this contribution's writes to ``record``, the commit being built.

        Append a description of each write to ``ops`` for the history entry (e.g.
        ``("workflow.put", key)``). Called once, when the journal builds the commit.
        """
        ...

    def settled(self, error: BaseException | None) -> None:
        """The commit carrying it is durable (``error`` None), or it will never be: the
        commit failed, or the writes were dropped before submission (a rollback)."""
        ...


class Gated:
    """Outputs of one submitted commit, released when ``seq`` is durable."""

    __slots__ = ("alarm_deletes", "alarm_puts", "contributions", "events", "seq")

    def __init__(
        self,
        seq: int,
        events: list[Outgoing],
        alarm_puts: list[AlarmRecord],
        alarm_deletes: list[str],
        contributions: list[Contribution] | None = None,
    ) -> None:
        self.seq = seq
        self.events = events
        self.alarm_puts = alarm_puts
        self.alarm_deletes = alarm_deletes
        self.contributions = contributions


class PendingWrites:
    """Per-actor pending writes; see the module docstring."""

    __slots__ = (
        "alarm_deletes",
        "alarm_puts",
        "contributions",
        "deferred",
        "gated",
        "held",
        "kv_ops",
        "kv_overlay",
        "outbox",
        "soon",
    )

    def __init__(self) -> None:
        self.kv_ops: list[tuple[bytes, bytes | None]] = []
        #: key -> (seq of the commit carrying it, or None if not submitted; value or TOMBSTONE)
        self.kv_overlay: dict[bytes, tuple[int | None, Any]] = {}
        self.alarm_puts: dict[str, AlarmRecord] = {}
        self.alarm_deletes: set[str] = set()
        self.outbox: list[Outgoing] = []
        self.contributions: list[Contribution] = []
        self.gated: deque[Gated] = deque()
        #: The scheduled soon-checkpoint, if any (an asyncio.Handle).
        self.soon: Any = None
        #: How many holds are on (a workflow step body runs): checkpoints wait.
        self.held = 0
        #: The ticket given out for checkpoints asked for during a hold.
        self.deferred: CommitTicket | None = None

    def has_unsubmitted(self) -> bool:
        return bool(self.kv_ops or self.alarm_puts or self.alarm_deletes or self.contributions)

    def is_empty(self) -> bool:
        return not (
            self.kv_ops
            or self.kv_overlay
            or self.alarm_puts
            or self.alarm_deletes
            or self.outbox
            or self.contributions
            or self.gated
            or self.soon
            or self.held
            or self.deferred
        )

    def mark_submitted(self, seq: int) -> None:
        """Stamp unsubmitted overlay entries with the seq of the commit now carrying them."""
        for key, (entry_seq, value) in self.kv_overlay.items():
            if entry_seq is None:
                self.kv_overlay[key] = (seq, value)

    def forget_durable(self, seq: int) -> None:
        """Drop overlay entries that are durable as of ``seq``."""
        if self.kv_overlay:
            self.kv_overlay = {
                k: v for k, v in self.kv_overlay.items() if v[0] is None or v[0] > seq
            }
