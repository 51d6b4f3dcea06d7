"""Writes an actor made that are not durable yet, and outputs held behind them.

`PendingWrites` exists only while an actor has something pending (it is dropped when
everything is durable, so an idle actor carries none of this):

* KV operations (puts, deletes, range deletes) and schedule changes made since the last
  checkpoint;
* the KV overlay, so the actor reads its own writes before they are durable: the
  latest put or delete per key, and the range deletes, each with the seq of the commit
  carrying it. Staging a range delete drops the unsubmitted entries of its range, so a
  key's entry beats a range covering it exactly when its commit is not earlier;
* the outbox: events emitted since the last checkpoint;
* contributions: writes other components (workflow history) add to the next commit;
* gated outputs: events, alarm changes and contributions of submitted commits, released
  in seq order once the commit that covers them is durable (the output gate);
* ``deferred``: while a workflow step body runs (a `Journal.hold`), checkpoints wait;
  this is the ticket handed to work that ended meanwhile, resolved by the commit made
  when the hold ends.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

from .._util.spares import Spares
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
        events: Sequence[Outgoing],
        alarm_puts: Sequence[AlarmRecord],
        alarm_deletes: Sequence[str],
        contributions: list[Contribution] | None = None,
    ) -> None:
        self.seq = seq
        self.events = events
        self.alarm_puts = alarm_puts
        self.alarm_deletes = alarm_deletes
        self.contributions = contributions


#: Empty `PendingWrites` kept for reuse (`PendingWrites.take`).
_SPARES: Spares[PendingWrites] = Spares(64)


class PendingWrites:
    """Per-actor pending writes; see the module docstring."""

    __slots__ = (
        "alarm_deletes",
        "alarm_puts",
        "contributions",
        "deferred",
        "gated",
        "kv_ops",
        "kv_overlay",
        "kv_range_ops",
        "kv_ranges",
        "outbox",
        "soon",
    )

    def __init__(self) -> None:
        self.kv_ops: list[tuple[bytes, bytes | None]] = []
        #: key -> (seq of the commit carrying it, or None if not submitted; value or TOMBSTONE)
        self.kv_overlay: dict[bytes, tuple[int | None, Any]] = {}
        #: Range deletes ``(start, end)`` not submitted yet, in order.
        self.kv_range_ops: list[tuple[bytes, bytes]] = []
        #: (seq of the commit carrying it, or None if not submitted; start; end)
        self.kv_ranges: list[tuple[int | None, bytes, bytes]] = []
        self.alarm_puts: dict[str, AlarmRecord] = {}
        self.alarm_deletes: set[str] = set()
        self.outbox: list[Outgoing] = []
        self.contributions: list[Contribution] = []
        self.gated: deque[Gated] = deque()
        #: The scheduled soon-checkpoint, if any (an asyncio.Handle).
        self.soon: Any = None
        #: The ticket given out for checkpoints asked for during a hold.
        self.deferred: CommitTicket | None = None

    @staticmethod
    def take() -> PendingWrites:
        """An empty instance: a spare one given back by `recycle`, else a new one.

        The spares are shared by the runtimes of the process (see `Spares`).
        """
        spare = _SPARES.take()
        return PendingWrites() if spare is None else spare

    def recycle(self) -> None:
        """Give back this instance, empty (`is_empty`) and referenced by nobody else.

        An actor that stages and commits in turn makes and drops one each time, nine
        containers: a spare is reused as it is (every container of an empty one is empty).
        """
        _SPARES.give_back(self)

    def has_unsubmitted(self) -> bool:
        return bool(
            self.kv_ops
            or self.kv_range_ops
            or self.alarm_puts
            or self.alarm_deletes
            or self.contributions
        )

    def is_empty(self) -> bool:
        return not (
            self.gated
            or self.kv_ops
            or self.kv_overlay
            or self.kv_range_ops
            or self.kv_ranges
            or self.alarm_puts
            or self.alarm_deletes
            or self.outbox
            or self.contributions
            or self.soon
            or self.deferred
        )

    # -- KV ---------------------------------------------------------------------------

    def stage_kv_delete_range(self, start: bytes, end: bytes) -> None:
        """Delete every key in ``[start, end)`` in the next commit (``start < end``).

        Unsubmitted puts and deletes in the range are superseded (dropped), so a
        commit's range deletes can apply before its point ops.
        """
        if self.kv_ops:
            self.kv_ops = [op for op in self.kv_ops if not start <= op[0] < end]
        overlay = self.kv_overlay
        if overlay:
            self.kv_overlay = {
                k: v for k, v in overlay.items() if v[0] is not None or not start <= k < end
            }
        self.kv_range_ops.append((start, end))
        self.kv_ranges.append((None, start, end))

    def kv_lookup(self, key: bytes) -> tuple[bool, Any]:
        """(found, value) from the overlay; value None if deleted (by key or range)."""
        entry = self.kv_overlay.get(key)
        if self.kv_ranges and _in_later_range(self.kv_ranges, key, entry):
            return (True, None)
        if entry is None:
            return (False, None)
        value = entry[1]
        return (True, None if value is TOMBSTONE else value)

    def kv_window(
        self, start: bytes, end: bytes | None
    ) -> tuple[dict[bytes, bytes | None], list[tuple[bytes, bytes]]]:
        """The overlay seen through ``[start, end)`` (``end`` None: no upper bound).

        Returns each overlay key's value in the window (None if deleted) and the pending
        range deletes clipped to the window, sorted and merged: storage's entries in
        those ranges are deleted, unless the first mapping has a value for the key.
        """
        ranges = self.kv_ranges
        points: dict[bytes, bytes | None] = {}
        for key, entry in self.kv_overlay.items():
            if start <= key and (end is None or key < end):
                value = entry[1]
                deleted = value is TOMBSTONE or (ranges and _in_later_range(ranges, key, entry))
                points[key] = None if deleted else value
        clipped = sorted(
            (max(a, start), b if end is None else min(b, end))
            for _, a, b in ranges
            if b > start and (end is None or a < end)
        )
        merged: list[tuple[bytes, bytes]] = []
        for a, b in clipped:
            if merged and a <= merged[-1][1]:
                if b > merged[-1][1]:
                    merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        return points, merged

    def move_kv(self, record: CommitRecord, ops: list[Any], seq: int) -> None:
        """Move the staged KV ops into ``record`` (describing each in ``ops``).

        Range deletes go first; then the last put or delete of each key (an earlier op
        on the same key is overwritten, so a record never names a key twice).
        """
        if self.kv_range_ops:
            record.kv_delete_ranges = tuple(self.kv_range_ops)
            ops.extend(("kv.delete_range", start, end) for start, end in self.kv_range_ops)
            self.kv_range_ops = []
        puts = list(record.kv_puts)
        deletes = list(record.kv_deletes)
        for key, value in dict(self.kv_ops).items():
            if value is None:
                deletes.append(key)
                ops.append(("kv.delete", key))
            else:
                puts.append((key, value))
                ops.append(("kv.put", key, value))
        record.kv_puts = puts
        record.kv_deletes = deletes
        self.kv_ops = []
        self.mark_submitted(seq)

    def drop_unsubmitted_kv(self) -> None:
        """Forget the KV ops not submitted yet (a rollback of the current unit of work)."""
        self.kv_ops = []
        self.kv_range_ops = []
        self.kv_overlay = {k: v for k, v in self.kv_overlay.items() if v[0] is not None}
        self.kv_ranges = [r for r in self.kv_ranges if r[0] is not None]

    def mark_submitted(self, seq: int) -> None:
        """Stamp unsubmitted overlay entries with the seq of the commit now carrying them."""
        for key, (entry_seq, value) in self.kv_overlay.items():
            if entry_seq is None:
                self.kv_overlay[key] = (seq, value)
        if self.kv_ranges:
            self.kv_ranges = [(seq if s is None else s, a, b) for s, a, b in self.kv_ranges]

    def forget_durable(self, seq: int) -> None:
        """Drop overlay entries that are durable as of ``seq``."""
        if self.kv_overlay:
            self.kv_overlay = {
                k: v for k, v in self.kv_overlay.items() if v[0] is None or v[0] > seq
            }
        if self.kv_ranges:
            self.kv_ranges = [r for r in self.kv_ranges if r[0] is None or r[0] > seq]


def _in_later_range(
    ranges: list[tuple[int | None, bytes, bytes]],
    key: bytes,
    entry: tuple[int | None, Any] | None,
) -> bool:
    """Whether a pending range delete covering ``key`` is later than its overlay ``entry``.

    Unsubmitted entries in a range are dropped when the range is staged, so an entry
    and a range of the same commit (or both unsubmitted) mean the entry came later.
    """
    entry_seq = -1.0 if entry is None else _rank(entry[0])
    return any(start <= key < end and _rank(seq) > entry_seq for seq, start, end in ranges)


def _rank(seq: int | None) -> float:
    """Order of a commit seq, not submitted (None) being the latest."""
    return float("inf") if seq is None else seq
