"""Background work of the SQLite driver: the commit log, its compaction, WAL checkpoints.

**Log-first commits.** A commit does not touch ``actor_state``, ``actor_events`` or
``actor_workflow``: each record of the batch appends one row to ``actor_log`` (see the
schema's versions 2 and 5), which carries its state, its history entry and its workflow
records, in the same transaction as the batch's actor, KV, alarm and queue changes
(those are written directly; compaction never touches them). The log has no index but
its rowid and rowids only grow, so a batch of 64 records for 64 actors dirties the last
page or two of the log instead of ~130 pages scattered over the per-actor tables, and a
lone record with nothing but its row (an action, a workflow step) is one autocommitted
``INSERT``.

**The index.** While rows wait in the log, `CommitLog.latest` answers ``load_state``:
per actor with rows there, its highest seq, its latest snapshot, its pending prune
request, whether a row carries workflow records and a floor of its unmoved seqs (which
tells a step whether any of its entries can be below the prune; see `Pending`);
``load_workflow`` applies those rows (`CommitLog.overlay_workflow`) over what
``actor_workflow`` holds. The driver's process holds the data directory lock, so it is
the only writer and the index is exact. It is changed only after a transaction
committed: a failed commit or compaction step leaves it, and the log, as they were.

**Compaction** moves log rows into the per-actor tables in *rounds*. A round takes the
oldest rows of the log (``rowid <= upto``, at most `COMPACT_MAX_ROWS`) and the sorted
list of actors having rows there, and moves them in *steps*: each step is its own
transaction over a slice of those actors holding about `COMPACT_STEP_ROWS` rows. It
copies the slice's history rows into ``actor_events`` (sorted by ``(actor_id, seq)``,
so the inserts are clustered), except those below their actor's highest prune bound in
the log (the step's prune would delete them at once), applies the slice's prune
requests, writes each actor's latest seq and snapshot into ``actor_state`` and applies
the slice's workflow records to ``actor_workflow`` (in rowid order per actor: the last
write of a key wins). All the rows of an actor in the round move in one step, so its
``actor_events`` tail page and ``actor_state`` row are written once per round rather
than once per commit. The moved rows stay in the log until the round's last step,
which deletes the whole prefix ``rowid <= upto`` at once (whole pages: deleting a
slice's rows, spread over every page, would rewrite them all). A commit queued
behind a step waits for a fraction of a round. Steps run:

* while a round is in progress: when no job is queued (after a job, or while the writer
  thread waits for one) and `COMPACT_ROUND_PAUSE` passed since the last step ended; each
  step is sized to take about `COMPACT_STEP_SECONDS` (by the cost per row of the steps
  before it), since a commit arriving during a step waits for it, and a row costs more
  as the database grows. Queued jobs go first: a step after each of them would make
  the last one wait for a step per job ahead of it;
* a round starts when the writer queue is empty and `COMPACT_IDLE_SECONDS` passed since
  the last step;
* once the log holds `COMPACT_AFTER_ROWS` rows (compaction is falling behind): after
  every job, queued jobs or not, in larger steps (see `CommitLog._step_rows`);
* before ``read_history`` of an actor with rows in the log (unless no entry can be newer
  than the seq asked for): a step of that actor alone, which also deletes its rows;
* before close and at open: rounds until the log is empty, in steps of
  `COMPACT_STEP_ROWS` rows (nothing waits for them).

**Crash recovery** (`CommitLog.recover`, at open) rebuilds the index from the log and
compacts it all. Rows a step moved before the crash are moved again with the same
result: their events are inserted as they were, the prunes stored in the actor's
rows are applied again, and so are their workflow records, in order, followed by those
of every later row of the actor (``actor_workflow`` is written by compaction alone, so
no newer write of a key can be overtaken). No moved row can outlive a prune or a
destroy that is gone from the log: a step of one actor (``read_history``) deletes the
actor's moved rows with the rows it moves, and ``destroy_actor`` deletes moved and
unmoved rows alike.

**Steps are not fsynced.** A step moves rows that are durable already (in the log), so
at ``synchronous=FULL`` its transaction commits at ``NORMAL``: its WAL frames are
written, not synced. The fsync of a step's scattered pages was two thirds of its time
on a grown database, with the connection held; the checkpointer, woken after the step,
syncs the WAL on its own thread instead (a checkpoint syncs the WAL before copying it),
and the next durable commit's fsync covers whatever is left. A power loss can lose the
last steps, never a commit: WAL frames are checksummed in a chain, so a step survives
only with every frame before it, and a lost step leaves its rows in the log to be moved
again (see above).

**Checkpoints.** `Checkpointer` copies the WAL back into the database file on its own
thread and connection (a passive checkpoint runs alongside the writer). The writer's
automatic checkpoint (SQLite's default, at 1,000 WAL pages) still restarts the WAL, so
it stays a few MB, but finds most frames copied already: in ``bench/bench_commit.py``
(1,000 actors, 256-record batches) this took the commit p99 from ~20 to ~13 ms.

Everything here except `Checkpointer` runs on the driver's writer thread.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import msgspec

from ._base import CommitRecord

__all__ = [
    "COMPACT_AFTER_ROWS",
    "COMPACT_IDLE_SECONDS",
    "COMPACT_MAX_ROWS",
    "COMPACT_MIN_STEP_ROWS",
    "COMPACT_ROUND_PAUSE",
    "COMPACT_STEP_ROWS",
    "COMPACT_STEP_SECONDS",
    "Checkpointer",
    "CommitLog",
    "Pending",
    "rollback",
]

log = logging.getLogger("pyrivet.storage")

#: Start a compaction round after a job once the log holds this many rows.
COMPACT_AFTER_ROWS = 8192
#: A round covers at most this many log rows, so a step never moves more. Each step of a
#: round reads the whole round (its rows are found by actor, and the log has no index
#: but the rowid), so a moved row costs a read per step of its round; a round writes
#: each of its actors' ``actor_state`` row and ``actor_events`` tail once. 2,048 (four
#: 512-row steps) against 8,192 (sixteen): 8.4k instead of 15.3k instructions per moved
#: row on 64 actors with 100 history entries each (bench/README.md, "Compaction rounds
#: of 2,048 rows").
COMPACT_MAX_ROWS = 2048
#: A step covers a slice of the round's actors holding at most about this many rows
#: (more if the log holds several times `COMPACT_AFTER_ROWS`: compaction is falling
#: behind) ...
COMPACT_STEP_ROWS = 512
#: ... and, within that, about as many as take this long by the cost per row of the
#: steps before it. A commit or read that arrives during a step waits for it, so this
#: bounds that wait. A row's cost grows with the database: each moved row dirties a
#: page of ``actor_events`` (its actor's), written to the WAL and fsynced with the
#: step; on a 36,000-actor database with 1 M history rows a 512-row step took ~30 ms
#: against ~13 ms when fresh (``bench/bench_grown.py``).
COMPACT_STEP_SECONDS = 0.005
#: The smallest step, in rows (a step has a fixed cost: its transaction and fsync).
COMPACT_MIN_STEP_ROWS = 32
#: Start a round when idle if the last step is at least this old; also the pause before
#: background compaction is retried after a failure.
COMPACT_IDLE_SECONDS = 1.0
#: While a round is in progress the writer thread, when no job is queued, runs its next
#: step this long after the last one ended. Back-to-back steps would hold the
#: connection nearly all the time: every commit or read arriving meanwhile would miss
#: the driver's inline fast path and go to the thread, and so would the jobs after it
#: until the thread's queue drains.
COMPACT_ROUND_PAUSE = 0.02
#: The checkpointer pauses this long after each checkpoint.
CHECKPOINT_PAUSE_SECONDS = 0.005

# Bits of actor_log.flags.
_HISTORY = 1  # the row is a history entry (the record had an event)
_SNAPSHOT = 2  # ``state`` is the actor's new snapshot
_EVENT_STATE = 4  # the history entry's state is ``state`` (else ``event_state``)

# The nullable columns are bound as 0 for NULL (see `_log_row`): the sqlite3 module binds
# an int directly but sends None and bytes through its adapter lookup (~2,700
# instructions each). No value of these columns is 0: they are TEXT or BLOB, and a
# prune bound is at least 1 (below 1 there is nothing to prune, as with NULL).
_INSERT_LOG = (
    'INSERT INTO actor_log (rowid, actor_id, seq, at_ms, kind, name, "by", args, state, ops, '
    "flags, event_state, prune_before, workflow) VALUES (?1,?2,?3,?4,?5,nullif(?6,0),"
    "nullif(?7,0),nullif(?8,0),nullif(?9,0),nullif(?10,0),?11,nullif(?12,0),nullif(?13,0),"
    "nullif(?14,0))"
)
#: Parameters per log row (the columns of `_INSERT_LOG`).
_LOG_PARAMS = 14
#: The most rows one ``INSERT`` of the log takes: 64 rows bind 896 parameters, below
#: SQLite's oldest limit (999), and a batch of 64 actors' actions is one statement.
_LOG_CHUNK = 64
#: A *lean* log row: a history entry with no ``by``, ``ops``, separate event state or
#: workflow records (an action called without a connection: every commit of the
#: in-process 64 x 64 load): 10 parameters instead of 14, the other columns left NULL.
#: Each bound parameter costs the sqlite3 module and SQLite ~300-800 instructions.
_INSERT_LOG_LEAN = (
    "INSERT INTO actor_log (rowid, actor_id, seq, at_ms, kind, name, args, state, flags, "
    "prune_before) VALUES (?1,?2,?3,?4,?5,nullif(?6,0),nullif(?7,0),nullif(?8,0),?9,"
    "nullif(?10,0))"
)
_LEAN_PARAMS = 10


def _multi_row(insert: str) -> dict[int, str]:
    """``insert`` for n rows, by n: its row of values with anonymous parameters (``?``
    for ``?N``, which would name the same parameter in every row), repeated.

    One statement per chunk, not ``executemany``: the sqlite3 module's per-row loop of
    ``executemany`` (reset, step, the statement's opening and closing opcodes) cost
    ~2,500 instructions a row in a 64-row batch. Only power-of-two sizes are used
    (`_insert_rows`), so the connection's statement cache holds seven per shape.
    """
    columns, values = insert.split(" VALUES ")
    row = re.sub(r"\?\d+", "?", values)
    return {n: columns + " VALUES " + ",".join([row] * n) for n in (1, 2, 4, 8, 16, 32, 64)}


_INSERT_LOG_ROWS = _multi_row(_INSERT_LOG)
_INSERT_LEAN_ROWS = _multi_row(_INSERT_LOG_LEAN)
#: The prune bound of each actor of a step that may have entries below it, for
#: `_MOVE_PRUNED`: a table of the writer connection's own ``temp`` database (not in the
#: database file or its WAL; its few rows stay in the page cache), filled inside the
#: step's transaction, so a rolled-back step leaves it as it was.
_CREATE_BOUNDS = """
    CREATE TEMP TABLE IF NOT EXISTS compact_bounds (
        actor_id TEXT NOT NULL PRIMARY KEY,
        bound INTEGER NOT NULL
    ) WITHOUT ROWID
"""
_CLEAR_BOUNDS = "DELETE FROM temp.compact_bounds"
_PUT_BOUND = "INSERT INTO temp.compact_bounds (actor_id, bound) VALUES (?, ?)"
# ?1 .. ?2: the rowids, ?3 .. ?4: the first and last actor id of the step.
_MOVE_EVENTS = f"""
    INSERT OR REPLACE INTO actor_events (actor_id, seq, at_ms, kind, name, "by", args, state, ops)
    SELECT actor_id, seq, at_ms, kind, name, "by", args,
           CASE WHEN flags & {_EVENT_STATE} THEN state ELSE event_state END, ops
    FROM actor_log
    WHERE rowid BETWEEN ?1 AND ?2 AND actor_id BETWEEN ?3 AND ?4 AND flags & {_HISTORY}
    ORDER BY actor_id, seq, rowid
"""
# `_MOVE_EVENTS` leaving out each history entry below its actor's bound in
# ``compact_bounds``: the step's prune would delete it again at once (under the 64 x 64
# load most moved rows are such: the log holds more entries per actor than the history
# limit when a round starts). LEFT JOIN keeps the log the outer loop (one pass over the
# rowid range, a key lookup per row); an actor with no bound there keeps every entry.
_MOVE_PRUNED = f"""
    INSERT OR REPLACE INTO actor_events (actor_id, seq, at_ms, kind, name, "by", args, state, ops)
    SELECT l.actor_id, l.seq, l.at_ms, l.kind, l.name, l."by", l.args,
           CASE WHEN l.flags & {_EVENT_STATE} THEN l.state ELSE l.event_state END, l.ops
    FROM actor_log AS l LEFT JOIN temp.compact_bounds AS b ON b.actor_id = l.actor_id
    WHERE l.rowid BETWEEN ?1 AND ?2 AND l.actor_id BETWEEN ?3 AND ?4 AND l.flags & {_HISTORY}
        AND (b.bound IS NULL OR l.seq >= b.bound)
    ORDER BY l.actor_id, l.seq, l.rowid
"""
_PRUNE_EVENTS = "DELETE FROM actor_events WHERE actor_id = ? AND seq < ?"
_UPSERT_STATE = """
    INSERT INTO actor_state (actor_id, seq, snapshot) VALUES (?, ?, ?)
    ON CONFLICT (actor_id) DO UPDATE SET
        seq = max(actor_state.seq, excluded.seq),
        snapshot = coalesce(excluded.snapshot, actor_state.snapshot)
"""
# ?1 .. ?2: the rowids, ?3 .. ?4: the first and last actor id of the step.
_SCAN_WORKFLOW = """
    SELECT actor_id, workflow FROM actor_log
    WHERE rowid BETWEEN ?1 AND ?2 AND actor_id BETWEEN ?3 AND ?4 AND workflow IS NOT NULL
    ORDER BY actor_id, rowid
"""
_ACTOR_WORKFLOW = """
    SELECT workflow FROM actor_log
    WHERE rowid BETWEEN ? AND ? AND actor_id = ? AND workflow IS NOT NULL ORDER BY rowid
"""
_PUT_WORKFLOW = "INSERT OR REPLACE INTO actor_workflow (actor_id, key, value) VALUES (?, ?, ?)"
_DELETE_WORKFLOW = "DELETE FROM actor_workflow WHERE actor_id = ? AND key = ?"
_DELETE_ACTOR_ROWS = "DELETE FROM actor_log WHERE rowid <= ? AND actor_id = ?"
_DELETE_PREFIX = "DELETE FROM actor_log WHERE rowid <= ?"
_SCAN = f"""
    SELECT rowid, actor_id, seq, CASE WHEN flags & {_SNAPSHOT} THEN state END, prune_before,
           workflow IS NOT NULL
    FROM actor_log ORDER BY rowid
"""

#: A log row's ``workflow`` column: the record's workflow deletes, then its puts.
_WorkflowOps = tuple[tuple[str, ...], tuple[tuple[str, bytes], ...]]
_encode_workflow_into = msgspec.msgpack.Encoder().encode_into
_decode_workflow = msgspec.msgpack.Decoder(_WorkflowOps).decode


class Pending(NamedTuple):
    """What the log holds for one actor: an entry of `CommitLog.latest`."""

    #: No unmoved log row of the actor has a smaller rowid.
    first: int
    #: The rowid of the actor's last log row.
    last: int
    #: The highest seq of its log rows (so of all its committed seqs).
    seq: int
    #: The snapshot of its last log row that has one, or None.
    snapshot: bytes | None
    #: The highest prune bound of its log rows, or None.
    prune: int | None
    #: Whether one of its log rows carries workflow records (it may have been moved).
    workflow: bool
    #: No unmoved log row of the actor has a smaller seq (after a step moved some of
    #: its rows this stays as it was: lower than the rest, as seqs only grow). A step
    #: looks up prune bounds only for actors whose `prune` is above it.
    first_seq: int


class StagedLog:
    """One batch turned into log rows, and the index entries to apply once committed.

    ``params`` holds the parameters of `_INSERT_LOG` of its full rows one after another
    (`_LOG_PARAMS` per row), ``lean`` those of `_INSERT_LOG_LEAN` of its lean rows
    (`_LEAN_PARAMS` per row): ready to bind to multi-row ``INSERT``s without a tuple
    per row flattened again. Each row carries its rowid, so the two kinds of rows may
    be inserted in either order.
    """

    __slots__ = ("count", "latest", "lean", "params", "tail")

    def __init__(
        self, params: list[Any], lean: list[Any], count: int, latest: dict[str, Pending], tail: int
    ) -> None:
        self.params = params
        self.lean = lean
        #: Rows in all.
        self.count = count
        self.latest = latest
        self.tail = tail


class _Round:
    """A compaction round in progress: its rows and the actors left to move."""

    __slots__ = ("actors", "next", "rows_per_actor", "upto")

    def __init__(self, upto: int, actors: list[str], rows_per_actor: float) -> None:
        self.upto = upto
        self.actors = actors
        self.rows_per_actor = rows_per_actor
        self.next = 0


class CommitLog:
    """The in-memory side of ``actor_log``: the index, the counters and compaction.

    Create one per connection; `recover` must run once before anything else.
    """

    def __init__(self) -> None:
        self.latest: dict[str, Pending] = {}
        #: Rows in actor_log, moved ones of the current round included.
        self.rows = 0
        #: The highest rowid given out; the next batch continues after it.
        self.tail = 0
        self._round: _Round | None = None
        #: Commit compaction steps without an fsync (set by the driver when it runs at
        #: ``synchronous=FULL``); see `Checkpointer`.
        self.unsynced_steps = False
        #: Seconds per row of the recent background steps (0: none measured yet).
        self._row_seconds = 0.0
        self._last_step = time.monotonic()
        #: Background compaction pauses until then after a failure.
        self._retry_at = 0.0

    # -- open -----------------------------------------------------------------------

    def recover(self, conn: sqlite3.Cursor) -> None:
        """Rebuild the index from whatever is in the log, then try to compact it all.

        Runs at open, first of all on the connection (it makes the step's ``temp``
        table). The index is built first, so if compaction fails (it is logged) the
        rows stay in the log, reads still see them and compaction is retried later.

        Raises:
            sqlite3.Error: the log cannot be read, or the temp table cannot be made.
        """
        conn.execute(_CREATE_BOUNDS)
        self._load(conn)
        try:
            self.compact_all(conn)
        except sqlite3.Error as exc:
            log.warning("recovery: compacting the commit log failed (will retry): %s", exc)
            self._retry_at = time.monotonic() + COMPACT_IDLE_SECONDS

    def _load(self, conn: sqlite3.Cursor) -> None:
        """Build the index and the counters from the rows of the log."""
        latest: dict[str, Pending] = {}
        rows = 0
        for rowid, actor_id, seq, snapshot, prune, workflow in conn.execute(_SCAN):
            latest[actor_id] = _merge(
                latest.get(actor_id), rowid, seq, snapshot, prune, bool(workflow)
            )
            self.tail = max(self.tail, rowid)
            rows += 1
        self.latest, self.rows, self._round = latest, rows, None

    # -- commits --------------------------------------------------------------------

    def stage(self, batch: Sequence[CommitRecord]) -> StagedLog:
        """One log row per record, with consecutive rowids after `tail`; no I/O.

        A prune request deletes what a prune at commit time would have, once the batch
        is compacted: the actor's history below the highest bound of the batch, but
        never an entry of a later commit. A bound at most one past its own record's seq
        (what the runtime sends, on every commit past its ``history_limit``) already
        says exactly that and is stored on its own row, with no extra work. Any other
        bound sends the batch to `_prunes`: the bounds are merged per actor, capped at
        the actor's last seq in the batch + 1 and stored on its last row.
        """
        staged = self._stage(batch, None)
        if staged is None:
            staged = self._stage(batch, _prunes(batch))
            assert staged is not None
        return staged

    def _stage(
        self, batch: Sequence[CommitRecord], prune_at: dict[int, int] | None
    ) -> StagedLog | None:
        """`stage` with the bounds of `_prunes` (or, if None, the records' own bounds:
        then None if a bound is more than one past its record's seq)."""
        params: list[Any] = []
        lean: list[Any] = []
        staged: dict[str, Pending] = {}
        latest = self.latest
        first_rowid = rowid = self.tail
        for i, rec in enumerate(batch):
            rowid += 1
            actor_id = rec.actor_id
            if prune_at is None:
                prune = rec.prune_history_before
                if prune is not None and prune > rec.seq + 1:
                    return None
            else:
                prune = prune_at.get(i)
            workflow = bool(rec.workflow_puts or rec.workflow_deletes)
            row = _log_row(rowid, rec, prune, workflow)
            if len(row) == _LEAN_PARAMS:
                lean += row
            else:
                params += row
            seq = rec.seq
            snapshot = rec.state
            prev = staged.get(actor_id) or latest.get(actor_id)
            if prev is None:
                staged[actor_id] = _new_pending(
                    Pending, (rowid, rowid, seq, snapshot, prune, workflow, seq)
                )
                continue
            # `_merge`, written out: this runs once per committed record.
            if snapshot is None:
                snapshot = prev.snapshot
            prev_prune = prev.prune
            if prune is None or (prev_prune is not None and prev_prune > prune):
                prune = prev_prune
            prev_seq = prev.seq
            first_seq = prev.first_seq
            staged[actor_id] = _new_pending(
                Pending,
                (prev.first, rowid, seq if seq > prev_seq else prev_seq, snapshot, prune,
                 workflow or prev.workflow, seq if seq < first_seq else first_seq),
            )  # fmt: skip
        return StagedLog(params, lean, rowid - first_rowid, staged, rowid)

    def append_lone(self, conn: sqlite3.Cursor, rec: CommitRecord) -> None:
        """`stage`, `append` and `committed` of a batch of one record, without the
        batch's lists: its row is bound as it is made and its index entry applied once
        the ``INSERT`` returned. The caller holds the transaction, or the ``INSERT`` is
        one (the connection autocommits). On error nothing is applied to the index.

        Raises:
            sqlite3.Error: the ``INSERT`` failed.
        """
        actor_id = rec.actor_id
        seq = rec.seq
        prune = rec.prune_history_before
        if prune is not None and prune > seq + 1:
            prune = seq + 1  # `_prunes` of one record: never past its own commit
        workflow = bool(rec.workflow_puts or rec.workflow_deletes)
        rowid = self.tail + 1
        row = _log_row(rowid, rec, prune, workflow)
        conn.execute(_INSERT_LEAN_ROWS[1] if len(row) == _LEAN_PARAMS else _INSERT_LOG_ROWS[1], row)
        latest = self.latest
        latest[actor_id] = _merge(latest.get(actor_id), rowid, seq, rec.state, prune, workflow)
        self.rows += 1
        self.tail = rowid

    @staticmethod
    def append(conn: sqlite3.Cursor, staged: StagedLog) -> None:
        """Insert the staged rows; the caller holds the commit's transaction (or, for a
        lone row, its ``INSERT`` is one)."""
        if staged.lean:
            _insert_rows(conn, _INSERT_LEAN_ROWS, staged.lean, _LEAN_PARAMS)
        if staged.params:
            _insert_rows(conn, _INSERT_LOG_ROWS, staged.params, _LOG_PARAMS)

    def committed(self, staged: StagedLog) -> None:
        """Apply a staged batch to the index once its transaction committed."""
        self.latest.update(staged.latest)
        self.rows += staged.count
        self.tail = staged.tail

    def overlay_workflow(
        self, conn: sqlite3.Cursor, actor_id: str, records: dict[str, bytes]
    ) -> None:
        """Apply the workflow records of the actor's unmoved log rows, in order, to
        ``records`` (what ``actor_workflow`` holds for it): its committed records.

        Rows a step of the current round already moved are in ``actor_workflow``: only
        the rows from `Pending.first` on are read.
        """
        pending = self.latest.get(actor_id)
        if pending is None or not pending.workflow:
            return
        for (blob,) in conn.execute(
            _ACTOR_WORKFLOW, (pending.first, pending.last, actor_id)
        ).fetchall():
            deletes, puts = _decode_workflow(blob)
            for key in deletes:
                records.pop(key, None)
            records.update(puts)

    # -- destroy --------------------------------------------------------------------

    def delete_actor(self, conn: sqlite3.Cursor, actor_id: str) -> int:
        """Delete the actor's log rows (inside the caller's transaction); how many.

        Scans the log only if the actor has rows there: unmoved ones (it is in the
        index) or possibly moved ones (a round is in progress).
        """
        if actor_id not in self.latest and self._round is None:
            return 0
        return int(conn.execute("DELETE FROM actor_log WHERE actor_id = ?", (actor_id,)).rowcount)

    def actor_deleted(self, actor_id: str, rows: int) -> None:
        """Forget the actor once the transaction of `delete_actor` committed."""
        self.latest.pop(actor_id, None)
        self.rows -= rows

    # -- compaction -----------------------------------------------------------------

    def compact_step(self, conn: sqlite3.Cursor, *, paced: bool = True) -> bool:
        """Run the next step of the current round, starting a round if there is none.

        ``paced``: size the step by `COMPACT_STEP_SECONDS` (else `COMPACT_STEP_ROWS`).
        Returns False if the log was empty.

        Raises:
            sqlite3.Error: the step failed and was rolled back; the round stays where it
                was, so the step is retried next time.
        """
        rnd = self._round
        if rnd is None:
            rnd = self._round = self._start_round(conn)
            if rnd is None:
                return False
        per_step = max(1, int(self._step_rows(paced) / rnd.rows_per_actor))
        end = rnd.next + per_step
        last = end >= len(rnd.actors)
        started = time.perf_counter()
        self._step(conn, 0, rnd.upto, rnd.actors[rnd.next : end], "prefix" if last else None)
        rows = min(per_step, len(rnd.actors) - rnd.next) * rnd.rows_per_actor
        cost = (time.perf_counter() - started) / rows
        # A moving average: one slow step (another process's fsync) does not halve the next.
        self._row_seconds = cost if not self._row_seconds else (self._row_seconds + cost) / 2
        rnd.next = end
        if last:
            self._round = None
        return True

    def _step_rows(self, paced: bool) -> float:
        """How many rows the next step should move (see `COMPACT_STEP_SECONDS`)."""
        rows = float(COMPACT_STEP_ROWS)
        if paced and self._row_seconds:
            rows = min(rows, max(COMPACT_MIN_STEP_ROWS, COMPACT_STEP_SECONDS / self._row_seconds))
        # Bigger steps when commits outpace compaction (one step a job), to catch up.
        return rows * max(1, self.rows // max(1, COMPACT_AFTER_ROWS))

    def compact_all(self, conn: sqlite3.Cursor) -> None:
        """Run steps until the log is empty.

        Raises:
            sqlite3.Error: a step failed; the earlier ones stay committed.
        """
        while self.compact_step(conn, paced=False):
            pass

    def compact_actor(self, conn: sqlite3.Cursor, actor_id: str) -> None:
        """Move the actor's log rows now, in steps of that actor alone (one step unless
        compaction fell far behind), deleting them at once.

        Raises:
            sqlite3.Error: a step failed; the earlier ones stay committed.
        """
        while (pending := self.latest.get(actor_id)) is not None:
            upto = min(self.tail, pending.first + COMPACT_MAX_ROWS - 1)
            self._step(conn, pending.first, upto, [actor_id], "actor")

    def needs_nudge(self, rows_before: int) -> bool:
        """Whether a commit that took the log from ``rows_before`` rows to `rows` made
        background work due that a writer thread blocked in its job queue would miss:
        the first rows (an idle compaction is now due later) or `COMPACT_AFTER_ROWS`."""
        rows = self.rows
        return (rows_before == 0 < rows) or (rows_before < COMPACT_AFTER_ROWS <= rows)

    def idle_wait(self) -> float | None:
        """Seconds until a background step is due (0: now); None if the log is empty."""
        if not self.rows and self._round is None:
            return None
        pause = COMPACT_IDLE_SECONDS if self._round is None else COMPACT_ROUND_PAUSE
        due = max(self._retry_at, self._last_step + pause)
        return max(0.0, due - time.monotonic())

    def due(self, idle: bool) -> bool:
        """Whether `maintain` would run a step now (see there); no I/O, no lock needed:
        a stale answer only delays or wastes one check."""
        if not self.rows and self._round is None:
            return False
        now = time.monotonic()
        if now < self._retry_at:
            return False
        if self.rows >= COMPACT_AFTER_ROWS:
            return True
        pause = COMPACT_IDLE_SECONDS if self._round is None else COMPACT_ROUND_PAUSE
        return idle and now - self._last_step >= pause

    def maintain(self, conn: sqlite3.Cursor, idle: bool) -> bool:
        """Run one background step if one is due; True if it ran.

        Due when ``idle`` (the writer queue is empty) and the last step ended
        `COMPACT_ROUND_PAUSE` ago while a round is in progress, `COMPACT_IDLE_SECONDS`
        ago otherwise (a new round); idle or not once the log holds `COMPACT_AFTER_ROWS`
        rows. A failure is logged and pauses background compaction for
        `COMPACT_IDLE_SECONDS`; nothing is lost.
        """
        if not self.due(idle):
            return False
        now = time.monotonic()
        try:
            return self.compact_step(conn)
        except sqlite3.Error as exc:
            log.warning("compacting the commit log failed (will retry): %s", exc)
            self._retry_at = now + COMPACT_IDLE_SECONDS
            return False

    def _start_round(self, conn: sqlite3.Cursor) -> _Round | None:
        """A round over the oldest rows of the log; None (and a clean index) if it is empty."""
        first = conn.execute("SELECT min(rowid) FROM actor_log").fetchone()[0]
        if first is None:  # e.g. destroys deleted the last rows
            self.latest, self.rows = {}, 0
            return None
        upto = min(self.tail, first + COMPACT_MAX_ROWS - 1)
        actors = sorted(a for a, pending in self.latest.items() if pending.first <= upto)
        if not actors:  # cannot happen; never delete rows that were not moved
            log.error("the commit log index lost track of rows; rebuilding it")
            self._load(conn)
            actors = sorted(a for a, pending in self.latest.items() if pending.first <= upto)
        rows = max(1, min(self.rows, upto - first + 1))
        return _Round(upto, actors, rows / len(actors))

    def _step(
        self,
        conn: sqlite3.Cursor,
        low: int,
        upto: int,
        actors: list[str],
        delete: Literal["prefix", "actor"] | None,
    ) -> None:
        """Move the log rows ``low .. upto`` of the actors ``actors[0] .. actors[-1]``.

        ``actors`` (sorted) must hold every actor of that id range with unmoved rows
        there, and there must be no moved rows there. ``delete`` says which rows to
        delete: the actor's ``<= upto`` (its moved ones too), every row ``<= upto`` (the
        round's last step), or none. One transaction; the index is updated only after
        it committed.
        """
        self._last_step = time.monotonic()
        moved = [
            (a, p) for a in actors if (p := self.latest.get(a)) is not None and p.first <= upto
        ]
        if not moved and delete is None:
            return
        if self.unsynced_steps:
            conn.execute("PRAGMA synchronous = NORMAL")  # see "Steps are not fsynced"
        try:
            conn.execute("BEGIN IMMEDIATE")
            if moved:
                # Bounds only where entries may be below them: with many actors of a
                # few rows each, a bound per actor would cost more than it saves.
                bounds = [
                    (a, p.prune) for a, p in moved if p.prune is not None and p.prune > p.first_seq
                ]
                move = _MOVE_EVENTS
                if bounds:
                    conn.execute(_CLEAR_BOUNDS)
                    conn.executemany(_PUT_BOUND, bounds)
                    move = _MOVE_PRUNED
                conn.execute(move, (low, upto, actors[0], actors[-1]))
                if any(p.workflow for _, p in moved):
                    _move_workflow(conn, low, upto, actors[0], actors[-1])
                prunes = [(a, p.prune) for a, p in moved if p.prune is not None]
                if prunes:
                    conn.executemany(_PRUNE_EVENTS, prunes)
                # An entry may include rows after ``upto``: writing their (committed) seq
                # and snapshot early is harmless, moving those rows writes them again.
                conn.executemany(_UPSERT_STATE, [(a, p.seq, p.snapshot) for a, p in moved])
            deleted = 0
            if delete == "prefix":
                deleted = conn.execute(_DELETE_PREFIX, (upto,)).rowcount
            elif delete == "actor":
                deleted = conn.execute(_DELETE_ACTOR_ROWS, (upto, actors[0])).rowcount
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
        finally:
            if self.unsynced_steps:
                conn.execute("PRAGMA synchronous = FULL")
            # The pause before the next step counts from this one's end: a step longer
            # than the pause must not be followed by another at once.
            self._last_step = time.monotonic()
        for actor_id, pending in moved:
            if pending.last <= upto:
                del self.latest[actor_id]
            else:  # keeps its prune: applying it again after more rows moved is harmless
                self.latest[actor_id] = pending._replace(first=upto + 1)
        if not self.latest:
            # A dict keeps its table when emptied by deletions: a burst of commits by
            # many actors would otherwise pin its peak size for good.
            self.latest = {}
        self.rows -= deleted


class Checkpointer:
    """Copies the WAL back into the database file on its own thread and connection.

    After `wake` (the writer calls it after each write) it runs a passive checkpoint,
    which never blocks the writer, then pauses `CHECKPOINT_PAUSE_SECONDS`; idle, it
    sleeps. It cannot restart the WAL from its beginning while the writer appends; the
    writer's automatic checkpoint does that, cheaply, as most frames are copied by then.
    Errors are logged and retried at the next wake; a failed checkpoint leaves the WAL
    as it was (nothing is lost).
    """

    def __init__(self, path: Path, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="pyrivet-sqlite-checkpointer", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        """Ask for a checkpoint soon (any thread; cheap)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread and close its connection; waits for a running checkpoint."""
        self._stopping.set()
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None)
        except sqlite3.Error as exc:
            log.warning("the WAL checkpointer cannot open %s: %s", self._path, exc)
            return
        try:
            # One cursor for the thread's life: `Connection.execute` makes a cursor per
            # call and the connection keeps a weak reference to each (up to 200 dead
            # ones), small objects scattered over the heap that keep it from shrinking.
            cur = conn.cursor()
            cur.execute(f"PRAGMA synchronous = {self._synchronous}")
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping.is_set():
                    break
                try:
                    self.checkpoint(cur)
                except sqlite3.Error as exc:
                    log.warning("WAL checkpoint of %s failed (will retry): %s", self._path, exc)
                if self._stopping.wait(CHECKPOINT_PAUSE_SECONDS):
                    break
        finally:
            conn.close()

    def checkpoint(self, cur: sqlite3.Cursor) -> tuple[int, int, int]:
        """One passive checkpoint on the thread's cursor: SQLite's (busy, frames in the
        WAL, frames copied back so far) for this WAL, -1 for the last two if it is not
        in WAL mode. Runs on the checkpointer thread; `bench/bench_grown.py --trace`
        times it."""
        # fetchall: the statement runs to its end, so no read transaction stays open.
        ((busy, frames, copied),) = cur.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        return int(busy), int(frames), int(copied)


def _move_workflow(conn: sqlite3.Cursor, low: int, upto: int, first: str, last: str) -> None:
    """Apply the workflow records of the log rows ``low .. upto`` of the actors
    ``first .. last`` to ``actor_workflow`` (inside the step's transaction): per actor
    in rowid order, a record's deletes before its puts, so the last write of a key wins."""
    ops: dict[tuple[str, str], bytes | None] = {}
    for actor_id, blob in conn.execute(_SCAN_WORKFLOW, (low, upto, first, last)).fetchall():
        deletes, puts = _decode_workflow(blob)
        for key in deletes:
            ops[actor_id, key] = None
        for key, value in puts:
            ops[actor_id, key] = value
    conn.executemany(_PUT_WORKFLOW, [(a, k, v) for (a, k), v in ops.items() if v is not None])
    conn.executemany(_DELETE_WORKFLOW, [(a, k) for (a, k), v in ops.items() if v is None])


#: Makes a `Pending` from a tuple of its fields without the Python-level ``__new__``
#: of a NamedTuple (a frame per call; this runs once per committed record).
_new_pending = tuple.__new__


def _merge(
    prev: Pending | None,
    rowid: int,
    seq: int,
    snapshot: bytes | None,
    prune: int | None,
    workflow: bool,
) -> Pending:
    """The index entry after a row is appended to an actor's (``prev``: before it)."""
    if prev is None:
        return _new_pending(Pending, (rowid, rowid, seq, snapshot, prune, workflow, seq))
    if snapshot is None:
        snapshot = prev.snapshot
    if prune is None or (prev.prune is not None and prev.prune > prune):
        prune = prev.prune
    return _new_pending(
        Pending,
        (prev.first, rowid, max(seq, prev.seq), snapshot, prune, workflow or prev.workflow,
         min(seq, prev.first_seq)),
    )  # fmt: skip


def _prunes(batch: Sequence[CommitRecord]) -> dict[int, int]:
    """Index of the actor's last record in the batch -> the prune bound to store there."""
    last: dict[str, int] = {}
    top_seq: dict[str, int] = {}
    before: dict[str, int] = {}
    for i, rec in enumerate(batch):
        actor_id = rec.actor_id
        last[actor_id] = i
        top_seq[actor_id] = max(rec.seq, top_seq.get(actor_id, rec.seq))
        if (bound := rec.prune_history_before) is not None:
            before[actor_id] = max(bound, before.get(actor_id, bound))
    return {last[a]: min(bound, top_seq[a] + 1) for a, bound in before.items()}


def _insert_rows(
    conn: sqlite3.Cursor, statements: dict[int, str], params: list[Any], per_row: int
) -> None:
    """Insert the rows whose parameters ``params`` holds (``per_row`` each) with the
    multi-row ``statements`` of one shape: `_LOG_CHUNK` rows per statement, the rest in
    one statement per power of two of its size (63 rows: 32, 16, 8, 4, 2, 1)."""
    count = len(params) // per_row
    if count in statements:  # one statement (a lone row, a batch of 64, ...)
        conn.execute(statements[count], params)
        return
    start = 0
    size = _LOG_CHUNK
    while count:
        while size > count:
            size >>= 1
        end = start + size * per_row
        conn.execute(statements[size], params[start:end])
        start = end
        count -= size


def _log_row(
    rowid: int, rec: CommitRecord, prune_before: int | None, workflow_ops: bool
) -> tuple[Any, ...]:
    """The parameters of `_INSERT_LOG` for one record (see the schema's versions 2 and
    5 for the columns), or of `_INSERT_LOG_LEAN` (`_LEAN_PARAMS` of them) for a lean
    row: 0 stands for NULL, and BLOBs are bound as bytearrays, which the sqlite3 module
    binds without its adapter lookup (a copy costs far less). ``workflow_ops``: the
    record has workflow puts or deletes."""
    state = rec.state
    flags = 0 if state is None else _SNAPSHOT
    workflow: bytearray | int = 0
    if workflow_ops:
        workflow = bytearray()
        _encode_workflow_into((rec.workflow_deletes, rec.workflow_puts), workflow)
    e = rec.event
    if e is None:
        # No history entry: the row carries the seq, the snapshot, the prune and the
        # workflow records.
        return (rowid, rec.actor_id, rec.seq, 0, "save", 0, 0, 0,
                0 if state is None else bytearray(state), 0, flags, 0, prune_before or 0,
                workflow)  # fmt: skip
    flags |= _HISTORY
    event_state = e.state
    if event_state is not None:
        if state is None:
            state, event_state = event_state, None
            flags |= _EVENT_STATE
        elif event_state is state or event_state == state:
            event_state = None
            flags |= _EVENT_STATE
    # Each BLOB as a bytearray or 0, written out: this runs once per committed record.
    name, by, args, ops = e.name, e.by, e.args, e.ops
    if by is None and ops is None and event_state is None and not workflow:
        return (rowid, rec.actor_id, rec.seq, e.at_ms, e.kind, 0 if name is None else name,
                0 if args is None else bytearray(args), 0 if state is None else bytearray(state),
                flags, prune_before or 0)  # fmt: skip
    return (rowid, rec.actor_id, rec.seq, e.at_ms, e.kind, 0 if name is None else name,
            0 if by is None else by, 0 if args is None else bytearray(args),
            0 if state is None else bytearray(state), 0 if ops is None else bytearray(ops),
            flags, 0 if event_state is None else bytearray(event_state),
            prune_before or 0, workflow)  # fmt: skip


def rollback(conn: sqlite3.Cursor) -> None:
    """Roll back the open transaction, if SQLite has not already done it."""
    # SQLite rolls some errors (e.g. SQLITE_FULL) back by itself; ROLLBACK would then fail.
    if conn.connection.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
