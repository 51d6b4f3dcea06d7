"""What compaction costs per moved row, without an event loop (for callgrind).

    python bench/compact_cost.py ROUNDS [--max-rows N] [--step-rows N] [--no-compaction]
        [--steady]

Fills a fresh log through `Writer.commit` (64 actors, 64-record batches, one history
entry per record and the runtime's default history limit of 100), first past the
limit, then ROUNDS times 8,192 rows, each time compacting the whole log in background
steps of `COMPACT_STEP_ROWS` (not paced by time, so the same steps under valgrind).
Prints the thread's CPU time per moved row. For instructions, run two sizes under
callgrind and take the difference; ``--no-compaction`` gives the filling alone:

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.c.4 \\
        python bench/compact_cost.py 4          # and 2: (Ir(4) - Ir(2)) / 16,384

``--steady`` compacts as the 64 x 64 load does instead (``count_strict.py
par-steady``): one step of `COMPACT_STEP_ROWS` after every 8 batches (512 rows) while
a round is in progress or the log holds `COMPACT_AFTER_ROWS` rows, so a round starts
with 128 entries per actor in the log, more than the history limit. Each ROUND then
commits 8,192 rows (four compaction rounds), and the log is left as it is at the end.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from pyrivet.storage import _sqlite_compaction
from pyrivet.storage._base import ActorRecord, CommitRecord, HistoryEntry
from pyrivet.storage._sqlite_compaction import COMPACT_AFTER_ROWS
from pyrivet.storage._sqlite_writer import Writer

ACTORS = 64
HISTORY_LIMIT = 100


def main() -> None:
    rounds = int(sys.argv[1])
    if "--max-rows" in sys.argv:
        max_rows = int(sys.argv[sys.argv.index("--max-rows") + 1])
        _sqlite_compaction.COMPACT_MAX_ROWS = max_rows
    if "--step-rows" in sys.argv:
        step_rows = int(sys.argv[sys.argv.index("--step-rows") + 1])
        _sqlite_compaction.COMPACT_STEP_ROWS = step_rows
    compact = "--no-compaction" not in sys.argv
    with tempfile.TemporaryDirectory(prefix="pyrivet-compact-") as data_dir:
        writer = Writer(Path(data_dir) / "db.sqlite3", "FULL", {})
        writer.connect()
        ids = [f"id{i:03d}" for i in range(ACTORS)]
        for i, actor_id in enumerate(ids):
            record = ActorRecord(actor_id, "counter", (f"a{i}",), 1, None, True)
            writer.insert_actor(record, False)
        seq = [0] * ACTORS

        def fill(rows: int) -> None:
            for _ in range(rows // ACTORS):
                batch = []
                for i, actor_id in enumerate(ids):
                    seq[i] += 1
                    s = seq[i]
                    state = b"\x81\xa5count" + s.to_bytes(4, "big")
                    event = HistoryEntry(actor_id, s, 1000 + s, "action", "increment", None,
                                         b"\x91\x01", state, None)  # fmt: skip
                    prune = s - HISTORY_LIMIT + 1 if s > HISTORY_LIMIT else None
                    batch.append(CommitRecord(actor_id, s, state=state, event=event,
                                              prune_history_before=prune))  # fmt: skip
                writer.commit(batch)

        fill(HISTORY_LIMIT * ACTORS + 8192)
        writer.log.compact_all(writer.cur)
        moved = 0
        cpu = 0.0
        if "--steady" in sys.argv:
            log = writer.log
            for _ in range((rounds + 1) * 16):  # a round of warm-up: the log fills up
                fill(512)
                if compact and (log._round is not None or log.rows >= COMPACT_AFTER_ROWS):
                    start = time.thread_time()
                    log.compact_step(writer.cur, paced=False)
                    cpu += time.thread_time() - start
            print(f"{cpu / ((rounds + 1) * 8192) * 1e6:.2f} µs CPU per committed row")
            return
        for _ in range(rounds):
            fill(8192)
            if not compact:
                continue
            moved += writer.log.rows
            start = time.thread_time()
            while writer.log.rows:
                writer.log.compact_step(writer.cur, paced=False)
            cpu += time.thread_time() - start
        if compact:  # close compacts what is left; without compaction, leave it
            writer.close()
    if moved:
        print(f"{moved} rows moved, {cpu / moved * 1e6:.2f} µs CPU per moved row")


if __name__ == "__main__":
    main()
