"""A fixed amount of ``c.db`` work at 64 actors x 64 callers, for instruction counts
and system-call counts (not timed: the machine's noise does not reach these).

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p python bench/prof_db.py insert 10
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p python bench/prof_db.py insert 40
    strace -f -c -o /tmp/st.txt python bench/prof_db.py insert 50

64 actors of ``bench_db.py``'s registry (``insert`` on ``ledger``: one row and the state;
``increment`` on ``counter``: state only), one caller loop each, K calls per caller
after one wake-up call. Per call = (count at K=40 - count at K=10) / (64 x 30). The
store's background compaction is off and its inline budget's clock is frozen, so that
valgrind's slowness does not send commits to the writer thread (the counts then move
by ±10 % between runs; with both off they repeat closely).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile

from bench_db import make_registry
from pyrivet import Client
from pyrivet.storage import _sqlite, _sqlite_compaction


async def main(action: str, calls: int, actors: int) -> None:
    _sqlite_compaction.COMPACT_AFTER_ROWS = 10**9
    _sqlite_compaction.COMPACT_IDLE_SECONDS = 1e9
    _sqlite._perf_counter = lambda: 0.0
    name = "ledger" if action == "insert" else "counter"
    with tempfile.TemporaryDirectory(prefix="pyrivet-prof-") as data_dir:
        async with make_registry().runtime(data_dir=data_dir) as runtime:
            client = Client(runtime)
            handles = [client.get_or_create(name, [f"a{i}"]) for i in range(actors)]
            await asyncio.gather(*(h.action(action) for h in handles))

            async def caller(i: int) -> None:
                for _ in range(calls):
                    await handles[i].action(action)

            await asyncio.gather(*(caller(i) for i in range(actors)))
            batches, records = runtime.committer_stats()[:2]
            print(f"{action}: {actors} x {calls} calls, {records} records in {batches} batches")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 64))
